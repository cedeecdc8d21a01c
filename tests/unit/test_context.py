"""Context for a cursor: scope, single/multi-line, indent, windows, imports, open-file definitions, snippets, budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsp_copilot.context import (
    CompletionContext,
    ContextBuilder,
    ContextSettings,
    describe_context,
    estimate_tokens,
    format_context,
)
from lsp_copilot.context.snippets import identifier_set, jaccard
from lsp_copilot.documents import DocumentStore, PositionError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "context"


def _builder(**overrides: object) -> ContextBuilder:
    return ContextBuilder(ContextSettings(enable_index=False, **overrides), estimate_tokens)  # type: ignore[arg-type]


def _context_at(text: str, marker: str, language_id: str, path: str, **overrides: object) -> CompletionContext:
    """Context at the position of `marker` (removed from the text) in a single open document."""
    offset = text.index(marker)
    store = DocumentStore(parse_budget_s=None)
    doc = store.open(Path(path).as_uri(), language_id, 1, text.replace(marker, "", 1), Path(path))
    return _builder(**overrides).build(doc, offset, store)


# -- scope, multi-line, indent --------------------------------------------------------------------------------------
SCOPE_CASES = [
    # (language id, path, text with ‸ at the cursor, scope kind, scope name, multiline, indent)
    ("python", "/w/a.py", "def f(xs):\n    return sorted(‸xs)\n", "function", "f", False, "    "),
    ("python", "/w/a.py", "def f(xs):‸\n", None, None, True, ""),
    ("python", "/w/a.py", "def f(xs):\n    if xs:\n        ‸\n", "block", None, True, "        "),
    ("python", "/w/a.py", "class A:\n    def g(self):\n        pass\n\n    ‸\n", "class", "A", False, "    "),
    ("python", "/w/a.py", "x = compute(1, ‸\n", None, None, False, ""),
    ("typescript", "/w/a.ts", "function f(x: number) {\n  if (x > 0) {\n    ‸\n  }\n}\n", "block", None, True, "    "),
    ("typescript", "/w/a.ts", "class C {\n  m(): void {\n    const y = g(‸);\n  }\n}\n", "function", "m", False,
     "    "),
    ("go", "/w/a.go", "package main\n\nfunc main() {\n\t‸\n}\n", "function", "main", True, "\t"),
    ("go", "/w/a.go", "package main\n\nfunc main() {\n\tx := 1‸\n}\n", "function", "main", False, "\t"),
    ("rust", "/w/a.rs", "struct S;\nimpl S {\n    fn f(&self) -> i32 {‸\n    }\n}\n", "function", "f", True, "    "),
    ("rust", "/w/a.rs", "fn main() {\n    let a = ‸;\n}\n", "function", "main", False, "    "),
]


@pytest.mark.parametrize(("language_id", "path", "text", "kind", "name", "multiline", "indent"), SCOPE_CASES)
def test_scope_multiline_and_indent(language_id: str, path: str, text: str, kind: str | None, name: str | None,
                                    multiline: bool, indent: str) -> None:
    ctx = _context_at(text, "‸", language_id, path)
    assert (ctx.scope_kind, ctx.scope_name, ctx.multiline, ctx.indent) == (kind, name, multiline, indent)


def test_unknown_language_falls_back_to_plain_windows() -> None:
    ctx = _context_at("some words\nmore ‸words\n", "‸", "plaintext", "/w/notes.txt")
    assert ctx.language is None and ctx.scope_kind is None and ctx.parts == []
    assert ctx.prefix == "some words\nmore " and ctx.suffix == "words\n"


def test_huge_document_keeps_text_but_no_tree() -> None:
    store = DocumentStore(max_tree_bytes=50, parse_budget_s=None)
    text = "def f():\n    return 1\n" * 10
    doc = store.open("file:///w/big.py", "python", 1, text)
    ctx = _builder().build(doc, len(text), store)
    assert doc.tree is None and ctx.scope_kind is None and ctx.prefix.endswith("return 1\n")
    assert any("no syntax tree" in note for note in ctx.notes)


def test_offset_outside_document_raises() -> None:
    store = DocumentStore(parse_budget_s=None)
    doc = store.open("file:///w/a.py", "python", 1, "x = 1\n")
    with pytest.raises(PositionError):
        _builder().build(doc, 99, store)


# -- windows and budget ---------------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(budget=st.integers(16, 400), share=st.floats(0.0, 1.0), where=st.floats(0.0, 1.0), exact=st.booleans())
def test_windows_are_contiguous_line_aligned_and_within_budget(budget: int, share: float, where: float,
                                                               exact: bool) -> None:
    text = (FIXTURES / "py_ws" / "geometry.py").read_text() * 3
    offset = int(where * len(text))
    store = DocumentStore(parse_budget_s=None)
    doc = store.open("file:///w/g.py", "python", 1, text)
    ctx = ContextBuilder(ContextSettings(budget_tokens=budget, prefix_share=share, enable_index=False,
                                         exact_token_counts=exact), estimate_tokens).build(doc, offset, store)
    assert text[offset - len(ctx.prefix):offset] == ctx.prefix
    assert text[offset:offset + len(ctx.suffix)] == ctx.suffix
    cursor_line_start = text.rfind("\n", 0, offset) + 1
    if len(ctx.prefix) > offset - cursor_line_start:  # more than the cursor line: it starts at a line start
        assert offset - len(ctx.prefix) == 0 or text[offset - len(ctx.prefix) - 1] == "\n"
    if ctx.suffix and "\n" in ctx.suffix:
        assert ctx.suffix.endswith("\n")
    if exact:
        assert (ctx.prefix_tokens, ctx.suffix_tokens) == (estimate_tokens(ctx.prefix), estimate_tokens(ctx.suffix))
    else:  # newline-led line sums: an upper bound of the real count
        assert ctx.prefix_tokens >= estimate_tokens(ctx.prefix) and ctx.suffix_tokens >= estimate_tokens(ctx.suffix)
    label_costs = sum(estimate_tokens(p.path) + 2 for p in ctx.parts)
    assert ctx.prefix_tokens + ctx.suffix_tokens + ctx.parts_tokens + label_costs <= budget


def test_suffix_leftover_goes_to_the_prefix() -> None:
    text = "".join(f"value_{i} = compute({i})\n" for i in range(400))
    store = DocumentStore(parse_budget_s=None)
    doc = store.open("file:///w/v.py", "python", 1, text)
    ctx = _builder(budget_tokens=300, prefix_share=0.5).build(doc, len(text), store)
    assert ctx.suffix == "" and 290 <= ctx.prefix_tokens <= 300


# -- imports, definitions from open documents, snippets ------------------------------------------------------------
def _open_fixture(store: DocumentStore, rel: str, language_id: str = "") -> None:
    path = FIXTURES / rel
    store.open(path.as_uri(), language_id, 1, path.read_text(), path)


def test_imports_part_when_the_prefix_does_not_reach_them() -> None:
    body = "".join(f"    total += step_{i}(order)\n" for i in range(200))
    text = "import { Cart } from './util';\nimport * as fs from 'fs';\n\nexport function run(order) {\n" + body + "}\n"
    store = DocumentStore(parse_budget_s=None)
    doc = store.open("file:///w/src/run.ts", "typescript", 1, text)
    ctx = _builder(budget_tokens=400).build(doc, text.index("    total += step_150"), store)
    imports = [p for p in ctx.parts if p.kind == "imports"]
    assert len(imports) == 1 and imports[0].text == "import { Cart } from './util';\nimport * as fs from 'fs';"
    assert imports[0].path == "/w/src/run.ts" and imports[0].tokens == estimate_tokens(imports[0].text)
    small = _builder(budget_tokens=4000).build(doc, text.index("    total += step_3("), store)
    assert not [p for p in small.parts if p.kind == "imports"]  # already in the prefix


@pytest.mark.parametrize(("current", "other", "position", "expected", "not_expected"), [
    ("ts_ws/src/app.ts", "ts_ws/src/util.ts", (6, 4),
     ["/** Formats an amount of money with its currency code. */",
      "function formatPrice(amount: number, currency: string): string", "interface Order {"],
     ["toFixed"]),
    ("go_ws/main.go", "go_ws/geom/geom.go", (13, 2),
     ["// Distance returns the Euclidean distance between a and b.", "func Distance(a, b Point) float64",
      "type Point struct {"],
     ["math.Hypot"]),
    ("rust_ws/src/main.rs", "rust_ws/src/shapes.rs", (11, 4),
     ["/// The area of a circle.\npub fn circle_area(c: &Circle) -> f64", "pub struct Circle {"], ["consts::PI"]),
    ("py_ws/app/main.py", "py_ws/geometry.py", (19, 4),
     ['def area_of(shape: Shape, scale: float = 1.0) -> float:\n    """Area of `shape` scaled by `scale` squared.'],
     ["Longer explanation", "return shape.area()"]),
])
def test_definitions_from_another_open_document(current: str, other: str, position: tuple[int, int],
                                                expected: list[str], not_expected: list[str]) -> None:
    store = DocumentStore(parse_budget_s=None)
    _open_fixture(store, other)
    _open_fixture(store, current)
    doc = store[(FIXTURES / current).as_uri()]
    ctx = _builder(enable_snippets=False, enable_imports=False).build(doc, doc.offset_at(*position), store)
    defs = [p for p in ctx.parts if p.kind == "definitions"]
    assert len(defs) == 1 and defs[0].path == str(FIXTURES / other)
    for piece in expected:
        assert piece in defs[0].text
    for piece in not_expected:
        assert piece not in defs[0].text  # bodies are not shown
    assert defs[0].tokens == estimate_tokens(defs[0].text)


def test_definitions_prefer_nearest_identifiers_and_skip_keywords() -> None:
    builder = _builder()
    assert builder.identifiers_near("x = alpha(beta)\nif gamma and self.delta(epsi") == [
        "delta", "gamma", "beta", "alpha"]


def test_similar_snippets_ranked_and_local_duplicates_removed() -> None:
    local = ("def parse_header(stream, limit):\n    line = stream.readline(limit)\n"
             "    key, _, value = line.partition(':')\n    return key.strip().lower(), value.strip()\n")
    similar = ("def read_block(stream, limit):\n    raw = stream.readline(limit)\n"
               "    name, _, rest = raw.partition('=')\n    return name.strip().lower(), rest.strip()\n")
    unrelated = "def add(a, b):\n    return a + b\n" * 3
    store = DocumentStore(parse_budget_s=None)
    store.open("file:///w/other.py", "python", 1, unrelated + similar + unrelated)
    store.open("file:///w/copy.py", "python", 1, local)  # the local window itself, verbatim: a near-duplicate
    doc = store.open("file:///w/cur.py", "python", 1, local + "\n\ndef parse_all(stream, limit):\n    ")
    ctx = _builder(snippet_window_lines=4, snippet_stride_lines=1, enable_definitions=False).build(
        doc, len(doc.text), store)
    snippets = [p for p in ctx.parts if p.kind == "snippet"]
    assert snippets and snippets[0].path == "/w/other.py"
    assert "stream.readline(limit)" in snippets[0].text
    assert all(p.path != "/w/copy.py" for p in snippets)


def test_jaccard() -> None:
    a, b = identifier_set("foo(bar, baz)"), identifier_set("foo + qux")
    assert jaccard(a, b) == pytest.approx(1 / 4)
    assert jaccard(a, frozenset()) == 0.0 and jaccard(a, a) == 1.0


def test_parts_fitted_by_priority_within_the_cross_file_share() -> None:
    store = DocumentStore(parse_budget_s=None)
    _open_fixture(store, "ts_ws/src/util.ts")
    _open_fixture(store, "ts_ws/src/app.ts")
    doc = store[(FIXTURES / "ts_ws/src/app.ts").as_uri()]
    offset = doc.text.index("  return label;")
    full = _builder(budget_tokens=2000).build(doc, offset, store)
    tight = _builder(budget_tokens=200, cross_file_share=0.3).build(doc, offset, store)
    assert full.parts[0].kind == "definitions"
    assert sum(p.tokens + estimate_tokens(p.path) + 2 for p in tight.parts) <= 60
    assert sum(p.tokens for p in tight.parts) < sum(p.tokens for p in full.parts)
    none = _builder(budget_tokens=200, cross_file_share=0.0).build(doc, offset, store)
    assert none.parts == []


# -- describe -------------------------------------------------------------------------------------------------------
def test_describe_and_format() -> None:
    store = DocumentStore(parse_budget_s=None)
    _open_fixture(store, "ts_ws/src/util.ts")
    _open_fixture(store, "ts_ws/src/app.ts")
    doc = store[(FIXTURES / "ts_ws/src/app.ts").as_uri()]
    ctx = _builder().build(doc, doc.text.index("  return label;"), store)
    d = describe_context(ctx)
    json.dumps(d)
    assert d["parts"][0]["kind"] == "definitions" and d["parts"][0]["source"].endswith("util.ts")
    assert d["prefix"]["tokens"] == ctx.prefix_tokens and d["multiline"] is False
    assert d["total_tokens"] == ctx.prefix_tokens + ctx.suffix_tokens + ctx.parts_tokens
    text = format_context(ctx)
    assert "part 1: definitions from" in text and "single-line" in text and "scope: function checkout" in text


def test_settings_and_token_counter_can_be_swapped_on_a_live_builder() -> None:
    builder = _builder(budget_tokens=1000)
    store = DocumentStore(parse_budget_s=None)
    text = "".join(f"line_{i} = {i}\n" for i in range(300))
    doc = store.open("file:///w/s.py", "python", 1, text)
    assert builder.build(doc, len(text), store).prefix_tokens > 500
    builder.count_tokens = len  # one token per character
    builder.settings = ContextSettings(budget_tokens=100, enable_index=False, snippet_window_lines=3)
    ctx = builder.build(doc, len(text), store)
    assert len(ctx.prefix) <= ctx.prefix_tokens <= 100 and ctx.budget_tokens == 100
    assert builder.snippets.window_lines == 3 and builder.wait_until_indexed(0)


def test_build_during_a_background_reparse_uses_the_shifted_tree_then_the_fresh_one() -> None:
    from lsp_copilot.benchmarks.context import generate_python

    store = DocumentStore(parse_budget_s=0.0)  # edits never wait: the parse worker reparses
    text = generate_python(3000, seed=1)
    doc = store.open("file:///w/big.py", "python", 1, text)
    assert doc.wait_fresh(30)
    line = next(i for i in range(40, 3000) if doc.line_text(i).startswith("    def "))
    doc.apply_change((line, 0, line, 0), "x", 2)  # breaks the indentation: a slow reparse
    offset = doc.offset_at(line + 2, 8)
    ctx = _builder(tree_wait_ms=0.0).build(doc, offset, store)
    stale = any("reparsed" in note for note in ctx.notes)
    assert ctx.prefix.endswith(doc.text[:offset][-20:])  # the windows are always from the current text
    assert doc.wait_fresh(30)
    fresh = _builder(tree_wait_ms=0.0).build(doc, offset, store)
    assert not any("reparsed" in note for note in fresh.notes)
    assert stale or ctx.scope_kind == fresh.scope_kind


def test_definitions_from_other_languages_are_left_out() -> None:
    store = DocumentStore(parse_budget_s=None)
    store.open("file:///w/log.lua", "lua", 1, "function Log:add(kind, data)\n  return 1\nend\n")
    store.open("file:///w/cart.js", "javascript", 1, "/** Adds one. */\nfunction add(order) {\n  return 1;\n}\n")
    doc = store.open("file:///w/app.ts", "typescript", 1, "cart.add(order);\n")
    ctx = _builder(enable_snippets=False).build(doc, len(doc.text), store)
    assert [p.path for p in ctx.parts if p.kind == "definitions"] == ["/w/cart.js"]
