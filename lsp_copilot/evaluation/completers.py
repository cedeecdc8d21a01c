"""The one step an evaluation injects, "complete at this cursor": the pipeline, a model directly, trivial baselines."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class CompletionQuery:
    """A cursor in a file: `text[:offset]` is before it, `text[offset:]` after it."""

    text: str
    offset: int
    path: str  # relative to `workspace` when there is one
    workspace: Path | None = None  # a workspace folder to index for cross-file context; None = the file alone

    @property
    def prefix(self) -> str:
        return self.text[: self.offset]

    @property
    def suffix(self) -> str:
        return self.text[self.offset :]


@dataclass(frozen=True)
class Completion:
    """What a completer suggests at the cursor, and how many tokens it generated for it (0 for baselines)."""

    text: str
    tokens: int = 0
    context: str = ""  # the cross-file context the model was shown (what retrieval found), when the completer knows


class Completer(Protocol):
    """Anything that completes a query: a model through the pipeline, or a baseline."""

    def __call__(self, query: CompletionQuery) -> Completion: ...


def first_line(text: str) -> str:
    """The completion's first line (what a single-line task keeps)."""
    return text.split("\n", 1)[0]


class ConstantCompleter:
    """Baseline: always the same line (e.g. the most common expected line of the benchmark)."""

    def __init__(self, line: str) -> None:
        self.line = line

    @classmethod
    def most_common(cls, expected_lines: Sequence[str]) -> ConstantCompleter:
        """Predict the most frequent stripped expected line (ties: first seen)."""
        if not expected_lines:
            raise ValueError("the most common line of an empty task set is undefined")
        return cls(Counter(line.strip() for line in expected_lines).most_common(1)[0][0])

    def __call__(self, query: CompletionQuery) -> Completion:
        return Completion(self.line)


class PreviousLineCompleter:
    """Baseline: repeat the last non-blank line above the cursor, stripped (the editor's 'duplicate line')."""

    def __call__(self, query: CompletionQuery) -> Completion:
        above = query.prefix.rsplit("\n", 1)[0] if "\n" in query.prefix else ""
        for line in reversed(above.split("\n")):
            if line.strip():
                return Completion(line.strip())
        return Completion("")


@dataclass
class DirectSettings:
    """Greedy single-line decoding straight from a model directory, in the embedded models' FIM layout."""

    max_new_tokens: int = 48
    max_prompt_tokens: int = 1536  # prefix + suffix budget; the prefix keeps the larger share
    suffix_share: float = 0.25
    spm: bool = True  # suffix-prefix-middle (as the embedded models prefer); False = prefix-suffix-middle
    file_header: bool = False  # start with `<file_sep>{path}\n` (always, when the retriever gives context)
    max_context_tokens: int = 512  # cross-file blocks, taken from the prompt budget
    threads: int = 0  # 0 = torch default


class DirectModelCompleter:
    """A model completing with a plain greedy loop, without the pipeline (the reference when no pipeline exists).

    Prompt: `<|endoftext|><fim_prefix><fim_suffix>{suffix}<fim_middle>{prefix}` (SPM) or PSM, FIM sentinels banned
    from the answer (as the server's pipeline does); decoding stops at `<|endoftext|>`,
    any other special token or the first newline, since every task this harness builds is single-line. With a
    `retriever` (query -> [(path, text)]), its blocks come first as `<file_sep>{path}\n{text}`, as in training.
    """

    retriever: Callable[[CompletionQuery], list[tuple[str, str]]] | None = None

    def __init__(self, model_dir: Path, settings: DirectSettings | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from lsp_copilot.engine.sampling import Sampler

        self.settings = settings or DirectSettings()
        if self.settings.threads:
            torch.set_num_threads(self.settings.threads)
        self.tokenizer: Any = AutoTokenizer.from_pretrained(model_dir)
        self.model: Any = AutoModelForCausalLM.from_pretrained(model_dir).eval()
        self.eos_id: int = self._token_id("<|endoftext|>", model_dir)
        ids = [self._token_id(t, model_dir) for t in ("<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<file_sep>")]
        self.sentinels, self.file_sep = ids[:3], ids[3]
        # Generation ends at end-of-text or at any special token (a FIM sentinel in the middle ends it, as the
        # pipeline's template stop strings do).
        self.stop_ids = {self.eos_id, *self.tokenizer.all_special_ids, *ids}
        # Greedy over the answer's vocabulary: FIM sentinels and `<file_sep>` never appear in a middle (the server
        # bans them with the same Sampler); end of text stays allowed, it ends the answer.
        self.sampler = Sampler(0.0, 1.0, 0, torch.device("cpu"), [*self.sentinels, self.file_sep])

    def _token_id(self, token: str, model_dir: Path) -> int:
        """The id of a special token; a ValueError naming it when the tokenizer lacks it."""
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        if not isinstance(token_id, int) or token_id == self.tokenizer.unk_token_id:
            raise ValueError(f"{model_dir}: the tokenizer has no {token} token; it is not an embedded-layout FIM model")
        return token_id

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_context(self, query: CompletionQuery) -> tuple[list[int], str]:
        """`<file_sep>{path}\n{text}` per retrieved block (whole blocks, within the budget), then the file's header;
        and the blocks' text (what the completion reports as its context)."""
        blocks = self.retriever(query) if self.retriever is not None else []
        ids: list[int] = []
        shown: list[str] = []
        for path, text in blocks:
            block = [self.file_sep, *self.encode(f"{path}\n"), *self.encode(text)]
            if len(ids) + len(block) <= self.settings.max_context_tokens:
                ids += block
                shown.append(f"{path}\n{text}")
        if ids or self.settings.file_header:
            ids += [self.file_sep, *self.encode(f"{query.path}\n")]
        return ids, "\n".join(shown)

    def encode_prompt(self, query: CompletionQuery) -> tuple[list[int], str]:
        """Token ids (`<|endoftext|>`, context, then FIM with the prefix cut from the left and the suffix from the
        right; training packed each example after the previous one's end of text) and the context's text."""
        s = self.settings
        context_ids, shown = self.encode_context(query)
        context_ids = [self.eos_id, *context_ids]
        budget = s.max_prompt_tokens - len(context_ids)  # invariant: context <= max_context_tokens < max_prompt
        chars = 8 * budget  # no token is longer than 8 characters on average: cut the text before tokenizing it
        prefix_ids, suffix_ids = self.encode(query.prefix[-chars:]), self.encode(query.suffix[:chars])
        suffix_budget = min(len(suffix_ids), int(budget * s.suffix_share))
        prefix_budget = budget - suffix_budget
        prefix_ids, suffix_ids = prefix_ids[-prefix_budget:] if prefix_budget else [], suffix_ids[:suffix_budget]
        fp, fs, fm = self.sentinels
        if s.spm:
            return [*context_ids, fp, fs, *suffix_ids, fm, *prefix_ids], shown
        return [*context_ids, fp, *prefix_ids, fs, *suffix_ids, fm], shown

    def answer_loss(self, query: CompletionQuery, answer: str) -> float:
        """Mean negative log-likelihood (nats per token) of `answer` right after this completer's prompt."""
        import torch

        prompt, _ = self.encode_prompt(query)
        answer_ids = self.encode(answer)
        with torch.inference_mode():
            logits = self.model(input_ids=torch.tensor([prompt + answer_ids])).logits[0].float()  # [P + A, V]
        logp = torch.log_softmax(logits[len(prompt) - 1 : -1], dim=-1)  # row i predicts answer token i
        return -float(logp.gather(1, torch.tensor(answer_ids)[:, None]).mean())

    def __call__(self, query: CompletionQuery) -> Completion:
        import torch

        prompt, shown = self.encode_prompt(query)
        ids = torch.tensor([prompt])  # [1, P]
        out: list[int] = []
        text = ""
        with torch.inference_mode():
            step = self.model(input_ids=ids, use_cache=True, logits_to_keep=1)  # logits [1, 1, V]
            nxt = self.sampler.pick(step.logits[0, -1])
            while nxt not in self.stop_ids and len(out) < self.settings.max_new_tokens:
                out.append(nxt)
                text = self.tokenizer.decode(out, skip_special_tokens=False)
                if "\n" in text:
                    break
                # invariant: step.cache holds the keys/values of the prompt and of out[:-1]
                step = self.model(input_ids=torch.tensor([[nxt]]), cache=step.cache, use_cache=True)  # [1, 1, V]
                nxt = self.sampler.pick(step.logits[0, -1])
        return Completion(first_line(text), len(out), shown)


@dataclass
class TimedCompletion:
    """A completion and the wall time the completer took for it."""

    completion: Completion
    seconds: float
    error: str | None = None  # the completer raised this; the completion is then empty


def timed(completer: Completer, query: CompletionQuery) -> TimedCompletion:
    """Call `completer` and measure it; an error is recorded (and counted in the report), the task scored a miss."""
    start = time.perf_counter()
    try:
        completion = completer(query)
    except Exception as exc:  # one bad task must not lose the run; the report counts errors
        return TimedCompletion(Completion(""), time.perf_counter() - start, f"{type(exc).__name__}: {exc}")
    return TimedCompletion(completion, time.perf_counter() - start)
