"""Workspace index: definitions from files that are not open; .gitignore, secrets, binary, size and symlink rules."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lsp_copilot.context import ContextBuilder, ContextSettings, WorkspaceContext, estimate_tokens
from lsp_copilot.context.index import WorkspaceIndex
from lsp_copilot.context.symbols import SymbolExtractor
from lsp_copilot.languages import default_registry

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "context"


@pytest.fixture
def py_ws(tmp_path: Path) -> Path:
    """The Python fixture workspace plus the files the index must skip (made here: git would ignore them)."""
    root = tmp_path / "ws"
    shutil.copytree(FIXTURES / "py_ws", root)
    (root / "build").mkdir()
    (root / "build" / "hidden.py").write_text("def hidden_build_helper():\n    return 1\n")
    (root / "skip.gen.py").write_text("def generated_helper():\n    return 2\n")
    (root / "app" / ".gitignore").write_text("local_*.py\n")
    (root / "app" / "local_notes.py").write_text("def local_only_helper():\n    pass\n")
    (root / "app" / "visible.py").write_text("def visible_helper():\n    pass\n")
    (root / "blob.py").write_bytes(b"def binary_helper():\n    pass\n\x00\x01\x02")
    (root / "huge.py").write_text("def huge_helper():\n    pass\n" + "x = 1\n" * 5000)
    (root / "id_rsa.py").write_text("def private_key_helper():\n    pass\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evil.py").write_text("def outside_helper():\n    pass\n")
    os.symlink(outside / "evil.py", root / "link_out.py")
    os.symlink(outside, root / "linked_dir")
    os.symlink(root / "geometry.py", root / "link_in.py")  # a symlink that stays inside is fine
    return root


def _index(settings: ContextSettings | None = None) -> WorkspaceIndex:
    registry = default_registry()
    return WorkspaceIndex(settings or ContextSettings(index_max_file_bytes=20_000), registry,
                          SymbolExtractor(registry))


def _names(index: WorkspaceIndex, *names: str) -> dict[str, list[str]]:
    return {name: sorted(d.path for d in index.lookup(name)) for name in names}


def test_index_honours_gitignore_secrets_binary_size_and_symlinks(py_ws: Path) -> None:
    index = _index()
    index.set_roots([py_ws])
    assert index.wait(30)
    found = _names(index, "area_of", "Shape", "kept_generated_helper", "visible_helper", "hidden_build_helper",
                   "generated_helper", "local_only_helper", "binary_helper", "huge_helper", "private_key_helper",
                   "load_api_token", "outside_helper")
    assert found["area_of"] == ["geometry.py"]  # once, though a symlink inside the workspace points to it
    assert found["Shape"] == ["geometry.py"]
    assert found["kept_generated_helper"] == ["keep.gen.py"]  # negated pattern
    assert found["visible_helper"] == ["app/visible.py"]
    for skipped in ("hidden_build_helper", "generated_helper", "local_only_helper", "binary_helper", "huge_helper",
                    "private_key_helper", "load_api_token", "outside_helper"):
        assert found[skipped] == [], skipped
    assert index.stats.done and index.stats.skipped.get("secret") == 2
    assert {"binary", "too large", "symlink outside workspace"} <= set(index.stats.skipped)


def test_update_file_add_change_delete_and_never_outside(py_ws: Path, tmp_path: Path) -> None:
    index = _index()
    index.set_roots([py_ws], background=False)
    new = py_ws / "app" / "extra.py"
    index.update_file(new, "def extra_helper(n: int) -> int:\n    '''Twice n.'''\n    return 2 * n\n")
    assert [d.text for d in index.lookup("extra_helper")] == [
        "def extra_helper(n: int) -> int:\n    '''Twice n.'''"]
    index.update_file(new, "def renamed_helper():\n    pass\n")
    assert index.lookup("extra_helper") == [] and len(index.lookup("renamed_helper")) == 1
    index.update_file(new, None)
    assert index.lookup("renamed_helper") == []
    index.update_file(tmp_path / "outside" / "evil.py", "def outside_helper():\n    pass\n")
    index.update_file(py_ws / "build" / "hidden.py", "def hidden_build_helper():\n    pass\n")
    index.update_file(py_ws / ".env.py", "def env_helper():\n    pass\n")
    index.update_file(py_ws / ".." / "outside" / "evil.py", "def outside_helper():\n    pass\n")
    assert index.lookup("outside_helper") == [] and index.lookup("hidden_build_helper") == []
    assert index.lookup("env_helper") == []


def test_refresh_file_reads_disk_and_gitignore_changes(py_ws: Path) -> None:
    index = _index()
    index.set_roots([py_ws], background=False)
    (py_ws / "geometry.py").write_text("def area_of_v2(shape):\n    pass\n")
    index.refresh_file(py_ws / "geometry.py")
    assert index.lookup("area_of") == []
    assert [d.path for d in index.lookup("area_of_v2")] == ["geometry.py"]
    (py_ws / ".gitignore").write_text("build/\n")  # skip.gen.py is no longer ignored
    index.refresh_file(py_ws / ".gitignore")
    index.refresh_file(py_ws / "skip.gen.py")
    assert [d.path for d in index.lookup("generated_helper")] == ["skip.gen.py"]
    (py_ws / "skip.gen.py").unlink()
    index.refresh_file(py_ws / "skip.gen.py")
    assert index.lookup("generated_helper") == []


def test_a_new_workspace_replaces_the_old_index(py_ws: Path) -> None:
    index = _index()
    index.set_roots([py_ws], background=False)
    assert index.lookup("area_of")
    index.set_roots([FIXTURES / "go_ws"], background=False)
    assert index.lookup("area_of") == [] and [d.path for d in index.lookup("Distance")] == ["geom/geom.go"]
    index.set_roots([py_ws / "does-not-exist"])
    assert index.wait(5) and index.file_count == 0


@pytest.mark.parametrize(("workspace", "current", "position", "expected"), [
    ("py_ws", "app/main.py", (19, 4), ("geometry.py", "def area_of(shape: Shape, scale: float = 1.0) -> float:")),
    ("ts_ws", "src/app.ts", (6, 4), ("src/util.ts", "function formatPrice(amount: number, currency: string): string")),
    ("go_ws", "main.go", (13, 2), ("geom/geom.go", "func Distance(a, b Point) float64")),
    ("rust_ws", "src/main.rs", (11, 4), ("src/shapes.rs", "pub fn circle_area(c: &Circle) -> f64")),
])
def test_workspace_context_with_and_without_the_index(workspace: str, current: str, position: tuple[int, int],
                                                      expected: tuple[str, str]) -> None:
    with_index = WorkspaceContext(FIXTURES / workspace)
    ctx = with_index.build(Path(current), *position)
    defs = [p for p in ctx.parts if p.kind == "definitions"]
    assert defs and defs[0].path == expected[0] and expected[1] in defs[0].text
    assert ctx.path == current
    without = WorkspaceContext(FIXTURES / workspace, use_index=False).build(Path(current), *position)
    assert not [p for p in without.parts if p.kind == "definitions"]
    assert (without.prefix, without.suffix) == (ctx.prefix, ctx.suffix) or without.prefix.endswith(ctx.prefix)


def test_workspace_context_refuses_paths_outside(tmp_path: Path) -> None:
    ws = WorkspaceContext(FIXTURES / "go_ws")
    with pytest.raises(ValueError, match="outside the workspace"):
        ws.build(Path("../py_ws/geometry.py"), 0, 0)


def test_builder_background_index_and_open_document_preferred(py_ws: Path) -> None:
    from lsp_copilot.documents import DocumentStore

    builder = ContextBuilder(ContextSettings(), estimate_tokens)
    builder.set_workspace([py_ws])
    assert builder.index.wait(30)
    store = DocumentStore()
    geometry = py_ws / "geometry.py"
    # The open (unsaved) text of geometry.py wins over the indexed one.
    store.open(geometry.as_uri(), "python", 3, "def area_of(shape, unsaved_param):\n    '''Unsaved.'''\n")
    main = py_ws / "app" / "main.py"
    doc = store.open(main.as_uri(), "python", 1, main.read_text())
    ctx = builder.build(doc, doc.offset_at(19, 4), store)
    texts = [p.text for p in ctx.parts if p.kind == "definitions"]
    assert any("unsaved_param" in t for t in texts)
    assert not any("scale: float" in t for t in texts)
    builder.close()


def _package(tmp_path: Path) -> Path:
    """A package whose parser raises errors from a sibling module far from the cursor, plus an unrelated `get`."""
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "errors.py").write_text(
        "class ParseError(ValueError):\n    \"\"\"The input is not well formed.\"\"\"\n\n"
        "class MissingFieldError(ParseError):\n    \"\"\"A required field is absent.\"\"\"\n")
    (root / "pkg" / "store.py").write_text("class Store:\n    def get(self, key, default=None):\n        pass\n")
    filler = "".join(f"    width_{i} = {i}\n" for i in range(30))
    (root / "pkg" / "parser.py").write_text(
        "from pkg import errors\n\n\ndef header(line):\n    if not line:\n"
        "        raise errors.ParseError('empty')\n    if ':' not in line:\n"
        "        raise errors.MissingFieldError(line)\n    return line\n\n\n"
        f"def body(fields):\n{filler}    value = fields.get('body')\n    \n    return value\n")
    return root


def test_imported_names_used_around_the_cursor_come_before_unrelated_method_matches(tmp_path: Path) -> None:
    from lsp_copilot.documents import DocumentStore

    root = _package(tmp_path)
    parser = root / "pkg" / "parser.py"
    text = parser.read_text()
    offset = text.index("    \n    return value") + 4  # an empty line of `body`, 25 lines below the last `errors.`
    store = DocumentStore()
    doc = store.open(parser.as_uri(), "python", 1, text)
    builder = ContextBuilder(ContextSettings(max_definitions=2), estimate_tokens)
    builder.set_workspace([root], background=False)
    defs = [p for p in builder.build(doc, offset, store).parts if p.kind == "definitions"]
    # `errors.ParseError` / `errors.MissingFieldError` are used above, out of the 15-line lookback; `fields.get`
    # is near the cursor but only matches a method of a module the file does not import.
    assert [p.path for p in defs] == ["pkg/errors.py"]
    assert "class ParseError(ValueError):" in defs[0].text and "class MissingFieldError(ParseError):" in defs[0].text
    builder.settings = ContextSettings(max_definitions=2, definition_usage_lines=0)  # usage ranking off
    defs = [p for p in builder.build(doc, offset, store).parts if p.kind == "definitions"]
    assert [p.path for p in defs] == ["pkg/store.py"]  # only the weak, near-the-cursor match is left
    builder.close()


def test_imported_usage_counts_qualified_and_plain_uses_of_imported_names() -> None:
    window = "a = errors.Bad()\nb = errors.Bad()\nc = errors.Worse()\nd = helper(x)\ne = local.Bad2()\n"
    imports = "from pkg import errors\nfrom pkg.util import helper\n"
    builder = ContextBuilder(ContextSettings(enable_index=False), estimate_tokens)
    assert builder.imported_usage(window, imports) == ["Bad", "Worse", "helper"]  # `errors` is a module
    assert builder.imported_usage("x = other.errors.Bad()\n", imports) == []  # an attribute named `errors`


def test_identifiers_after_skip_the_rest_of_the_word_at_the_cursor() -> None:
    builder = ContextBuilder(ContextSettings(enable_index=False), estimate_tokens)
    assert builder.identifiers_after("rest_of_word(x)\n    return total + count(items)\n") == [
        "total", "count", "items"]


@pytest.mark.parametrize(("typed", "first"), [("Miss", "class MissingFieldError(ParseError):"),
                                              ("", "class ParseError(ValueError):")])
def test_after_an_imported_module_and_a_dot_its_definitions_come_first(tmp_path: Path, typed: str,
                                                                       first: str) -> None:
    from lsp_copilot.documents import DocumentStore

    root = _package(tmp_path)
    parser = root / "pkg" / "parser.py"
    text = parser.read_text().replace("    \n    return value", f"    raise errors.{typed}\n    return value")
    offset = text.index(f"errors.{typed}\n") + len(f"errors.{typed}")
    store = DocumentStore()
    doc = store.open(parser.as_uri(), "python", 1, text)
    builder = ContextBuilder(ContextSettings(max_definitions=1), estimate_tokens)
    builder.set_workspace([root], background=False)
    ctx = builder.build(doc, offset, store)
    defs = [p for p in ctx.parts if p.kind == "definitions"]
    assert [p.path for p in defs] == ["pkg/errors.py"] and defs[0].text.startswith(first)
    # what the module defines at its top level, for the pipeline's first-token rule
    assert (ctx.members, ctx.member_typed) == (["MissingFieldError", "ParseError"], typed)
    assert ctx.member_uses == {"ParseError": 1, "MissingFieldError": 1}  # each raised once above (`usage.py`)
    from lsp_copilot.context.describe import describe_context, format_context

    assert describe_context(ctx)["members"] == {"typed": typed, "names": ["MissingFieldError", "ParseError"],
                                                "uses": {"ParseError": 1, "MissingFieldError": 1}}
    assert f"finishes one of 2 names after {typed!r}" in format_context(ctx, show_text=False)
    plain = text.index("return value")
    assert builder.build(doc, plain, store).members == []  # not after `module.`
    assert ContextBuilder.member_access("    x = local.", "from pkg import errors\n") is None  # not a module
    builder.close()


def test_definitions_by_module_follow_changes_and_deletions(py_ws: Path) -> None:
    index = _index()
    index.set_roots([py_ws], background=False)
    assert {"Shape", "area_of", "circle_area"} <= {d.name for d in index.definitions_in_module("geometry")}
    assert index.definitions_in_module("no_such_module") == []
    index.update_file(py_ws / "geometry.py", "def only_this():\n    pass\n")
    assert [d.name for d in index.definitions_in_module("geometry")] == ["only_this"]
    index.update_file(py_ws / "geometry.py", None)
    assert index.definitions_in_module("geometry") == []


def test_a_module_imported_under_another_name_is_found_by_its_file() -> None:
    from lsp_copilot.context.builder import module_aliases

    imports = ("from email import _header_value_parser as parser\nimport os.path as osp\n"
               "import * as strings from './util/strings.js'\nfrom pkg import errors\n")
    assert module_aliases(imports) == {"parser": "_header_value_parser", "osp": "path", "strings": "strings"}
    assert ContextBuilder.member_access("        lp = parser.quo", imports) == ("_header_value_parser", "quo")
    assert ContextBuilder.member_access("    raise errors.", imports) == ("errors", "")
    dotted = "import email.base64mime\n"
    assert ContextBuilder.member_access("    n = email.base64mime.head", dotted) == ("base64mime", "head")
    assert ContextBuilder.member_access("    n = other.base64mime.", dotted) is None  # `other` is not imported


def test_a_package_is_found_by_its_folder_name(tmp_path: Path) -> None:
    from lsp_copilot.context.index import module_stem

    assert [module_stem(Path(p)) for p in ("json/__init__.py", "ui/index.ts", "json/tool.py", "__init__.py")] == [
        "json", "ui", "tool", "__init__"]
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / "__init__.py").write_text("def loads(s):\n    pass\n")
    index = _index()
    index.set_roots([tmp_path], background=False)
    assert [d.name for d in index.definitions_in_module("json")] == ["loads"]
    index.update_file(tmp_path / "json" / "__init__.py", None)
    assert index.definitions_in_module("json") == []


def test_names_a_module_reexports_are_its_interface_and_its_other_imports_a_fallback(tmp_path: Path) -> None:
    from lsp_copilot.context.symbols import import_bindings, imported_names

    assert sorted(imported_names("from email import utils, errors as e\nimport os.path\nimport re as rx, sys\n"
                                 "from x import (a,\n    b as c)\n", "python") or ()) == [
        "a", "c", "e", "os", "rx", "sys", "utils"]
    assert imported_names("from x import *\n", "python") is None and imported_names("import x\n", "go") is None
    bindings = import_bindings("import a as a, b\nfrom x import c as c, d as e\nfrom . import f\nfrom .g import h\n",
                               "python")
    assert bindings == [("c", True), ("e", False), ("f", True), ("h", False), ("a", True), ("b", False)]
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "util.py").write_text(
        "import os\nfrom pkg.core import helper as assist, shout as shout, listed\n\nLIMIT = 3\n"
        "__all__ = ['quote',\n    'listed']\n\ndef quote(s):\n    return s\n\n"
        "class Box:\n    def open(self):\n        pass\n")
    (tmp_path / "pkg" / "__init__.py").write_text("from pkg.util import quote\nfrom pkg.core import helper\n\n"
                                                  "def main():\n    pass\n")
    (tmp_path / "pkg" / "star.py").write_text("from pkg.core import *\n\ndef own():\n    pass\n")
    index = _index()
    index.set_roots([tmp_path], background=False)
    util = index.exported_names("util")
    assert util is not None
    # own definitions and assignments, `__all__` and redundant aliases; not the method `open`, not plain imports
    assert util.for_typed("") == ["Box", "LIMIT", "__all__", "listed", "quote", "shout"]
    assert util.for_typed("as") == util.for_typed("o") == sorted(util.reachable) == [
        "Box", "LIMIT", "__all__", "assist", "listed", "os", "quote", "shout"]  # the user writes another name
    package = index.exported_names("pkg")
    assert package is not None and package.for_typed("") == ["helper", "main", "quote"]  # `__init__` re-exports
    assert index.exported_names("star") is None and index.exported_names("nothing") is None


def test_after_a_namespace_import_in_typescript_the_members_are_what_the_module_exports(tmp_path: Path) -> None:
    from lsp_copilot.context.symbols import es_module_exports
    from lsp_copilot.documents import DocumentStore

    assert sorted(es_module_exports(
        "export function frob() {}\nexport const LIMIT = 3;\nexport class Box {}\nexport default main;\n"
        "export interface Shape {}\nexport { helper, inner as outer, type T2 };\nexport * as ns from './ns';\n"
        "function hidden() {}\n") or ()) == ["Box", "LIMIT", "Shape", "T2", "default", "frob", "helper", "ns", "outer"]
    for unknown in ("export * from './a';\n", "module.exports = { a };\n", "exports.a = 1;\n", "export = a;\n"):
        assert es_module_exports(unknown) is None, unknown  # names built elsewhere or at run time
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "textops.ts").write_text(
        "export function frobnicate(w: string): string {\n  return w;\n}\n\n"
        "export const LIMIT = 3;\n\nfunction hidden(): void {}\n")
    (root / "src" / "legacy.js").write_text("function old() {}\nmodule.exports = { old };\n")
    use = ("import * as textops from './textops';\nimport * as legacy from './legacy';\n\n"
           "function tidy(w: string): string {\n  textops.frobnicate(w);\n  return textops.\n}\n")
    store = DocumentStore()
    doc = store.open((root / "src" / "use.ts").as_uri(), "typescript", 1, use)
    builder = ContextBuilder(ContextSettings(), estimate_tokens)
    builder.set_workspace([root], background=False)
    ctx = builder.build(doc, use.index("textops.\n}") + len("textops."), store)
    assert ctx.members == ["LIMIT", "frobnicate"] and ctx.member_uses == {"frobnicate": 1}  # not `hidden`
    legacy = use.replace("return textops.", "return legacy.")
    doc = store.open((root / "src" / "use.ts").as_uri(), "typescript", 2, legacy)
    assert builder.build(doc, legacy.index("legacy.\n}") + len("legacy."), store).members == []  # CommonJS: unknown
    builder.close()


def test_after_module_dot_the_definitions_the_file_writes_there_come_first(tmp_path: Path) -> None:
    from lsp_copilot.documents import DocumentStore

    root = _package(tmp_path)
    parser = root / "pkg" / "parser.py"
    text = parser.read_text().replace("raise errors.ParseError('empty')", "raise errors.MissingFieldError('empty')")
    text = text.replace("    \n    return value", "    raise errors.\n    return value")
    offset = text.index("errors.\n    return value") + len("errors.")
    store = DocumentStore()
    doc = store.open(parser.as_uri(), "python", 1, text)
    builder = ContextBuilder(ContextSettings(max_definitions=1), estimate_tokens)
    builder.set_workspace([root], background=False)
    ctx = builder.build(doc, offset, store)
    assert ctx.member_uses == {"MissingFieldError": 2}  # raised twice above; ParseError comes first in its file
    defs = [p for p in ctx.parts if p.kind == "definitions"]
    assert defs[0].text.startswith("class MissingFieldError(ParseError):")
    builder.close()
