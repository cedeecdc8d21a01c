"""Context for a file of a workspace on disk (for `lsp-copilot context` and the cross-file evaluation)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

from lsp_copilot.context.builder import CompletionContext, ContextBuilder
from lsp_copilot.context.settings import ContextSettings
from lsp_copilot.documents import DocumentStore


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate (about 3.5 characters a token), for tests and tools without a model."""
    return (len(text) * 2 + 6) // 7


class WorkspaceContext:
    """A workspace on disk with its index built once; context for any file and position in it.

    `use_index=False` gives the same context without the workspace index (the evaluation's baseline).
    """

    def __init__(self, root: Path, settings: ContextSettings | None = None,
                 count_tokens: Callable[[str], int] = estimate_tokens, use_index: bool = True) -> None:
        self.root = Path(root).resolve()
        self.settings = replace(settings or ContextSettings(), enable_index=use_index)
        self.builder = ContextBuilder(self.settings, count_tokens)
        self.builder.set_workspace([self.root], background=False)

    def build(self, path: Path, line: int, character: int, text: str | None = None,
              open_files: Iterable[Path] = ()) -> CompletionContext:
        """Context at (line, UTF-16 character) of `path` (its text on disk unless `text` is given, e.g. with a hole
        punched). `open_files` are opened too, as an editor would have them (definitions and snippets)."""
        store = DocumentStore(parse_budget_s=None)  # synchronous parses: deterministic
        for other in open_files:
            other = self._inside(other)
            store.open(other.as_uri(), "", 0, other.read_text(encoding="utf-8"))
        path = self._inside(path)
        doc = store.open(path.as_uri(), "", 0, text if text is not None else path.read_text(encoding="utf-8"))
        return self.builder.build(doc, doc.offset_at(line, character), store)

    def build_at_offset(self, path: Path, offset: int, text: str) -> CompletionContext:
        """Context at a str offset of `text`, the content of `path` (which need not exist on disk)."""
        store = DocumentStore(parse_budget_s=None)  # synchronous parses: deterministic
        doc = store.open(self._inside(path, must_exist=False).as_uri(), "", 0, text)
        return self.builder.build(doc, offset, store)

    def close(self) -> None:
        self.builder.close()

    def _inside(self, path: Path, must_exist: bool = True) -> Path:
        resolved = (self.root / path).resolve() if not Path(path).is_absolute() else Path(path).resolve()
        if not resolved.is_relative_to(self.root):
            raise ValueError(f"{path} is outside the workspace {self.root}")
        if must_exist and not resolved.is_file():
            raise FileNotFoundError(f"{resolved} does not exist")
        return resolved
