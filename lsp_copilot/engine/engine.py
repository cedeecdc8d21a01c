"""The engine: a resident model, a prefix-cached KV cache and the decode loop with lossless speculation."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lsp_copilot.engine.costs import CostModel, measure_costs
from lsp_copilot.engine.detok import StopTracker
from lsp_copilot.engine.drafting import Draft, LookupDrafter, ModelDrafter, ScreenDrafter
from lsp_copilot.engine.guide import NameGuide, VocabIndex
from lsp_copilot.engine.lean import LeanLlama, RowKernel, lean_supported, load_row_kernel
from lsp_copilot.engine.loading import (
    check_same_tokenizer,
    encode_prompt,
    load_causal_lm,
    load_tokenizer,
    resolve_device,
    resolve_dtype,
)
from lsp_copilot.engine.prefix_cache import PrefixCache, common_prefix
from lsp_copilot.engine.rerank import (
    Branch,
    Candidate,
    best,
    finalists,
    first_tokens,
    prune_behind,
    split_head,
    tail_logprob,
    tail_tokens,
)
from lsp_copilot.engine.runners import HFRunner, LeanRunner, Runner
from lsp_copilot.engine.sampling import Sampler
from lsp_copilot.engine.types import (
    CancelToken,
    EngineSettings,
    GenerationRequest,
    GenerationResult,
    RankedAnswer,
    RequestError,
    speculation_sources,
)

DRAFT_PRIOR_TOKENS = 20  # weight, in drafted tokens, of the 0.5 prior on the draft's acceptance
EXPLORE_EVERY = 16  # while the cost model skips the draft, one step in this many still drafts a token
TOKENS_PRIOR = 16.0  # expected tokens of a completion before any was measured (a line or two of code)
TOKENS_EMA = 0.1  # weight of the newest completion in the running mean of completion lengths
SNAPSHOT_MIN_TOKENS = 64  # discarding at least this many live cache tokens keeps a copy of them first

log = logging.getLogger(__name__)


@dataclass
class EngineStats:
    """Totals over the engine's life (the server's status request reports them)."""

    requests: int = 0
    generated_tokens: int = 0
    forwards: int = 0
    drafted: dict[str, int] = field(default_factory=dict)
    accepted: dict[str, int] = field(default_factory=dict)
    mean_tokens: float = TOKENS_PRIOR  # running mean (EMA) of tokens per completion: how long a draft has to repay


def guided(logits: Tensor, guide: NameGuide | None) -> Tensor:
    """logits [V] under the name guide's rule where it applies (`NameGuide.apply`), else as they are."""
    only = guide.allowed() if guide is not None else None
    return guide.apply(logits, only) if guide is not None and only else logits


def make_runner(model: Any, settings: EngineSettings, capacity: int) -> Runner:
    """The lean runner for plain Llamas (row-exact when the check passes), else the generic HF runner."""
    if settings.lean and lean_supported(model) is None:
        row_kernel = pick_row_kernel(model, settings)
        lean = LeanLlama(model, capacity, settings.kernel_rows, settings.gemm_weights, row_kernel=row_kernel,
                         row_kernel_weights=settings.row_kernel_weights)
        runner = LeanRunner(lean, settings.prefill_chunk, settings.max_draft + 1)
        runner.exact = check_row_exactness(runner)
        if not runner.exact and lean.row_kernel is not None:  # cannot happen with an IEEE fma: keep the MKL classes
            log.warning("the numba row kernel failed the row-exactness check; using the MKL kernel classes")
            lean.drop_row_kernel()
            runner.exact = check_row_exactness(runner)
        if not runner.exact and runner.model.kernel_rows > 1:  # a kernel library with other row rules: 1-row GEMMs
            runner.model.kernel_rows = 1
            runner.exact = check_row_exactness(runner)
        return runner
    return HFRunner(model, capacity, settings.prefill_chunk)


def pick_row_kernel(model: Any, settings: EngineSettings) -> RowKernel | None:
    """The numba row kernel when the settings give it weights and it loads for this model; else None (logged: a
    warning where it should have served, an fp32 CPU model)."""
    if not settings.row_kernel_weights:
        return None
    p = next(model.parameters())
    kernel, why = load_row_kernel(p.device, p.dtype)
    if kernel is None:
        expected = p.device.type == "cpu" and p.dtype == torch.float32
        log.log(logging.WARNING if expected else logging.INFO, "step-path products stay in the library kernel "
                "classes: %s", why)
    return kernel


@torch.inference_mode()
def check_row_exactness(runner: LeanRunner, length: int = 150, width: int = 13) -> bool:
    """Whether the logits of decoded positions are bit-identical computed one token at a time, in verify passes of
    2..`width` tokens, and after a prefix-cache rollback (the property lossless greedy speculation needs)."""
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, runner.model.vocab_size, (length,), generator=gen).tolist()
    start = length - 30
    runner.truncate(0)
    runner.forward(ids[:start], all_logits=False)
    single = torch.cat([runner.forward([t]) for t in ids[start:]])
    same = True
    for step in (2, 3, 5, width):
        runner.truncate(start)
        grouped = torch.cat([runner.forward(ids[i:min(i + step, length)]) for i in range(start, length, step)])
        same = same and torch.equal(single, grouped)
    runner.truncate(0)
    return same


class Engine:
    """A target model (and optional draft) resident on one device; `generate` streams one request's text."""

    def __init__(self, tokenizer: Any, target: Runner, draft: Runner | None, model_name: str,
                 device: torch.device, settings: EngineSettings) -> None:
        self.tokenizer = tokenizer
        self.target = target
        self.draft = draft
        self.model_name = model_name
        self.device = device
        self.dtype = resolve_dtype(device)  # what `load` put the weights in
        self.settings = settings
        self.prefix_cache = PrefixCache(settings.prefix_cache_bytes)
        self.stats = EngineStats()
        self.last_result = GenerationResult("", 0, "none", 0, 0.0)
        self.eos_ids = {int(tokenizer.eos_token_id)} if tokenizer.eos_token_id is not None else set()
        # any special token (EOS, FIM sentinels, file separators) ends a completion
        self.stop_ids = self.eos_ids | {int(i) for i in tokenizer.all_special_ids}
        self.model_drafter = (
            ModelDrafter(draft, settings.draft_start, settings.draft_min, settings.max_draft) if draft else None
        )
        # what a verify row and a draft step cost here: under speculation "auto" the draft model runs only where it
        # pays (see costs.py); an explicit "draft" always runs it
        self.costs: CostModel | None = measure_costs(target, draft) if draft is not None and settings.cost_aware \
            else None
        self._gated_skips = 0  # consecutive steps on which the cost model skipped the draft model
        self._vocab: VocabIndex | None = None  # token texts for name-guided picks (`vocab_index`)

    @classmethod
    def load(cls, model_dir: Path, draft_dir: Path | None = None, device: str = "auto",
             settings: EngineSettings | None = None) -> Engine:
        """Load a Hugging Face causal LM directory (and a draft sharing its tokenizer) onto `device`."""
        settings = settings or EngineSettings()
        if settings.threads > 0:
            torch.set_num_threads(settings.threads)
        dev = resolve_device(device)
        dtype = resolve_dtype(dev)
        model = load_causal_lm(Path(model_dir), dev, dtype)
        tokenizer = load_tokenizer(Path(model_dir))
        capacity = min(settings.max_context, int(getattr(model.config, "max_position_embeddings", 0) or 2048))
        with torch.inference_mode():
            target = make_runner(model, settings, capacity)
            draft = None
            if draft_dir is not None:
                draft_model = load_causal_lm(Path(draft_dir), dev, dtype)
                check_same_tokenizer(tokenizer, load_tokenizer(Path(draft_dir)), Path(draft_dir))
                draft = make_runner(draft_model, settings, capacity)
        return cls(tokenizer, target, draft, Path(model_dir).name, dev, settings)

    def token_ids(self, tokens: Sequence[str]) -> list[int]:
        """Ids of the given special-token spellings that the tokenizer has (others, and EOS, are left out)."""
        ids = [self.tokenizer.convert_tokens_to_ids(t) for t in tokens]
        return [i for i in ids if isinstance(i, int) and i != self.tokenizer.unk_token_id and i not in self.eos_ids]

    def vocab_index(self) -> VocabIndex:
        """Token ids by text for name-guided picks (built on first use: one decode per vocabulary entry)."""
        if self._vocab is None:
            self._vocab = VocabIndex(self.tokenizer, never=self.stop_ids)
        return self._vocab

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` as the engine would feed it (special-token text counts as one token)."""
        return len(encode_prompt(self.tokenizer, text))

    @property
    def exact_speculation(self) -> bool:
        """Greedy output with speculation is bit-identical to the plain loop (the batch-invariance check passed)."""
        return self.target.exact

    def cache_hit_rate(self) -> float:
        """Reused prompt tokens / prompt tokens over all requests."""
        return self.prefix_cache.stats.hit_rate

    def clear_cache(self) -> None:
        """Forget all cached KV (live and stored)."""
        self.target.truncate(0)
        if self.draft is not None:
            self.draft.truncate(0)
        self.prefix_cache.clear()

    def continuation_logprobs(self, prompt: str, continuation: str) -> list[float]:
        """Log-probability of each token of `continuation` (tokenized on its own) right after `prompt`.

        How likely the model finds a reference answer, whatever greedy decoding picks: evaluations use it to see
        whether context helps before it changes the argmax. The live cache is rebuilt from scratch (the prefix
        cache is left alone), so a later `generate` stays exact.
        """
        ids = encode_prompt(self.tokenizer, prompt)
        answer: list[int] = self.tokenizer(continuation, add_special_tokens=False)["input_ids"]
        if not ids or not answer:
            raise RequestError("both the prompt and the continuation need at least one token")
        if len(ids) + len(answer) > self.target.capacity:
            raise RequestError(f"{len(ids) + len(answer)} tokens; the model's context holds {self.target.capacity}")
        with torch.inference_mode():
            self.target.truncate(0)
            logits = self.target.forward([*ids, *answer]).float()  # [P + A, V]
            self.target.truncate(0)
        # the token at position P + i is predicted by the logits at P + i - 1
        logp = torch.log_softmax(logits[len(ids) - 1 : -1], dim=-1)  # [A, V]
        return logp.gather(1, torch.tensor(answer, device=logp.device)[:, None])[:, 0].tolist()

    def generate(self, req: GenerationRequest, cancel: CancelToken | None = None) -> Iterator[str]:
        """Stream the completion of `req` as text deltas; blocking; `last_result` describes it afterwards.

        Raises RequestError on a bad request (nothing in the cache is lost then).
        """
        req.validate()
        ids = encode_prompt(self.tokenizer, req.prompt)
        if not ids:
            raise RequestError("the prompt is empty")
        if len(ids) + 1 > self.target.capacity:
            raise RequestError(f"the prompt has {len(ids)} tokens; the model's context holds {self.target.capacity}")
        with torch.inference_mode():
            yield from self._decode(req, ids, cancel or CancelToken())

    def _reuse_prefix(self, ids: list[int]) -> int:
        """Put the longest cached prefix of `ids` into the live cache (at most all but the last token); its length."""
        live = common_prefix(self.target.tokens, ids)
        snap, stored = self.prefix_cache.best_match(ids)
        # a switch of document: the new prompt diverges early from the live one, which loses many tokens
        switching = len(self.target.tokens) - live >= SNAPSHOT_MIN_TOKENS and len(ids) - live >= SNAPSHOT_MIN_TOKENS
        if switching or (snap is not None and stored > live + SNAPSHOT_MIN_TOKENS):
            self.prefix_cache.put(self.target.snapshot())  # another document: keep this one's KV for later
        if snap is not None and stored > live:
            self.target.restore(snap, min(stored, len(ids) - 1))
            self.prefix_cache.stats.restores += 1
            live = stored
        reuse = min(live, len(ids) - 1)  # the last prompt token is always run: its logits start the decode
        self.target.truncate(reuse)
        self.prefix_cache.stats.prompt_tokens += len(ids)
        self.prefix_cache.stats.reused_tokens += reuse
        return reuse

    def _decode(self, req: GenerationRequest, ids: list[int], cancel: CancelToken) -> Iterator[str]:
        t0 = time.perf_counter()
        sampler = Sampler(req.temperature, req.top_p, req.seed, self.device, self.token_ids(req.banned_tokens))
        result = GenerationResult("", 0, "max_tokens", 0, 0.0, prompt_tokens=len(ids))
        self.last_result = result
        if req.max_new_tokens == 0 or cancel.cancelled:
            result.stop_reason = "cancelled" if cancel.cancelled else "max_tokens"
            return
        result.reused_tokens = self._reuse_prefix(ids)
        logits = self.prefill(ids[result.reused_tokens:])  # [V]
        if req.rerank is not None and req.rerank.candidates > 1 and sampler.greedy:
            yield from self._decode_reranked(req, ids, logits, sampler, cancel, t0, result)
        else:
            yield from self._decode_greedy_or_sampled(req, ids, logits, sampler, cancel, t0, result)
        result.elapsed_s = time.perf_counter() - t0
        self._record(result)

    def _guide(self, req: GenerationRequest) -> NameGuide | None:
        """A fresh name guide for the request (None when it names no names)."""
        return NameGuide(self.vocab_index(), req.guide_typed, req.guide_names, req.guide_uses,
                         req.guide_usage_weight) if req.guide_names else None

    def _decode_greedy_or_sampled(self, req: GenerationRequest, ids: list[int], logits: Tensor, sampler: Sampler,
                                  cancel: CancelToken, t0: float, result: GenerationResult) -> Iterator[str]:
        """The plain loop with speculation: stream the answer from the prompt's logits [V] until a stop.

        Cache invariant on entry: the cache holds `ids` (the whole prompt).
        """
        sources = speculation_sources(req.speculation)
        tracker = StopTracker(self.tokenizer, self.stop_ids, self.eos_ids, req.stop_strings, req.stop_check,
                              req.max_new_tokens)
        # the first token comes from the prompt's logits in every speculation mode, so these rules keep them equal
        guide = self._guide(req)
        token = sampler.pick(guided(logits, guide), () if req.allow_empty else sorted(self.stop_ids))
        if guide is not None:
            guide.push(token)
        seq = list(ids)  # prompt + emitted tokens; the cache holds all of it but the last token
        lookup = LookupDrafter(self.settings.lookup_max_ngram, self.settings.lookup_min_ngram,
                               self.settings.draft_start, self.settings.lookup_max_tokens)
        screen = ScreenDrafter(self.tokenizer, req.expected_continuation) if req.expected_continuation else None
        emitted_tokens = 0
        stop: str | None = None
        pending = [token]
        while stop is None:
            for tok in pending:  # account emitted tokens one by one: stops see exactly what the plain loop sees
                delta, stop = tracker.push(tok)
                if emitted_tokens == 0:
                    result.time_to_first_token_s = time.perf_counter() - t0
                seq.append(tok)
                emitted_tokens += 1
                if delta:
                    yield delta
                if stop is not None:
                    break
            if stop is not None:
                break
            stop = self._outside_stop(req, cancel, t0, len(seq))
            if stop is not None:
                tracker.finish(stop, flush=stop != "cancelled")
                break
            if guide is not None and guide.active and (only := guide.allowed()) is not None:
                pending = [self.guided_step(seq[-1], sampler, guide, only, result)]  # the same in every mode
                guide.push(pending[0])
                continue
            room = min(self.settings.max_draft, req.max_new_tokens - tracker.count - 1,
                       self.target.capacity - len(seq) - 1)
            draft = self._propose(sources, seq, tracker, room, lookup, screen, sampler, req.speculation == "auto")
            pending = self.decode_step(seq[-1], draft, sampler, result)
            if draft is not None and draft.source == "lookup":
                lookup.feedback(len(draft.tokens), len(pending) - 1)
        result.text = tracker.final if tracker.final is not None else tracker.emitted
        result.stop_reason = stop
        result.tokens = tracker.count
        result.accepted_per_forward = (emitted_tokens - 1) / result.forwards if result.forwards else 0.0

    def _decode_reranked(self, req: GenerationRequest, ids: list[int], logits: Tensor, sampler: Sampler,
                         cancel: CancelToken, t0: float, result: GenerationResult) -> Iterator[str]:
        """Branch the likeliest first tokens, finish them greedily side by side, yield the best answer whole.

        The candidates come from one batched forward per step (`Runner.branches`), without speculation: the answer
        is the same whatever `req.speculation` says. Cache invariant: the cache holds `ids` on entry; afterwards it
        holds whatever the scoring pass left (the prompt's KV is in the prefix cache).
        """
        spec = req.rerank
        assert spec is not None
        first = sampler.restrict(guided(logits, self._guide(req))).float().clone()
        if not req.allow_empty:
            first[sorted(self.stop_ids)] = float("-inf")
        first = torch.log_softmax(first, dim=-1)  # [V]: the first pick's distribution under the request's rules
        branches = self._finish_branches(req, ids, first_tokens(first, spec.candidates, spec.max_gap), first,
                                         sampler, cancel, t0, result)
        candidates = [Candidate(b, spec.shown(b.text) if spec.shown else b.text) for b in branches]
        result.candidates = len(candidates)
        late = any(c.result.stop_reason == "time_limit" for c in candidates)
        # out of time: the greedy branch, as far as it got (what the plain loop would have answered)
        pool = finalists(candidates) if not late else candidates[:1]
        if len(pool) > 1 and spec.weight > 0 and not cancel.cancelled:
            self._stash_live(len(ids))  # the next keystroke's prompt starts from this prompt's KV
            scores = self.after_logprobs(spec.before, [c.shown for c in pool], spec.after)
            for cand, lp in zip(pool, scores, strict=True):
                cand.after_logprob = lp
        chosen = best(pool, spec.weight) if pool else None
        result.ranking = sorted((RankedAnswer(c.shown, c.result.logprob, c.after_logprob, c.score(spec.weight))
                                 for c in pool), key=lambda r: -r.score)
        if cancel.cancelled or chosen is None:
            result.stop_reason = "cancelled" if cancel.cancelled else "max_tokens"
            return
        result.text, result.stop_reason = chosen.result.text, chosen.result.stop_reason
        result.tokens, result.logprob = chosen.result.tokens, chosen.result.logprob
        result.time_to_first_token_s = time.perf_counter() - t0
        if result.text:
            yield result.text

    def _finish_branches(self, req: GenerationRequest, ids: list[int], firsts: list[int], first: Tensor,
                         sampler: Sampler, cancel: CancelToken, t0: float, result: GenerationResult
                         ) -> list[GenerationResult]:
        """Each first token continued greedily until its own stop, all of them in lockstep; one result each.

        first [V]: log-probabilities of the first pick. A branch's `logprob` sums the log-probability of each token
        under the distribution it was picked from (the guide's where one applies).
        """
        branches = [Branch(StopTracker(self.tokenizer, self.stop_ids, self.eos_ids, req.stop_strings,
                                       req.stop_check, req.max_new_tokens), self._guide(req),
                           GenerationResult("", 0, "max_tokens", 0, 0.0, prompt_tokens=len(ids)))
                    for _ in firsts]
        for branch, token in zip(branches, firsts, strict=True):
            branch.push(token, float(first[token]))
        live = [b for b in branches if b.stop is None]
        room = min(req.max_new_tokens, self.target.capacity - len(ids) - 1)
        batch = self.target.branches(len(branches), max(room, 1)) if live else None
        if batch is not None and len(live) < len(branches):
            batch.keep([i for i, b in enumerate(branches) if b.stop is None])
        step = 0
        while live and batch is not None:
            stop = self._outside_stop(req, cancel, t0, len(ids) + step)
            if stop is None and step >= room:
                stop = "context_full"
            if stop is not None:
                for branch in live:
                    branch.finish(stop)
                break
            logits = batch.forward([[b.last] for b in live])[:, -1]  # [K, V]: row k continues live[k]
            result.forwards += 1
            step += 1
            for branch, row in zip(live, logits, strict=True):
                scores = sampler.restrict(guided(row, branch.guide)).float()
                token = int(torch.argmax(scores).item())
                branch.push(token, float(torch.log_softmax(scores, dim=-1)[token]))
            prune_behind(branches)
            kept = [i for i, b in enumerate(live) if b.stop is None]
            if len(kept) < len(live):
                live = [live[i] for i in kept]
                if live:
                    batch.keep(kept)
        result.accepted_per_forward = 1.0 if result.forwards else 0.0
        return [b.done() for b in branches]

    def _stash_live(self, n: int) -> None:
        """Keep the KV of the first n live tokens in the prefix cache (when worth a copy); empty the live cache."""
        self.target.truncate(n)
        if n >= SNAPSHOT_MIN_TOKENS:
            self.prefix_cache.put(self.target.snapshot())
        self.target.truncate(0)

    def after_logprobs(self, before: str, answers: Sequence[str], after: str) -> list[float]:
        """log p(after | before + answer) for each answer, the document read left to right from a start token.

        The lines of `before` above the cursor's line are the shared head: run once, or restored from the prefix
        cache where an earlier keystroke on the same line left it; the answers' lines and `after` then run as
        branches of it in one pass. The live cache holds the head afterwards.
        """
        start = self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else \
            self.tokenizer.eos_token_id
        head_text, line_head = split_head(before)
        tails = [tail_tokens(self.tokenizer, line_head, answer, after) for answer in answers]
        longest = max((len(t.ids) for t in tails), default=0) + 1  # a row: the head's last token, then the tail
        room = self.target.capacity - longest - 1  # head tokens that fit after the start token
        if start is None or room < 0 or not answers:
            return [0.0 for _ in answers]
        head: list[int] = self.tokenizer(head_text, add_special_tokens=False)["input_ids"] if head_text else []
        shared = [int(start), *head[max(0, len(head) - room) :]]
        reuse = self._reuse_prefix(shared)  # the cache holds shared[:reuse]
        if reuse < len(shared) - 1:
            self.target.forward(shared[reuse:-1], all_logits=False)
        # the cache holds shared[:-1]; every row reads shared[-1] then its tail, padded to one length at the end
        rows = [[shared[-1], *t.ids, *[shared[-1]] * (longest - 1 - len(t.ids))] for t in tails]
        logits = self.target.branches(len(rows), longest).forward(rows)  # [K, longest, V]: [k, i] predicts ids[i]
        return [tail_logprob(logits[k], tail) for k, tail in enumerate(tails)]

    def prefill(self, new_ids: list[int]) -> Tensor:
        """Run the prompt tokens not in the cache; return the logits [V] of the last one."""
        return self.target.forward(new_ids, all_logits=False)[-1]

    def guided_step(self, last: int, sampler: Sampler, guide: NameGuide, only: list[int],
                    result: GenerationResult) -> int:
        """One plain forward over [last]; the next token picked among `only` by the guide's rule (`NameGuide.apply`).

        Cache invariant as in `decode_step`: before, the cache holds the sequence up to (excluding) `last`; after,
        up to (excluding) the returned token.
        """
        logits = self.target.forward([last])[-1]  # [V]
        result.forwards += 1
        return sampler.pick(guide.apply(logits, only))

    def decode_step(self, last: int, draft: Draft | None, sampler: Sampler, result: GenerationResult) -> list[int]:
        """One target forward over [last] + draft; return the tokens it emits (accepted drafts + one more).

        Cache invariant: before, the cache holds the sequence up to (excluding) `last`; after, it holds the sequence
        up to (excluding) the last returned token.
        """
        tokens = draft.tokens if draft else []
        base = len(self.target.tokens)
        logits = self.target.forward([last, *tokens])  # [1 + k, V]: row i predicts the token after tokens[:i]
        result.forwards += 1
        verdict = sampler.verify(tokens, draft.probs if draft else None, logits)
        self.target.truncate(base + 1 + verdict.accepted)
        if draft is not None:
            result.drafted[draft.source] = result.drafted.get(draft.source, 0) + len(tokens)
            result.accepted[draft.source] = result.accepted.get(draft.source, 0) + verdict.accepted
            if draft.source == "draft" and self.model_drafter is not None:
                self.model_drafter.feedback(len(tokens), verdict.accepted)
        return [*tokens[: verdict.accepted], verdict.next_token]

    def _propose(self, sources: frozenset[str], seq: list[int], tracker: StopTracker, room: int,
                 lookup: LookupDrafter, screen: ScreenDrafter | None, sampler: Sampler,
                 gated: bool = False) -> Draft | None:
        """Choose this step's draft: the on-screen text while it agrees, else an n-gram match, else the draft model."""
        if room <= 0:
            return None
        if "screen" in sources and screen is not None and (d := screen.propose(tracker.detok.text(), room)):
            return d
        if "lookup" in sources and (d := lookup.propose(seq, min(room, self.settings.lookup_max_tokens))):
            return d
        if "draft" in sources and self.model_drafter is not None:
            if gated and self.costs is not None:
                # tokens the draft must run before it can propose (the whole prompt on a cold or switched document)
                lag = len(seq) - common_prefix(self.model_drafter.runner.tokens, seq)
                k = self.costs.best_draft_len(self.draft_acceptance(), self.settings.max_draft, lag=lag,
                                              expected_tokens=self.stats.mean_tokens)
                self._gated_skips = self._gated_skips + 1 if k == 0 else 0
                costly_catch_up = self.costs.catch_up(lag) > self.costs.target(1)  # exploring would not be cheap
                if k == 0 and (self._gated_skips % EXPLORE_EVERY or costly_catch_up):
                    return None
                room = min(room, max(k, 1))  # an exploring step drafts one token: keeps the acceptance rate fresh
            return self.model_drafter.propose(seq, room, sampler)
        return None

    def draft_acceptance(self) -> float:
        """Share of the draft model's tokens the target accepted so far, shrunk towards a prior of 0.5."""
        drafted, accepted = self.stats.drafted.get("draft", 0), self.stats.accepted.get("draft", 0)
        return (accepted + 0.5 * DRAFT_PRIOR_TOKENS) / (drafted + DRAFT_PRIOR_TOKENS)

    def _outside_stop(self, req: GenerationRequest, cancel: CancelToken, t0: float, seq_len: int) -> str | None:
        if cancel.cancelled:
            return "cancelled"
        if req.time_limit_s is not None and time.perf_counter() - t0 >= req.time_limit_s:
            return "time_limit"
        if seq_len + 1 >= self.target.capacity:
            return "context_full"
        return None

    def _record(self, result: GenerationResult) -> None:
        s = self.stats
        s.requests += 1
        s.generated_tokens += result.tokens
        s.forwards += result.forwards
        if result.stop_reason != "cancelled":  # a superseded request says nothing about how long answers run
            s.mean_tokens += TOKENS_EMA * (result.tokens - s.mean_tokens)
        for src, n in result.drafted.items():
            s.drafted[src] = s.drafted.get(src, 0) + n
        for src, n in result.accepted.items():
            s.accepted[src] = s.accepted.get(src, 0) + n
