"""Languages: LSP ids and extensions map to the pack's grammars, every grammar parses, unknown input is plain text."""

from __future__ import annotations

import pytest

from lsp_copilot.languages import LANGUAGES, LanguageRegistry, comment_prefix, detect_language

SAMPLES = {
    "python": "def f(x):\n    return x\n",
    "javascript": "function f(x) { return x; }\n",
    "typescript": "function f(x: number): number { return x; }\n",
    "tsx": "const A = () => <div>{1}</div>;\n",
    "go": "package main\nfunc f() int { return 1 }\n",
    "rust": "fn f() -> i32 { 1 }\n",
    "java": "class A { int f() { return 1; } }\n",
    "c": "int f(void) { return 1; }\n",
    "cpp": "class A { public: int f() { return 1; } };\n",
    "csharp": "class A { int F() { return 1; } }\n",
    "ruby": "def f(x)\n  x\nend\n",
    "php": "<?php function f($x) { return $x; }\n",
    "lua": "local function f(x) return x end\n",
    "bash": "f() { echo hi; }\n",
}


@pytest.mark.parametrize("grammar", sorted(SAMPLES))
def test_every_grammar_parses_without_errors(grammar: str) -> None:
    parser = LanguageRegistry().parser(grammar)
    assert parser is not None
    tree = parser.parse(SAMPLES[grammar].encode())
    assert not tree.root_node.has_error, str(tree.root_node)


@pytest.mark.parametrize(("language_id", "grammar"), [
    ("python", "python"), ("javascript", "javascript"), ("javascriptreact", "javascript"),
    ("typescript", "typescript"), ("typescriptreact", "tsx"), ("go", "go"), ("rust", "rust"), ("java", "java"),
    ("c", "c"), ("cpp", "cpp"), ("csharp", "csharp"), ("ruby", "ruby"), ("php", "php"), ("lua", "lua"),
    ("shellscript", "bash"), ("sh", "bash"), ("Python", "python"),
])
def test_lsp_language_ids(language_id: str, grammar: str) -> None:
    assert detect_language(language_id) == grammar


@pytest.mark.parametrize(("path", "grammar"), [
    ("a/b.py", "python"), ("x.mjs", "javascript"), ("x.ts", "typescript"), ("X.TSX", "tsx"), ("main.go", "go"),
    ("lib.rs", "rust"), ("A.java", "java"), ("x.h", "c"), ("x.hpp", "cpp"), ("P.cs", "csharp"), ("Rakefile", "ruby"),
    ("i.php", "php"), ("init.lua", "lua"), ("run.sh", "bash"), ("/home/u/.bashrc", "bash"),
])
def test_extensions_and_file_names(path: str, grammar: str) -> None:
    assert detect_language(None, path) == grammar
    assert detect_language("plaintext", path) == grammar  # an unknown id falls back to the extension


@pytest.mark.parametrize(("language_id", "path"), [
    ("plaintext", "notes.txt"), ("markdown", "README.md"), ("", None), (None, None), ("cobol", "x.cbl"),
    ("python", None),
])
def test_unknown_is_plain_text_never_an_error(language_id: str | None, path: str | None) -> None:
    expected = "python" if language_id == "python" else None
    assert detect_language(language_id, path) == expected


def test_comment_syntax_and_registry_covers_the_issue_languages() -> None:
    assert comment_prefix("python") == "#" and comment_prefix("lua") == "--" and comment_prefix("go") == "//"
    assert comment_prefix(None) is None
    assert {info.grammar for info in LANGUAGES} >= set(SAMPLES)


def test_a_grammar_that_fails_to_load_degrades_to_plain_text() -> None:
    from lsp_copilot.languages import LanguageInfo

    registry = LanguageRegistry((LanguageInfo("no_such_grammar", ("nosuch",), (".nosuch",), "#"),))
    assert registry.detect("nosuch") is None
    assert registry.detect(None, "a.nosuch") is None
    assert registry.parser("no_such_grammar") is None


@pytest.mark.parametrize(("path", "language_id"), [
    ("a.py", "python"), ("App.tsx", "typescriptreact"), ("run.sh", "shellscript"), ("P.cs", "csharp"),
    ("x.hpp", "cpp"), ("notes.txt", "plaintext"),
])
def test_language_id_for_path(path: str, language_id: str) -> None:
    from lsp_copilot.languages import language_id_for_path

    assert language_id_for_path(path) == language_id
