"""The engine's public value types: requests, results, cancellation, settings and errors."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

SPECULATION_SOURCES = ("draft", "lookup", "screen")


class ModelLoadError(RuntimeError):
    """A model or draft directory cannot be loaded (missing, not a model, or an incompatible draft)."""


class RequestError(ValueError):
    """A request the engine cannot serve as given (bad field, prompt longer than the context)."""


@dataclass
class GenerationRequest:
    """One completion: a rendered prompt (text; the engine tokenizes it) and how to decode and stop."""

    prompt: str
    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop_strings: Sequence[str] = ()  # in addition to EOS and the tokenizer's special tokens
    stop_check: Callable[[str], int | None] | None = None  # StopPolicy.check: an index = stop and cut there
    time_limit_s: float | None = None
    speculation: str = "auto"  # "auto" | "off" | "draft" | "lookup" | "screen" | combinations "draft+lookup"
    expected_continuation: str | None = None  # the suggestion already on screen (drafts from it)
    # Special tokens that can never be part of the answer (a FIM middle holds no FIM sentinel): masked out of every
    # choice, in the plain and the speculative loop alike, so speculation stays lossless.
    banned_tokens: Sequence[str] = ()
    # False: the first token may not end the answer (EOS or another stop token), so the caller gets the model's best
    # non-empty answer. Only the first token (picked from the prompt's logits, before any speculation) is affected.
    allow_empty: bool = True
    # When given, the answer starts by finishing one of these names, of which `guide_typed` is already written (the
    # pipeline passes what the module before the cursor defines: `parser.|` -> `quote_string`). Those tokens are
    # picked one per forward in every speculation mode, so all modes still give the same output (guide.py).
    guide_names: Sequence[str] = ()
    guide_typed: str = ""
    # How often the current file already writes each of those names after the same qualifier, and what one use
    # weighs against the model's own distribution in the choice among them (NameGuide: (p_model + w * uses) /
    # (1 + w * all uses)); 0: the model alone chooses.
    guide_uses: Mapping[str, int] = field(default_factory=dict)
    guide_usage_weight: float = 0.0
    # Greedy only: answer with the best of several candidates instead of the greedy one (`RerankRequest`).
    rerank: RerankRequest | None = None

    def validate(self) -> None:
        """Raise RequestError on a field the engine cannot honour."""
        if self.max_new_tokens < 0:
            raise RequestError(f"max_new_tokens must be >= 0, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise RequestError(f"temperature must be >= 0, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise RequestError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.time_limit_s is not None and self.time_limit_s <= 0:
            raise RequestError(f"time_limit_s must be > 0, got {self.time_limit_s}")
        if self.guide_usage_weight < 0:
            raise RequestError(f"guide_usage_weight must be >= 0, got {self.guide_usage_weight}")
        if self.rerank is not None:
            self.rerank.validate()
        speculation_sources(self.speculation)


@dataclass
class RerankRequest:
    """Several answers, one per likely first token, each finished greedily; the one kept scores best under
    log p(answer | prompt) + weight * log p(after | before + answer), the second term read left to right by the same
    model: the answer under which the code after the cursor reads best (rerank.py)."""

    candidates: int  # first tokens branched (the greedy answer is always one of them)
    before: str  # the document before the cursor, as plain text (the tail that fits the context is read)
    after: str  # what follows the cursor: the rest of its line and the lines below that are scored
    weight: float = 0.5
    max_gap: float = 3.0  # first tokens more than this many nats less likely than the greedy one are not branched
    shown: Callable[[str], str] | None = None  # raw answer -> what the user would see (identical ones count once)

    def validate(self) -> None:
        if self.candidates < 1:
            raise RequestError(f"rerank.candidates must be >= 1, got {self.candidates}")
        if self.weight < 0:
            raise RequestError(f"rerank.weight must be >= 0, got {self.weight}")
        if self.max_gap < 0:
            raise RequestError(f"rerank.max_gap must be >= 0, got {self.max_gap}")


def speculation_sources(spec: str) -> frozenset[str]:
    """The draft sources named by a `speculation` string ("auto" = all of them); raise RequestError on a typo."""
    if spec == "auto":
        return frozenset(SPECULATION_SOURCES)
    if spec == "off":
        return frozenset()
    parts = frozenset(p.strip() for p in spec.split("+"))
    unknown = parts - set(SPECULATION_SOURCES)
    if unknown or not parts:
        raise RequestError(
            f"unknown speculation {spec!r}: use 'auto', 'off' or a '+'-joined subset of "
            f"{', '.join(SPECULATION_SOURCES)}"
        )
    return parts


class CancelToken:
    """A threading.Event-like flag: `cancel()` from any thread; the engine checks `cancelled` between decode steps.

    `result` holds the GenerationResult of the request once it ended (or was dropped before it started).
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self.result: GenerationResult | None = None

    def cancel(self) -> None:
        """Ask the request to stop; it stops within one decode step (or never starts)."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """Whether `cancel()` was called."""
        return self._event.is_set()


@dataclass
class RankedAnswer:
    """One candidate of a reranked request as the engine weighed it (`GenerationResult.ranking`)."""

    text: str  # what the user would see
    logprob: float  # log p(answer | prompt)
    after_logprob: float  # log p(the lines below | the text before + answer); 0.0 when not scored
    score: float  # logprob + weight * after_logprob


@dataclass
class GenerationResult:
    """What one request produced and what it cost."""

    text: str  # the completion after stops were applied (the concatenation of the streamed deltas, or a cut of it)
    tokens: int  # generated tokens counted up to the stop
    # "eos" | "stop_string" | "stop_check" | "max_tokens" | "time_limit" | "cancelled" | "context_full"
    stop_reason: str
    forwards: int  # target forward passes during decoding (prefill excluded)
    accepted_per_forward: float  # mean tokens emitted per target decoding forward (1.0 without speculation)
    prompt_tokens: int = 0
    reused_tokens: int = 0  # prompt tokens whose KV came from the prefix cache
    time_to_first_token_s: float = 0.0
    elapsed_s: float = 0.0
    drafted: dict[str, int] = field(default_factory=dict)  # source -> tokens proposed
    accepted: dict[str, int] = field(default_factory=dict)  # source -> proposed tokens accepted
    logprob: float = 0.0  # sum of the emitted tokens' log-probabilities (kept only for reranked candidates)
    candidates: int = 0  # answers generated (reranked requests)
    ranking: list[RankedAnswer] = field(default_factory=list)  # the distinct answers weighed, best first

    @property
    def cache_hit_rate(self) -> float:
        """Share of this prompt's tokens reused from the prefix cache."""
        return self.reused_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    @property
    def tokens_per_s(self) -> float:
        """Generated tokens per second after the first token (decode speed)."""
        decode_s = self.elapsed_s - self.time_to_first_token_s
        return (self.tokens - 1) / decode_s if self.tokens > 1 and decode_s > 0 else 0.0


@dataclass
class EngineSettings:
    """Knobs of the engine; every field has a working default."""

    max_context: int = 4096  # cap on the static KV cache length (the model's own limit applies too)
    prefill_chunk: int = 256  # prompt tokens per prefill forward (bounds the attention scratch memory)
    # step-path weights computed by the numba row kernel (lean.py, rowkernel.py) when it loads: fp32 on a CPU, numba
    # importable. For the shipped 20 M target on this CPU all of them: a 1-row step ~25% shorter than with MKL GEMVs
    # (wqkv and the LM head alone are about even, the MLP weights faster) and verify rows far cheaper (a weight is read
    # once for up to 4 rows: 8 rows ~2x one row, against ~3x). () keeps every weight in the two classes below.
    row_kernel_weights: tuple[str, ...] = ("wqkv", "wo", "wgu", "wdown", "lm_head")
    kernel_rows: int = 3  # step-path GEMMs run on row groups of at most this many rows (row-exact; see lean.py)
    # step-path weights run as one GEMM of >= 4 rows instead (names from lean.LeanLlama). Which is cheaper depends on
    # the shapes and the CPU: for the shipped 20 M target on this CPU every weight is cheaper in the small-row class
    # at one row (a plain step 11% faster), and the speculative modes come out even (docs/benchmarks.md).
    gemm_weights: tuple[str, ...] = ()
    prefix_cache_bytes: int = 256 * 2**20  # bound of the KV copies kept for other documents
    max_draft: int = 12  # most tokens verified per forward
    draft_min: int = 1
    draft_start: int = 4  # adaptive draft length of the draft model starts here
    cost_aware: bool = True  # measure forward costs at load; speculation "auto" runs the draft model only where it pays
    lookup_max_ngram: int = 4
    lookup_min_ngram: int = 2
    lookup_max_tokens: int = 12
    lean: bool = True  # use the compact Llama path when the architecture allows it
    threads: int = 0  # torch CPU threads (0 = torch's default)
