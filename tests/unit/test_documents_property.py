"""Property: after random edit sequences the incremental tree equals a fresh full parse and the text is as expected."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsp_copilot.documents import Document, DocumentStore
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


def _check_edit_sequence(case: tuple[str, list[tuple[float, float, str]]], store: DocumentStore | None) -> None:
    language, edits = case
    text = SEEDS[language]
    uri = f"file:///w/x.{language}"
    doc = store.open(uri, language, 0, text) if store is not None else Document(uri, language, 0, text)
    parser = default_registry().parser(language)
    assert parser is not None and doc.wait_fresh(10) and doc.tree is not None
    for version, (a, b, new) in enumerate(edits, start=1):
        # Pick a str range [start, end) that does not split a "\r\n" pair's line ending semantics.
        start, end = sorted((int(a * len(text)), int(b * len(text))))
        if 0 < start < len(text) and text[start - 1] == "\r" and text[start] == "\n":
            start -= 1
        if 0 < end < len(text) and text[end - 1] == "\r" and text[end] == "\n":
            end -= 1
        start = min(start, end)
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
