"""Post-processing: the syntax stop inside the decode loop, bracket balance and suffix-overlap trimming."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsp_copilot.context import CompletionContext
from lsp_copilot.postprocess import Scanner, StopPolicy, finalize, scan_prefix, syntax_for


def make_ctx(prefix: str, suffix: str = "", language: str | None = "python", multiline: bool = True,
             **changes: Any) -> CompletionContext:
    line = prefix[prefix.rfind("\n") + 1:]
    fields: dict[str, Any] = {"prefix": prefix, "suffix": suffix, "parts": [], "path": "a", "language": language,
                              "multiline": multiline, "indent": line[: len(line) - len(line.lstrip())],
                              "scope_kind": None}
    fields.update(changes)
    return CompletionContext(**fields)


def stream(ctx: CompletionContext, text: str, step: int = 1) -> str:
    """What the decode loop keeps: feed `text` in `step`-character deltas, cut at the first stop."""
    policy = StopPolicy(ctx)
    for end in range(step, len(text) + step, step):
        cut = policy.check(text[:end])
        if cut is not None:
            return text[:cut]
    return text


# ------------------------------------------------------------------------------------------- multi-line: blocks

@pytest.mark.parametrize("step", [1, 3, 7])
def test_python_stops_when_the_completion_dedents_out_of_the_function(step: int) -> None:
    ctx = make_ctx("def f(x):\n    y = x\n    ", "\n\ndef h():\n    pass\n")
    text = "z = y + 1\n    return z\n\ndef g():\n    pass\n"
    assert stream(ctx, text, step) == "z = y + 1\n    return z\n"
    assert finalize(text, ctx) == "z = y + 1\n    return z"


def test_python_completes_the_block_the_cursor_line_opens() -> None:
    ctx = make_ctx("class A:\n    def f(self):", "\n")
    text = "\n        return 1\n\n    def g(self):\n        return 2\n"
    assert stream(ctx, text) == "\n        return 1\n"


def test_python_keeps_a_body_of_statements_and_compound_blocks() -> None:
    ctx = make_ctx("def f(xs):\n    ", "\n")
    text = "total = 0\n    for x in xs:\n        total += x\n    return total\nprint(f([1]))\n"
    assert stream(ctx, text) == "total = 0\n    for x in xs:\n        total += x\n    return total"


def test_python_first_block_ends_at_its_dedent_but_else_continues_it() -> None:
    ctx = make_ctx("def f(x):\n    ", "\n")
    text = "if x:\n        a = 1\n    elif x is None:\n        a = 2\n    else:\n        a = 3\n    return a\n"
    assert stream(ctx, text) == "if x:\n        a = 1\n    elif x is None:\n        a = 2\n    else:\n        a = 3"


def test_python_decorated_definition_is_one_block() -> None:
    ctx = make_ctx("class A:\n    ", "\n")
    text = "@property\n    def x(self):\n        return 1\n\n    @property\n    def y(self):\n"
    assert stream(ctx, text) == "@property\n    def x(self):\n        return 1\n"


def test_python_cursor_at_column_zero_takes_the_first_line_indentation() -> None:
    ctx = make_ctx("def f(x):\n    a = 1\n", "\n")
    text = "    return a\nprint(f(1))\n"
    assert stream(ctx, text) == "    return a"


def test_lines_inside_strings_and_brackets_do_not_count_as_dedents() -> None:
    ctx = make_ctx("def f():\n    ", "\n")
    text = 'doc = """\nnot code: ) ] }\n"""\n    x = [\n1,\n]\n    return x\nnext_top_level = 1\n'
    assert stream(ctx, text) == 'doc = """\nnot code: ) ] }\n"""\n    x = [\n1,\n]\n    return x'


@pytest.mark.parametrize("language", ["javascript", "typescript", "go", "rust", "java", "c", "cpp", "csharp", "php"])
def test_brace_block_closed_by_the_suffix_stops_before_the_brace(language: str) -> None:
    ctx = make_ctx("void f() {\n  ", "\n}\n", language=language)
    assert stream(ctx, "g();\n}\n\nvoid h() {}\n") == "g();\n"
    assert finalize("g();\n}\n\nvoid h() {}\n", ctx) == "g();"


def test_brace_block_not_closed_by_the_suffix_includes_the_brace_line() -> None:
    ctx = make_ctx("function f() {\n  ", "", language="javascript")
    assert stream(ctx, "return 1;\n}\n\nfunction g() {}\n") == "return 1;\n}"


def test_else_branch_reopens_and_continues() -> None:
    ctx = make_ctx("function f(x) {\n  ", "\n}\n", language="javascript")
    text = "if (x) {\n    a();\n  } else {\n    b();\n  }\n  return 1;\n}\n"
    assert stream(ctx, text) == "if (x) {\n    a();\n  } else {\n    b();\n  }\n  return 1;\n"


@pytest.mark.parametrize(("language", "closer"), [("ruby", "end"), ("lua", "end"), ("bash", "fi")])
def test_keyword_closed_blocks_keep_their_closing_line(language: str, closer: str) -> None:
    head = {"ruby": "def f\n  ", "lua": "function f()\n  ", "bash": "if true; then\n  "}[language]
    ctx = make_ctx(head, "", language=language)
    assert stream(ctx, f"x = 1\n{closer}\n\nfoo\n") == f"x = 1\n{closer}"
    assert stream(ctx, f"x = 1\n{closer[0]}") == f"x = 1\n{closer[0]}"  # a half-written `end` is not a stop yet


# -------------------------------------------------------------------------------------- single line and brackets

def test_single_line_stops_at_the_newline() -> None:
    ctx = make_ctx("x = ", "\n", multiline=False)
    assert stream(ctx, "compute(1)\ny = 2\n") == "compute(1)"


def test_single_line_keeps_a_logical_line_split_inside_its_own_brackets() -> None:
    ctx = make_ctx("x = ", "\n", multiline=False)
    assert stream(ctx, "compute(1,\n    2)\ny = 2\n") == "compute(1,\n    2)"


def test_closing_bracket_already_after_the_cursor_is_not_repeated() -> None:
    ctx = make_ctx("print(foo(", "))\n", multiline=False)
    assert stream(ctx, "1, baz(2)))\n") == "1, baz(2)"
    assert finalize("1, baz(2)))\n", ctx) == "1, baz(2)"


def test_brackets_in_strings_and_comments_are_ignored() -> None:
    ctx = make_ctx("x = f(", ")\n", multiline=False)
    assert stream(ctx, '")", "]", y)  # ) }\n') == '")", "]", y'
    js = make_ctx("call(", ");\n", language="javascript", multiline=False)
    assert stream(js, "a /* ) */, `})`, '}', b);\n") == "a /* ) */, `})`, '}', b"
    rust = make_ctx("fn f<'a>(x: &'a str) -> char {\n    ", "\n}\n", language="rust")
    assert stream(rust, "let c = '}';\n    c\n}\n") == "let c = '}';\n    c\n"


def test_string_opened_before_the_cursor_closed_by_the_suffix() -> None:
    ctx = make_ctx('print("', '")\n', multiline=False)
    assert stream(ctx, 'hello world")\n') == "hello world"


def test_mismatched_closer_stops_the_completion() -> None:
    ctx = make_ctx("xs = [", "\n", multiline=False)
    assert stream(ctx, "1, (2, 3]") == "1, (2, 3"
    assert finalize("1, (2, 3]", ctx) == "1, (2, 3)"


def test_completion_that_duplicates_the_next_line_stops_before_it() -> None:
    ctx = make_ctx("def f(x):\n    ", "\n    return y\n")
    assert stream(ctx, "y = x * 2\n    return y\n") == "y = x * 2"


# -------------------------------------------------------------------------------------------------------- finalize

def test_finalize_trims_the_next_line_when_the_model_runs_on_into_it() -> None:
    ctx = make_ctx("def f(x):\n    ", "\n    return y\n")
    assert finalize("y = x * 2\n    return y", ctx) == "y = x * 2"


def test_finalize_keeps_a_closer_of_the_completions_own_block() -> None:
    ctx = make_ctx("function f() {\n  ", "\n}\n", language="javascript")
    assert finalize("if (x) {\n    a();\n  }", ctx) == "if (x) {\n    a();\n  }"


def test_finalize_trims_a_repeated_rest_of_line() -> None:
    ctx = make_ctx("foo(", "x)\n", multiline=False)
    assert finalize("a, x)", ctx) == "a, "
    own = make_ctx("bar(", ")\n", multiline=False)
    assert finalize("foo(x)", own) == "foo(x)"  # that `)` closes the completion's own `foo(`


def test_finalize_balances_what_the_completion_opened() -> None:
    assert finalize("print(foo(a", make_ctx("", "\n", multiline=False)) == "print(foo(a))"
    assert finalize("print(foo(a", make_ctx("", "))\n", multiline=False)) == "print(foo(a"  # the suffix closes
    multi = make_ctx("def f():\n    ", "\n")
    assert finalize("a = 1\n    b = g(1,\n          2", multi) == "a = 1"


def test_finalize_whitespace() -> None:
    assert finalize("return x\n    ", make_ctx("def f():\n    ", "\n")) == "return x"
    assert finalize(" ", make_ctx("x =", "1\n", multiline=False)) == " "  # the space before the rest of the line
    assert finalize("", make_ctx("x = ", "\n")) == ""


def test_plain_text_tolerates_apostrophes() -> None:
    ctx = make_ctx("Notes: it's (", ")\n", language=None, multiline=False)
    assert stream(ctx, "don't do it)\n") == "don't do it"


# ----------------------------------------------------------------------------------------- scanner and incrementality

def test_prefix_scan_tracks_strings_comments_and_brackets() -> None:
    scanner: Scanner = scan_prefix(syntax_for("python"), 'f(a, [b, "(", # ]\n  {"k": """\n)]}\n')
    assert [b for b, _ in scanner.stack] == ["(", "[", "{"]
    assert scanner.mode == 1  # inside the triple-quoted string


def test_rewritten_text_starts_over() -> None:
    policy = StopPolicy(make_ctx("x = ", "\n", multiline=False))
    assert policy.check("abc\nd") == 3
    assert policy.check("xy") is None  # the detokenizer rewrote the text: the old stop no longer applies
    assert policy.check("xyz\n") == 3


CHUNKS = ["x", " = ", "foo(", ")", "]", "}", "{", "[", '"', "'", "#", "\n", "\n    ", "\n        ", "if a:", "else:",
          "return 1", "def g():", "end", "// c", "/*", "*/", "\\"]


@settings(max_examples=150, deadline=None)
@given(pieces=st.lists(st.sampled_from(CHUNKS), max_size=30), language=st.sampled_from(["python", "javascript", None]),
       multiline=st.booleans())
def test_incremental_check_equals_a_fresh_check(pieces: list[str], language: str | None, multiline: bool) -> None:
    ctx = make_ctx("def f(a):\n    v = [a,\n", "\n    return v\n", language=language, multiline=multiline)
    text = "".join(pieces)
    policy = StopPolicy(ctx)
    for end in range(1, len(text) + 1):
        got = policy.check(text[:end])
        assert got == StopPolicy(ctx).check(text[:end])
        if got is not None:
            assert 0 <= got <= end
            break
