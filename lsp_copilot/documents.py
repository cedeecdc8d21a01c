"""Open documents: text, version, language, an incrementally updated tree-sitter tree, UTF-16 <-> str/byte offsets."""

from __future__ import annotations

import bisect
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from urllib.parse import unquote, urlparse

from tree_sitter import Parser, Point, Tree

from lsp_copilot.languages import LanguageRegistry, default_registry

DEFAULT_MAX_TREE_BYTES = 2_000_000
# How long an edit in a DocumentStore waits for its reparse. 0: never; the parse worker reparses while the editor
# goes on, and the context waits for it (ContextSettings.tree_wait_ms) only when it needs the tree.
DEFAULT_PARSE_BUDGET_S = 0.0
# py-tree-sitter holds the GIL for a whole Parser.parse call, and a reparse after an edit that breaks Python's block
# structure takes 30-60 ms: the parse worker parses in slices of PARSE_SLICE_S with a PARSE_PAUSE_S sleep between
# them (in the progress callback), in which a thread waiting for the GIL takes it.
PARSE_SLICE_S = 0.0005
PARSE_PAUSE_S = 0.0001
_READ_CHUNK = 1 << 12  # bytes handed to tree-sitter per read callback (also what Node.text reads per call)
# py-tree-sitter before 0.25 has no progress callback: there the worker parses in one call (holding the GIL).
_CAN_SLICE = tuple(int(part) for part in version("tree-sitter").split(".")[:2]) >= (0, 25)

Range = tuple[int, int, int, int]  # (start_line, start_utf16_char, end_line, end_utf16_char)


class PositionError(ValueError):
    """A position or range outside the document (or splitting a surrogate pair)."""


def uri_to_path(uri: str) -> Path | None:
    """The local path of a file:// URI, None for any other scheme (untitled:, vscode-notebook-cell:, ...)."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    path = unquote(parsed.path)
    if parsed.netloc and parsed.netloc != "localhost":  # UNC share
        path = f"//{parsed.netloc}{path}"
    if len(path) >= 3 and path[0] == "/" and path[2] == ":":  # /C:/x -> C:/x
        path = path[1:]
    return Path(path)


def _utf16_len(s: str) -> int:
    """Length of `s` in UTF-16 code units (characters above U+FFFF take two)."""
    if s.isascii():
        return len(s)
    return len(s) + sum(1 for ch in s if ord(ch) > 0xFFFF)


def _utf8_len(s: str) -> int:
    return len(s) if s.isascii() else len(s.encode("utf-8", "surrogatepass"))


def _line_starts(text: str, base: int = 0) -> list[int]:
    """Offsets (plus `base`) of the starts of the lines after each '\\n' of `text`."""
    starts = []
    i = text.find("\n")
    while i >= 0:
        starts.append(base + i + 1)
        i = text.find("\n", i + 1)
    return starts


@dataclass(frozen=True)
class _Edit:
    """One edit in str offsets and in tree-sitter coordinates (bytes, (row, byte column) points)."""

    start: int
    end: int
    start_byte: int
    old_end_byte: int
    new_end_byte: int
    start_point: Point
    old_end_point: Point
    new_end_point: Point


class Document:
    """One open document.

    Invariant: `tree` (when not None) has seen every edit of `text` through `Tree.edit`; it is the parse of exactly
    `text` when `fresh` is True. Without a ParseWorker every reparse is synchronous, so `fresh` is always True; with
    one (in a DocumentStore), a reparse slower than the budget finishes in the background and `tree` is meanwhile the
    old tree with positions shifted by the edits.
    """

    def __init__(self, uri: str, language_id: str, version: int, text: str, path: Path | None = None,
                 *, max_tree_bytes: int = DEFAULT_MAX_TREE_BYTES, registry: LanguageRegistry | None = None,
                 worker: ParseWorker | None = None) -> None:
        self.uri = uri
        self.language_id = language_id
        self.version = version
        self.path = path if path is not None else uri_to_path(uri)
        self.max_tree_bytes = max_tree_bytes
        registry = registry or default_registry()
        self.language: str | None = registry.detect(language_id, self.path)
        self._parser: Parser | None = registry.parser(self.language)
        self.tree: Tree | None = None
        self.fresh = True  # tree is the parse of exactly text (see the class invariant)
        self.edited_at = time.monotonic()  # when it was opened or last changed (recency order for snippets)
        self._worker = worker
        self._lock = threading.Condition()  # guards text/_data/tree/_seq/_log against the parse worker
        self._seq = 0  # number of edits so far
        self._log: list[tuple[int, _Edit | None]] = []  # edits not yet in a fresh tree (None: full replacement)
        self.text = ""
        self._data = b""  # text as UTF-8; what the tree was parsed from
        self._ascii = True  # text.isascii(): str offsets are byte offsets
        self._starts = [0]  # str offset of the start of each line ('\n' separated); always starts with 0
        with self._lock:
            self._set_text(text)

    # -- positions ---------------------------------------------------------------------------------------------------
    @property
    def line_count(self) -> int:
        """Number of lines ('\\n' separated; a trailing newline opens an empty last line)."""
        return len(self._starts)

    def line_text(self, line: int) -> str:
        """The text of a line without its line ending."""
        if not 0 <= line < len(self._starts):
            raise PositionError(f"line {line} is outside the document ({len(self._starts)} lines) of {self.uri}")
        end = self._starts[line + 1] - 1 if line + 1 < len(self._starts) else len(self.text)
        text = self.text[self._starts[line]:end]
        return text[:-1] if text.endswith("\r") else text

    def line_start(self, line: int) -> int:
        """Str offset of the first character of a line."""
        if not 0 <= line < len(self._starts):
            raise PositionError(f"line {line} is outside the document ({len(self._starts)} lines) of {self.uri}")
        return self._starts[line]

    def offset_at(self, line: int, utf16_char: int) -> int:
        """Str index of an LSP position; raises PositionError past the end of the line or of the document."""
        content = self.line_text(line)
        if utf16_char < 0:
            raise PositionError(f"negative character {utf16_char} on line {line} of {self.uri}")
        if content.isascii():
            if utf16_char > len(content):
                raise PositionError(f"character {utf16_char} is past the end of line {line} "
                                    f"({len(content)} characters) of {self.uri}")
            return self._starts[line] + utf16_char
        units = 0
        for i, ch in enumerate(content):
            if units == utf16_char:
                return self._starts[line] + i
            units += 2 if ord(ch) > 0xFFFF else 1
            if units > utf16_char:
                raise PositionError(f"character {utf16_char} on line {line} of {self.uri} splits a surrogate pair")
        if units == utf16_char:
            return self._starts[line] + len(content)
        raise PositionError(f"character {utf16_char} is past the end of line {line} "
                            f"({units} UTF-16 units) of {self.uri}")

    def position_at(self, offset: int) -> tuple[int, int]:
        """(line, UTF-16 character) of a str index; raises PositionError outside [0, len(text)]."""
        if not 0 <= offset <= len(self.text):
            raise PositionError(f"offset {offset} is outside the document (length {len(self.text)}) of {self.uri}")
        line = bisect.bisect_right(self._starts, offset) - 1
        return line, _utf16_len(self.text[self._starts[line]:offset])

    def byte_at(self, offset: int) -> int:
        """UTF-8 byte offset (tree-sitter's unit) of a str index."""
        return offset if self._ascii else _utf8_len(self.text[:offset])

    def point_at(self, offset: int) -> Point:
        """Tree-sitter point (row, byte column) of a str index."""
        line = bisect.bisect_right(self._starts, offset) - 1
        return Point(line, _utf8_len(self.text[self._starts[line]:offset]))

    # -- edits -------------------------------------------------------------------------------------------------------
    def apply_change(self, range: Range | None, new_text: str, version: int) -> None:
        """Apply one LSP content change; the tree is edited and reparsed incrementally. Atomic on PositionError."""
        if range is None:
            with self._lock:
                self.version = version
                self.edited_at = time.monotonic()
                self._set_text(new_text)
            return
        start = self.offset_at(range[0], range[1])
        end = self.offset_at(range[2], range[3])
        if end < start:
            raise PositionError(f"range {range} ends before it starts in {self.uri}")
        with self._lock:
            edit = self._describe_edit(start, end, new_text)
            self._splice(start, end, new_text)
            self.version = version
            self.edited_at = time.monotonic()
            self._reparse(edit)

    def apply_changes(self, changes: Iterable[tuple[Range | None, str]], version: int) -> None:
        """Apply several content changes in order (as one didChange carries them)."""
        for rng, text in changes:
            self.apply_change(rng, text, version)

    def _describe_edit(self, start: int, end: int, new_text: str) -> _Edit:
        start_byte, start_point = self.byte_at(start), self.point_at(start)
        old_end_byte = start_byte + _utf8_len(self.text[start:end])
        old_end_point = self.point_at(end)
        newlines = new_text.count("\n")
        if newlines == 0:
            new_end_point = Point(start_point.row, start_point.column + _utf8_len(new_text))
        else:
            new_end_point = Point(start_point.row + newlines, _utf8_len(new_text[new_text.rfind("\n") + 1:]))
        return _Edit(start, end, start_byte, old_end_byte, start_byte + _utf8_len(new_text), start_point,
                     old_end_point, new_end_point)

    def _splice(self, start: int, end: int, new_text: str) -> None:
        """Replace text[start:end] and update the line starts without rescanning the whole text."""
        self.text = self.text[:start] + new_text + self.text[end:]
        self._ascii = new_text.isascii() if self._ascii else self.text.isascii()  # deleting may make it ASCII again
        delta = len(new_text) - (end - start)
        first = bisect.bisect_right(self._starts, start)  # first line start strictly after `start`
        last = bisect.bisect_right(self._starts, end)  # line starts in (start, end] are removed
        tail = self._starts[last:]
        if delta:
            tail = [s + delta for s in tail]
        self._starts[first:] = _line_starts(new_text, start) + tail

    def _set_text(self, text: str) -> None:
        self.text = text
        self._ascii = text.isascii()
        self._starts = [0, *_line_starts(text)]
        self.tree = None
        self._reparse(None)

    def _reparse(self, edit: _Edit | None) -> None:
        """Keep the tree in sync: Tree.edit + parse(new, old_tree); no tree for huge or binary text. Holds _lock."""
        self._seq += 1
        if self._parser is None:
            return
        self._data = self.text.encode("utf-8", "surrogatepass")
        if len(self._data) > self.max_tree_bytes or b"\x00" in self._data:
            self.tree, self.fresh = None, True  # plain-text fallback: the context then uses windows only
            self._log.clear()
            return
        if self.tree is not None and edit is not None:
            _apply_edit(self.tree, edit)
        else:
            self.tree = None
        if self._worker is None:
            self.tree = self._parser.parse(self._data, self.tree) if self.tree is not None else \
                self._parser.parse(self._data)
            return
        self.fresh = False
        self._log.append((self._seq, edit))
        self._worker.submit(self)
        if self._worker.budget_s > 0:
            self._lock.wait_for(lambda: self.fresh, timeout=self._worker.budget_s)

    def wait_fresh(self, timeout: float | None = None) -> bool:
        """Block until the tree is the parse of the current text (a background reparse finished); True if it is."""
        with self._lock:
            return self._lock.wait_for(lambda: self.fresh, timeout=timeout)

    # -- the parse worker's side (runs in its thread) ------------------------------------------------------------------
    def _snapshot(self, base: Tree | None) -> tuple[int, bytes, Tree | None, str | None]:
        with self._lock:
            old = base if base is not None else (self.tree.copy() if self.tree is not None else None)
            return self._seq, self._data, old, self.language

    def _install(self, seq: int, tree: Tree) -> Tree | None:
        """Install a background parse made at edit `seq`; if edits came since, the tree edited by them (to reparse)."""
        with self._lock:
            if self.fresh:
                return None
            if self._seq == seq:
                self.tree, self.fresh = tree, True
                self._log.clear()
                self._lock.notify_all()
                return None
            later = [edit for s, edit in self._log if s > seq]
            self._log = [(s, edit) for s, edit in self._log if s > seq]
            if any(edit is None for edit in later) or self.tree is None:
                return None  # a full replacement since: parse again from the document's own tree (or scratch)
            for edit in later:
                _apply_edit(tree, edit)  # type: ignore[arg-type]
            return tree

    @property
    def has_tree(self) -> bool:
        """True when a syntax tree is kept (a known language, not huge, not binary)."""
        return self.tree is not None

    def __repr__(self) -> str:
        return f"Document({self.uri!r}, v{self.version}, {self.language or 'plain'}, {len(self.text)} chars)"


def _apply_edit(tree: Tree, edit: _Edit) -> None:
    tree.edit(edit.start_byte, edit.old_end_byte, edit.new_end_byte, edit.start_point, edit.old_end_point,
              edit.new_end_point)


def parse_sliced(parser: Parser, data: bytes, old: Tree | None = None, slice_s: float = PARSE_SLICE_S,
                 pause_s: float = PARSE_PAUSE_S) -> Tree:
    """parser.parse(data, old), the same tree, but holding the GIL for at most about `slice_s` at a time (plus the
    final tree building after the last progress check: ~2 ms for 10,000 lines of Python).

    The progress callback (called every 100 parser operations) sleeps `pause_s` once a slice is over: the parse
    stays suspended in this thread, the GIL is free meanwhile. It never cancels: tree-sitter can resume a cancelled
    parse, but the resumed call restarts its round over the stack versions, so with several versions (error
    recovery) the tree may differ from one uninterrupted call's. The Tree's source is the read callback: Node.text
    works.
    """
    if not _CAN_SLICE:
        return parser.parse(data, old) if old is not None else parser.parse(data)

    def read(offset: int, _point: Point) -> bytes:
        return data[offset:offset + _READ_CHUNK]

    deadline = time.perf_counter() + slice_s
    errors: list[BaseException] = []

    def progress(_offset: int, _has_error: bool) -> bool:
        nonlocal deadline
        try:
            if time.perf_counter() > deadline:
                time.sleep(pause_s)  # releases the GIL
                deadline = time.perf_counter() + slice_s
        except BaseException as exc:  # raising here would crash py-tree-sitter 0.26 (it does not check): re-raised
            errors.append(exc)
        return False

    tree = parser.parse(read, old, progress_callback=progress) if old is not None else \
        parser.parse(read, progress_callback=progress)
    if errors:
        raise errors[0]
    return tree


class ParseWorker:
    """One background thread that reparses edited documents, so that didChange returns at once and the reparse
    overlaps the time until the next completion request. It parses in slices (parse_sliced): py-tree-sitter holds
    the GIL for a whole parse, so an unsliced slow reparse would block the context build in the editing thread.

    Invariant: a document is queued at most once; the worker loops on it until its tree is fresh, reusing its own
    latest parse (edited by the edits that arrived meanwhile) as the old tree.
    """

    def __init__(self, registry: LanguageRegistry, budget_s: float = DEFAULT_PARSE_BUDGET_S,
                 slice_s: float = PARSE_SLICE_S, pause_s: float = PARSE_PAUSE_S) -> None:
        self.budget_s = budget_s
        self.slice_s = slice_s  # the longest the worker holds the GIL at a time (see parse_sliced)
        self.pause_s = pause_s
        self._registry = registry
        self._queue: queue.SimpleQueue[Document] = queue.SimpleQueue()
        self._queued: set[int] = set()  # id() of the documents queued or being parsed
        self._lock = threading.Lock()
        self._parsers: dict[str, Parser | None] = {}  # used by the worker thread only
        self._thread: threading.Thread | None = None

    def submit(self, doc: Document) -> None:
        with self._lock:
            if id(doc) in self._queued:
                return
            self._queued.add(id(doc))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lsp-copilot-parse", daemon=True)
                self._thread.start()
        self._queue.put(doc)

    def _run(self) -> None:
        while True:
            doc = self._queue.get()
            try:
                self._catch_up(doc)
            finally:
                with self._lock:
                    self._queued.discard(id(doc))
            if not doc.fresh:  # an edit arrived between the last install and the discard
                self.submit(doc)

    def _catch_up(self, doc: Document) -> None:
        base: Tree | None = None
        while not doc.fresh:
            seq, data, old, language = doc._snapshot(base)
            key = language or ""
            if key not in self._parsers:
                self._parsers[key] = self._registry.parser(language)
            parser = self._parsers[key]
            if parser is None:
                return
            tree = parse_sliced(parser, data, old, self.slice_s, self.pause_s)
            base = doc._install(seq, tree)


class DocumentStore:
    """uri -> Document for the open documents, plus the order in which they were last edited (for snippets)."""

    def __init__(self, max_tree_bytes: int = DEFAULT_MAX_TREE_BYTES, registry: LanguageRegistry | None = None,
                 parse_budget_s: float | None = DEFAULT_PARSE_BUDGET_S) -> None:
        """parse_budget_s: how long an edit waits for its reparse before it goes on with the shifted old tree
        (None: always parse synchronously)."""
        self.max_tree_bytes = max_tree_bytes
        self._registry = registry or default_registry()
        self._worker = ParseWorker(self._registry, parse_budget_s) if parse_budget_s is not None else None
        self._docs: dict[str, Document] = {}

    def open(self, uri: str, language_id: str, version: int, text: str, path: Path | None = None) -> Document:
        """Open (or reopen, replacing) a document."""
        doc = Document(uri, language_id, version, text, path, max_tree_bytes=self.max_tree_bytes,
                       registry=self._registry, worker=self._worker)
        self._docs[uri] = doc
        return doc

    def change(self, uri: str, changes: Iterable[tuple[Range | None, str]], version: int) -> Document:
        """Apply a didChange's content changes; KeyError for a document that is not open."""
        doc = self[uri]
        doc.apply_changes(changes, version)
        return doc

    def close(self, uri: str) -> Document | None:
        """Forget a document; returns it (None if it was not open)."""
        return self._docs.pop(uri, None)

    def get(self, uri: str) -> Document | None:
        return self._docs.get(uri)

    def __getitem__(self, uri: str) -> Document:
        doc = self._docs.get(uri)
        if doc is None:
            raise KeyError(f"document {uri} is not open")
        return doc

    def __contains__(self, uri: object) -> bool:
        return uri in self._docs

    def __iter__(self) -> Iterator[Document]:
        return iter(list(self._docs.values()))

    def __len__(self) -> int:
        return len(self._docs)

    def recently_edited(self, limit: int | None = None) -> list[Document]:
        """Open documents, most recently edited (or opened) first (edits made through Document.apply_change too)."""
        return sorted(self._docs.values(), key=lambda d: d.edited_at, reverse=True)[:limit]
