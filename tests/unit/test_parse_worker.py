"""The parse worker parses in slices: the same trees as one Parser.parse call, and the GIL is free between slices."""

from __future__ import annotations

import random
from typing import Any

import pytest
from tree_sitter import Parser, Point, Tree

from lsp_copilot.benchmarks.context import generate_python
from lsp_copilot.documents import Document, DocumentStore, parse_sliced
from lsp_copilot.languages import LanguageRegistry, default_registry


def _point(data: bytes, offset: int) -> Point:
    return Point(data.count(b"\n", 0, offset), offset - (data.rfind(b"\n", 0, offset) + 1))


def _edited(tree: Tree, data: bytes, start: int, end: int, new: bytes) -> tuple[Tree, bytes]:
    """A copy of `tree` edited for data[start:end] = new, and the new data."""
    copy = tree.copy()
    out = data[:start] + new + data[end:]
    copy.edit(start, end, start + len(new), _point(data, start), _point(data, end), _point(out, start + len(new)))
    return copy, out


def test_sliced_parse_is_the_plain_parse_after_random_edits() -> None:
    """Pausing at every progress check (slice 0): the same tree as an unsliced parse, full or incremental, across
    edits that break the indentation structure; Node.text reads the parsed text (through the read callback)."""
    parser, plain = default_registry().parser("python"), default_registry().parser("python")
    assert parser is not None and plain is not None
    data = generate_python(1_500, seed=5).encode()
    tree = parse_sliced(parser, data, slice_s=0.0, pause_s=0.0)
    assert str(tree.root_node) == str(plain.parse(data).root_node) and tree.root_node.text == data
    rng = random.Random(7)
    for _ in range(12):
        start = rng.randrange(len(data))
        if rng.random() < 0.5:  # delete or add leading indentation, else a random snippet
            start = data.rfind(b"\n", 0, start) + 1
            end, new = (start + 4, b"") if data.startswith(b"    ", start) else (start, b"  ")
        else:
            end, new = min(len(data), start + rng.randrange(3)), rng.choice([b"(", b":", b"\n", b"x = ", b"'", b""])
        old, new_data = _edited(tree, data, start, end, new)
        reference_old, _ = _edited(tree, data, start, end, new)
        tree, data = parse_sliced(parser, new_data, old, slice_s=0.0, pause_s=0.0), new_data
        assert str(tree.root_node) == str(plain.parse(data, reference_old).root_node)
        first = tree.root_node.children[0]
        assert first.text == data[first.start_byte:first.end_byte]


def test_characters_split_across_read_chunks() -> None:
    """Multi-byte characters cut by the read callback's 4 KiB chunks decode as in one buffer."""
    parser, plain = default_registry().parser("python"), default_registry().parser("python")
    assert parser is not None and plain is not None
    data = "".join(f"s{i} = '{'é' * (i % 7)}😀€'\n" for i in range(3_000)).encode()
    tree = parse_sliced(parser, data, slice_s=0.0, pause_s=0.0)
    assert not tree.root_node.has_error and str(tree.root_node) == str(plain.parse(data).root_node)
    last = tree.root_node.children[-1]
    assert last.text == data[last.start_byte:last.end_byte]


def test_failures_raise() -> None:
    with pytest.raises(ValueError):
        parse_sliced(Parser(), b"x = 1\n", slice_s=0.0, pause_s=0.0)  # no language


def test_an_error_in_the_progress_callback_is_raised_after_the_parse() -> None:
    """Raising through py-tree-sitter's progress callback would crash the interpreter: raised once parse returns."""
    parser = default_registry().parser("python")
    assert parser is not None
    with pytest.raises(ValueError, match="non-negative"):  # time.sleep(-1.0) in the callback
        parse_sliced(parser, generate_python(300, seed=1).encode(), slice_s=0.0, pause_s=-1.0)


class _CountingParser:
    """A Parser that counts the progress checks of its parses (every 100 parser operations)."""

    def __init__(self, parser: Parser, registry: _CountingRegistry) -> None:
        self._parser, self._registry = parser, registry

    def parse(self, *args: Any, progress_callback: Any = None, **kwargs: Any) -> Tree:
        def progress(offset: int, has_error: bool) -> bool:
            self._registry.calls += 1
            return bool(progress_callback(offset, has_error)) if progress_callback is not None else False

        parse: Any = self._parser.parse
        return parse(*args, progress_callback=progress, **kwargs)


class _CountingRegistry(LanguageRegistry):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def parser(self, grammar: str | None) -> Any:
        real = super().parser(grammar)
        return _CountingParser(real, self) if real is not None else None


def _progress_seen_while_parsing(doc: Any, registry: _CountingRegistry) -> set[int]:
    """Spin in this (the editing) thread until the worker's parse is done; the progress counts seen meanwhile."""
    seen = set()
    while not doc.fresh:
        seen.add(registry.calls)
    return seen


def test_the_editing_thread_runs_between_slices_of_a_long_reparse() -> None:
    """No wall-clock threshold: this thread notes the worker's progress counts it sees while the tree is not fresh,
    i.e. how often it ran during the parse. A parse that holds the GIL from start to end shows at most 2 values."""
    registry = _CountingRegistry()
    store = DocumentStore(registry=registry)
    text = generate_python(10_000, seed=0)
    doc = store.open("file:///w/big.py", "python", 0, text)
    assert len(_progress_seen_while_parsing(doc, registry)) >= 4  # the full parse of the opened file
    assert doc.wait_fresh(30) and doc.tree is not None and not doc.tree.root_node.has_error
    # Remove the indentation of a method body line in the middle: the block structure breaks, a long reparse.
    line = next(i for i in range(5_000, 6_000) if doc.line_text(i).startswith("        for i, x in "))
    registry.calls = 0
    doc.apply_change((line, 0, line, 8), "", 1)
    assert len(_progress_seen_while_parsing(doc, registry)) >= 4
    sync = Document("file:///w/big.py", "python", 0, text)  # no worker: one unsliced parse per edit
    sync.apply_change((line, 0, line, 8), "", 1)
    assert doc.wait_fresh(30) and doc.tree is not None and sync.tree is not None
    assert str(doc.tree.root_node) == str(sync.tree.root_node)
