"""Property: after random edit sequences the incremental tree equals a fresh full parse and the text is as expected."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tree_sitter import Point

from lsp_copilot.documents import Document, DocumentStore, parse_sliced
from lsp_copilot.languages import default_registry

SEEDS = {
    "python": "import os\n\nclass A:\n    def f(self, x):\n        return [x, 'é€😀']\n",
    "typescript": "import { a } from './a';\nexport function f(x: number): string {\n  return `${x}😀`;\n}\n",
    "go": "package main\n\nfunc f(x int) int {\n\treturn x * 2 // é\n}\n",
    "rust": "fn f(x: i32) -> i32 {\n    let s = \"€\";\n    x + 1\n}\n",
}
# Characters that change the syntax a lot: brackets, quotes, newlines, non-ASCII and astral (two UTF-16 units) text.
ALPHABET = st.sampled_from([*"abx1 \n\t(){}[]:;,.'\"#/=+", "é", "€", "😀", "\r\n"])


def _utf16_to_position(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    line = before.count("\n")
    col_text = before[before.rfind("\n") + 1:]
    return line, sum(2 if ord(c) > 0xFFFF else 1 for c in col_text)


@st.composite
def edit_sequences(draw: st.DrawFn) -> tuple[str, list[tuple[float, float, str]]]:
    language = draw(st.sampled_from(sorted(SEEDS)))
    edits = draw(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.lists(ALPHABET, max_size=6).map("".join)),
                          min_size=1, max_size=12))
    return language, edits


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edit_sequences())
def test_incremental_tree_equals_full_parse(case: tuple[str, list[tuple[float, float, str]]]) -> None:
    _check_edit_sequence(case, None)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edit_sequences(), st.sampled_from([0.0, 0.0005]))
def test_background_reparse_catches_up_to_a_full_parse(case: tuple[str, list[tuple[float, float, str]]],
                                                       budget: float) -> None:
    """With a zero or tiny foreground budget every reparse finishes in the parse worker, across later edits."""
    _check_edit_sequence(case, DocumentStore(parse_budget_s=budget))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edit_sequences())
def test_sliced_parse_equals_one_parse_call(case: tuple[str, list[tuple[float, float, str]]]) -> None:
    """parse_sliced with slices of 0 s (a pause at every progress check, every 100 parser operations: hence the 30
    copies of the seed; text read in chunks) gives the tree of one Parser.parse call with the same old tree."""
    language, edits = case
    sliced, plain = default_registry().parser(language), default_registry().parser(language)
    assert sliced is not None and plain is not None
    data = (SEEDS[language] * 30).encode()
    tree = parse_sliced(sliced, data, slice_s=0.0, pause_s=0.0)
    assert str(tree.root_node) == str(plain.parse(data).root_node)
    for a, b, new_text in edits:
        start, end = sorted((int(a * len(data)), int(b * len(data))))
        new = new_text.encode()
        out = data[:start] + new + data[end:]
        edit = (start, end, start + len(new), _point(data, start), _point(data, end), _point(out, start + len(new)))
        reference = tree.copy()
        tree.edit(*edit)
        reference.edit(*edit)
        tree, data = parse_sliced(sliced, out, tree, slice_s=0.0, pause_s=0.0), out
        assert str(tree.root_node) == str(plain.parse(data, reference).root_node)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edit_sequences())
def test_sliced_background_reparse_equals_the_synchronous_reparse(
        case: tuple[str, list[tuple[float, float, str]]]) -> None:
    """The parse worker with slices of 0 s keeps the tree a Document without a worker has, edit after edit. (Not
    compared with a fresh parse: after error recovery one incremental parse of several edits, which the worker does
    when edits pile up during a parse, may differ from a fresh parse; tree-sitter does not promise equality.)"""
    language, edits = case
    text = SEEDS[language] * 30
    store = DocumentStore(parse_budget_s=0.0)
    assert store._worker is not None
    store._worker.slice_s = store._worker.pause_s = 0.0
    doc = store.open("file:///w/x", language, 0, text)
    sync = Document("file:///w/x", language, 0, text)
    for version, (a, b, new) in enumerate(edits, start=1):
        start, end = _clean_range(text, a, b)
        rng = (*_utf16_to_position(text, start), *_utf16_to_position(text, end))
        doc.apply_change(rng, new, version)
        sync.apply_change(rng, new, version)
        text = text[:start] + new + text[end:]
        assert doc.wait_fresh(10) and doc.tree is not None and sync.tree is not None and doc.text == text
        assert str(doc.tree.root_node) == str(sync.tree.root_node)


def _point(data: bytes, offset: int) -> Point:
    return Point(data.count(b"\n", 0, offset), offset - (data.rfind(b"\n", 0, offset) + 1))


def _clean_range(text: str, a: float, b: float) -> tuple[int, int]:
    """A str range [start, end) at fractions a, b of the text that does not split a "\\r\\n" line ending."""
    start, end = sorted((int(a * len(text)), int(b * len(text))))
    if 0 < start < len(text) and text[start - 1] == "\r" and text[start] == "\n":
        start -= 1
    if 0 < end < len(text) and text[end - 1] == "\r" and text[end] == "\n":
        end -= 1
    return min(start, end), end


def _check_edit_sequence(case: tuple[str, list[tuple[float, float, str]]], store: DocumentStore | None) -> None:
    language, edits = case
    text = SEEDS[language]
    uri = f"file:///w/x.{language}"
    doc = store.open(uri, language, 0, text) if store is not None else Document(uri, language, 0, text)
    parser = default_registry().parser(language)
    assert parser is not None and doc.wait_fresh(10) and doc.tree is not None
    for version, (a, b, new) in enumerate(edits, start=1):
        start, end = _clean_range(text, a, b)
        rng = (*_utf16_to_position(text, start), *_utf16_to_position(text, end))
        doc.apply_change(rng, new, version)
        text = text[:start] + new + text[end:]
        assert doc.text == text
        if store is not None and version % 3:
            continue  # let edits pile up while the worker is busy
        assert doc.wait_fresh(10) and doc.tree is not None
        assert str(doc.tree.root_node) == str(parser.parse(text.encode()).root_node)
        # Positions and offsets stay inverse of each other after the edit.
        for offset in {0, start, start + len(new), len(text)}:
            if offset <= len(text) and not (0 < offset < len(text) and text[offset - 1] == "\r"):
                assert doc.offset_at(*doc.position_at(offset)) == offset
    assert doc.wait_fresh(10) and doc.tree is not None
    assert str(doc.tree.root_node) == str(parser.parse(text.encode()).root_node)
