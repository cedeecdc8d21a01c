"""One completion, end to end: document + cursor -> context -> prompt -> engine stream -> post-processed text."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from transformers import AutoConfig
from transformers.utils import logging as hf_logging

from lsp_copilot.context import CompletionContext, ContextBuilder
from lsp_copilot.documents import Document, DocumentStore
from lsp_copilot.engine import (
    CancelToken,
    Engine,
    EngineSettings,
    GenerationRequest,
    GenerationResult,
    RankedAnswer,
    RerankRequest,
    Scheduler,
)
from lsp_copilot.postprocess import StopPolicy, finalize
from lsp_copilot.prompts import (
    PromptTemplate,
    banned_tokens,
    check_template,
    detect_template,
    extract_middle,
    load_templates,
    render_prompt,
)
from lsp_copilot.settings import CompletionSettings, Settings

log = logging.getLogger(__name__)

EMBEDDED_MODELS = Path(__file__).resolve().parent / "models"


def embedded_model_dirs() -> tuple[Path, Path]:
    """(target, draft) directories of the models shipped inside the package."""
    return EMBEDDED_MODELS / "target", EMBEDDED_MODELS / "draft"


def resolve_model_dirs(settings: Settings) -> tuple[Path, Path | None]:
    """The model and draft directories the settings ask for; the embedded pair when no model is set."""
    target, draft = embedded_model_dirs()
    if not settings.model.path:
        return target, Path(settings.model.draft).expanduser() if settings.model.draft else draft
    draft_dir = Path(settings.model.draft).expanduser() if settings.model.draft else None
    return Path(settings.model.path).expanduser(), draft_dir


@dataclass
class LoadedModel:
    """A resident engine with the template chosen and checked for its tokenizer."""

    engine: Engine
    template: PromptTemplate
    model_dir: Path
    draft_dir: Path | None


def load_model(settings: Settings) -> LoadedModel:
    """Load the configured model (and draft) and pick its prompt template; raises with a clear message on failure."""
    model_dir, draft_dir = resolve_model_dirs(settings)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"no model at {model_dir}: expected a Hugging Face model directory with config.json")
    hf_logging.disable_progress_bar()  # "Loading weights" bars would clutter `complete`'s terminal and the log
    templates = load_templates([Path(p).expanduser() for p in settings.prompts.paths])
    config = AutoConfig.from_pretrained(model_dir)
    engine = Engine.load(model_dir, draft_dir, device=settings.model.device,
                         settings=EngineSettings(threads=settings.model.threads))
    template = detect_template(engine.tokenizer, config, templates, settings.model.template or None)
    check_template(template, engine.tokenizer)
    return LoadedModel(engine, template, model_dir, draft_dir)


@dataclass
class PreparedCompletion:
    """Everything decided before the first token: the context, the prompt and the generation request."""

    ctx: CompletionContext
    prompt: str
    request: GenerationRequest
    offset: int
    prepare_ms: float


@dataclass
class Suggestion:
    """A finished suggestion for a cursor offset."""

    text: str
    stop_reason: str
    tokens: int = 0
    from_cache: bool = False
    stats: dict[str, float] = field(default_factory=dict)
    ranking: list[RankedAnswer] = field(default_factory=list)  # the candidates weighed, best first (reranked)


@dataclass
class _Shown:
    """The last suggestion drawn for a document, kept so typing it through needs no new generation."""

    before: str  # document text before the cursor (its last 4 KB) when the suggestion was made
    after: str  # the rest of the cursor line after the cursor
    text: str
    complete: bool  # ended by the model or a syntax stop, not by a time cap or cancellation


class SuggestionCache:
    """Per-document memory of the suggestion on screen (llama.vim's trick): typing its first characters keeps it."""

    def __init__(self) -> None:
        self._shown: dict[str, _Shown] = {}

    def remember(self, uri: str, text: str, offset: int, suggestion: Suggestion) -> None:
        if not suggestion.text:
            self._shown.pop(uri, None)
            return
        complete = suggestion.stop_reason not in ("time", "cancelled", "max_tokens")
        self._shown[uri] = _Shown(_before(text, offset), _line_after(text, offset), suggestion.text, complete)

    def lookup(self, uri: str, text: str, offset: int) -> tuple[str, bool] | None:
        """(remainder, complete) if the text before the cursor is the old one plus a prefix of the suggestion."""
        shown = self._shown.get(uri)
        if shown is None or _line_after(text, offset) != shown.after:
            return None
        before = _before(text, offset)
        for typed_len in range(0, min(len(shown.text), len(before)) + 1):
            typed = shown.text[:typed_len]
            if before.endswith(typed) and before[: len(before) - typed_len].endswith(shown.before[-2048:]):
                remainder = shown.text[typed_len:]
                return (remainder, shown.complete) if remainder else None
        return None

    def forget(self, uri: str) -> None:
        self._shown.pop(uri, None)


def _before(text: str, offset: int) -> str:
    return text[max(0, offset - 4096) : offset]


def _line_after(text: str, offset: int) -> str:
    end = text.find("\n", offset)
    return text[offset : len(text) if end < 0 else end]


class Pipeline:
    """Turns (document, cursor offset) into a stream of post-processed suggestion texts. Knows nothing of LSP."""

    def __init__(self, model: LoadedModel, context_builder: ContextBuilder, settings: CompletionSettings) -> None:
        self.model = model
        self.context_builder = context_builder
        self.settings = settings
        self.cache = SuggestionCache()

    def prepare(
        self, doc: Document, offset: int, store: DocumentStore, expected: str | None = None
    ) -> PreparedCompletion:
        """Build context and prompt for the cursor at `offset` (a str index into `doc.text`)."""
        started = time.perf_counter()
        ctx = self.context_builder.build(doc, offset, store)
        if self.settings.multiline != "auto":
            ctx.multiline = self.settings.multiline == "always"
        template = self.model.template
        roots = self.context_builder.index.roots
        prompt = render_prompt(template, ctx, repo=roots[0].name if roots else None)
        s = self.settings
        request = GenerationRequest(
            prompt=prompt,
            max_new_tokens=s.max_tokens if ctx.multiline else min(s.max_tokens, 48),
            temperature=s.temperature,
            top_p=s.top_p,
            stop_strings=list(template.stop),
            banned_tokens=banned_tokens(template),
            allow_empty=template.allow_empty,
            stop_check=StopPolicy(ctx).check if template.syntax_stop else None,
            time_limit_s=s.time_limit_ms / 1000.0,
            speculation=s.speculation,
            expected_continuation=expected,
            guide_names=self.guide_names(ctx, template),
            guide_typed=ctx.member_typed,
            guide_uses=ctx.member_uses,
            guide_usage_weight=s.member_usage_weight,
            rerank=self.rerank_request(ctx, template),
        )
        return PreparedCompletion(ctx, prompt, request, offset, (time.perf_counter() - started) * 1000.0)

    def guide_names(self, ctx: CompletionContext, template: PromptTemplate) -> list[str]:
        """The names the answer must start by finishing: what the module before the cursor binds, when the
        cursor follows `module.` of a workspace module (`CompletionSettings.guard_members`); else none."""
        if not self.settings.guard_members or template.mode == "chat":
            return []
        return ctx.members

    def rerank_request(self, ctx: CompletionContext, template: PromptTemplate) -> RerankRequest | None:
        """Candidates for a single-line answer, scored by how the lines after the cursor read under each
        (`CompletionSettings.candidates`); none for blocks, for chat families (whose answers are not raw code) and
        where the name guide applies."""
        s = self.settings
        if s.candidates < 2 or ctx.multiline or template.mode == "chat":
            return None
        if self.guide_names(ctx, template):
            # after `module.` the name guide chooses, weighing the file's usage: reranking by the whole answer's
            # likelihood would prefer the name with the shortest arguments (the right API on held-out call sites
            # 15.6% -> 11.1%, docs/benchmarks.md)
            return None
        after = "\n".join(ctx.suffix.split("\n")[: s.rerank_lines + 1])  # the rest of the line + rerank_lines lines
        return RerankRequest(s.candidates, ctx.prefix, after, s.rerank_weight, s.candidate_gap,
                             shown=lambda raw: self.shown_text(raw, ctx))

    def shown_text(self, raw: str, ctx: CompletionContext) -> str:
        """What the user sees for raw generated text: the middle extracted (chat families), then post-processed."""
        return finalize(extract_middle(self.model.template, raw, ctx), ctx)

    def start(self, prepared: PreparedCompletion) -> CompletionRun:
        """A run of the prepared request; iterate it (blocking or async), then ask it for the suggestion."""
        return CompletionRun(self, prepared)


class CompletionRun:
    """One generation: accumulates raw text, yields the shown text whenever it changes, then the final suggestion."""

    def __init__(self, pipeline: Pipeline, prepared: PreparedCompletion) -> None:
        self.pipeline = pipeline
        self.prepared = prepared
        self.raw = ""
        self.shown = ""
        self.result: GenerationResult | None = None

    def _feed(self, delta: str) -> bool:
        """Add a text delta; True if the shown text changed."""
        self.raw += delta
        shown = self.pipeline.shown_text(self.raw, self.prepared.ctx)
        changed = shown != self.shown
        self.shown = shown
        return changed

    def iterate(self, cancel: CancelToken | None = None) -> Iterator[str]:
        """Blocking: run the engine in this thread, yielding the shown text after each change."""
        engine = self.pipeline.model.engine
        cancel = cancel or CancelToken()
        for delta in engine.generate(self.prepared.request, cancel):
            if self._feed(delta):
                yield self.shown
        self.result = engine.last_result  # this thread ran the request: the last result is ours

    async def aiterate(self, scheduler: Scheduler, cancel: CancelToken) -> AsyncIterator[str]:
        """Through the scheduler's worker thread, so the event loop never waits on the model."""
        async for delta in scheduler.stream(self.prepared.request, cancel):
            if self._feed(delta):
                yield self.shown
        self.result = cancel.result

    def suggestion(self, cancelled: bool = False) -> Suggestion:
        """The final suggestion (empty when cancelled or superseded)."""
        if cancelled:
            return Suggestion("", "cancelled")
        r = self.result
        if r is None:
            return Suggestion(self.shown, "unknown")
        # The engine's text is authoritative: a syntax stop may cut inside text already streamed.
        text = self.pipeline.shown_text(r.text, self.prepared.ctx)
        stats = {"prepare_ms": self.prepared.prepare_ms, "accepted_per_forward": r.accepted_per_forward,
                 "prefix_cache_hit_rate": r.cache_hit_rate, "time_to_first_token_ms": r.time_to_first_token_s * 1000,
                 "candidates": r.candidates}
        return Suggestion(text, r.stop_reason, r.tokens, stats=stats, ranking=r.ranking)
