"""Model-backed completers: through the server's pipeline when it is importable, else the direct greedy reference."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lsp_copilot.evaluation.completers import Completer, Completion, CompletionQuery, DirectModelCompleter

log = logging.getLogger(__name__)

EMBEDDED_DIR = Path(__file__).resolve().parent.parent / "models"
# A file outside any real folder for single-file tasks: the context builder sees a path but nothing to index.
_DETACHED_ROOT = Path("/lsp-copilot-eval")


class PipelineCompleter:
    """Completes exactly as the server does: Document -> ContextBuilder -> template -> Engine -> postprocess.

    One engine is loaded; one ContextBuilder per workspace (None = no workspace index) is built lazily and kept.
    Before each query on a workspace the current file's text is handed to the index (`update_file`), as a
    `didChange` would, so the index never sees the answer line that the task removed.
    """

    def __init__(self, model_dir: Path, draft_dir: Path | None = None, settings: Any = None) -> None:
        from lsp_copilot.pipeline import load_model
        from lsp_copilot.settings import Settings

        self.settings = settings or Settings()
        self.settings.model.path = str(model_dir)
        self.settings.model.draft = str(draft_dir) if draft_dir is not None else ""
        self.settings.completion.time_limit_ms = 60_000  # no time cap: evaluation measures quality, not latency
        self.settings.completion.multiline = "never"  # every task here is single-line
        self.model = load_model(self.settings)
        self._builders: dict[Path | None, Any] = {}

    def builder_for(self, workspace: Path | None) -> Any:
        """The ContextBuilder for `workspace`, its index built (waits for the background indexer)."""
        if workspace not in self._builders:
            from lsp_copilot.context import ContextBuilder

            builder = ContextBuilder(self.settings.context, self.model.engine.count_tokens)
            if workspace is not None:
                builder.set_workspace([workspace], background=False)  # indexed before the first query
            self._builders[workspace] = builder
        return self._builders[workspace]

    def prepare(self, query: CompletionQuery) -> tuple[Any, Any]:
        """(Pipeline, PreparedCompletion) for the query: context and prompt exactly as the server builds them."""
        from lsp_copilot.documents import DocumentStore
        from lsp_copilot.pipeline import Pipeline

        root = query.workspace if query.workspace is not None else _DETACHED_ROOT
        path = root / query.path
        builder = self.builder_for(query.workspace)
        if query.workspace is not None:
            builder.update_file(path, query.text)
        store = DocumentStore()
        doc = store.open(path.as_uri(), "python" if path.suffix == ".py" else "plaintext", 1, query.text, path)
        # An editor opened the file long before the keystroke: the tree is there (the server itself never waits
        # more than `tree_wait_ms`, which would make the scores depend on the machine's load).
        doc.wait_fresh(30.0)
        pipeline = Pipeline(self.model, builder, self.settings.completion)
        return pipeline, pipeline.prepare(doc, query.offset, store)

    def __call__(self, query: CompletionQuery) -> Completion:
        pipeline, prepared = self.prepare(query)
        run = pipeline.start(prepared)
        for _ in run.iterate():
            pass
        suggestion = run.suggestion()
        shown = "\n".join(f"{part.path}\n{part.text}" for part in prepared.ctx.parts)
        return Completion(suggestion.text, suggestion.tokens, shown)

    def answer_loss(self, query: CompletionQuery, answer: str) -> float:
        """Mean negative log-likelihood (nats per token) of `answer` right after the server's prompt for `query`."""
        logprobs = self.model.engine.continuation_logprobs(self.prepare(query)[1].prompt, answer)
        return -sum(logprobs) / len(logprobs)

    def count_tokens(self, text: str) -> int:
        return int(self.model.engine.count_tokens(text))


def threaded_completer(model_dir: Path, draft_dir: Path | None, threads: int, device: str = "cpu"
                       ) -> PipelineCompleter:
    """A PipelineCompleter whose engine and torch use `threads` CPU threads on `device` (benchmarks, sweeps)."""
    import torch

    from lsp_copilot.settings import Settings

    torch.set_num_threads(threads)
    settings = Settings()
    settings.model.threads = threads
    settings.model.device = device
    return PipelineCompleter(model_dir, draft_dir, settings)


def make_model_completer(model_dir: Path, draft_dir: Path | None = None, direct: bool = False,
                         candidates: int | None = None) -> tuple[Completer, str]:
    """(completer, "pipeline" | "direct"): the server's pipeline unless `direct` or the pipeline cannot be imported.

    `candidates` overrides the server's `completion.candidates` (1: the greedy answer alone).
    """
    if not (Path(model_dir) / "config.json").exists():
        raise FileNotFoundError(f"{model_dir}: no config.json; pass --model DIR with a model saved by save_pretrained")
    if not direct:
        try:
            completer = PipelineCompleter(Path(model_dir), draft_dir)
            if candidates is not None:
                completer.settings.completion.candidates = candidates
            return completer, "pipeline"
        except ImportError as exc:
            log.warning("the pipeline is not importable (%s); completing with the direct greedy reference", exc)
    return DirectModelCompleter(Path(model_dir)), "direct"
