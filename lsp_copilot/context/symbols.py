"""Definitions (signature + docstring, no body) and imports of a file, found with tree-sitter queries per language."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tree_sitter import Node, Query, QueryCursor, Tree

from lsp_copilot.languages import LanguageRegistry

_C_DEFS = """
(function_definition declarator: (function_declarator declarator: (identifier) @name)) @def
(function_definition
  declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))) @def
(declaration declarator: (function_declarator declarator: (identifier) @name)) @def
(struct_specifier name: (type_identifier) @name body: (_)) @def
(enum_specifier name: (type_identifier) @name body: (_)) @def
(union_specifier name: (type_identifier) @name body: (_)) @def
(type_definition declarator: (type_identifier) @name) @def
(preproc_function_def name: (identifier) @name) @def
"""
_JS_DEFS = """
(function_declaration name: (identifier) @name) @def
(generator_function_declaration name: (identifier) @name) @def
(method_definition name: (property_identifier) @name) @def
(lexical_declaration
  (variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)])) @def
"""
# One query per grammar: every match has @def (the definition node) and @name (its name).
DEFINITION_QUERIES: dict[str, str] = {
    "python": """
(function_definition name: (identifier) @name) @def
(class_definition name: (identifier) @name) @def
(module (expression_statement (assignment left: (identifier) @name)) @def)
""",
    "javascript": _JS_DEFS + "(class_declaration name: (identifier) @name) @def\n",
    "typescript": _JS_DEFS + """
(class_declaration name: (type_identifier) @name) @def
(abstract_class_declaration name: (type_identifier) @name) @def
(interface_declaration name: (type_identifier) @name) @def
(type_alias_declaration name: (type_identifier) @name) @def
(enum_declaration name: (identifier) @name) @def
(function_signature name: (identifier) @name) @def
(method_signature name: (property_identifier) @name) @def
(abstract_method_signature name: (property_identifier) @name) @def
""",
    "go": """
(function_declaration name: (identifier) @name) @def
(method_declaration name: (field_identifier) @name) @def
(type_declaration (type_spec name: (type_identifier) @name)) @def
(method_elem name: (field_identifier) @name) @def
""",
    "rust": """
(function_item name: (identifier) @name) @def
(function_signature_item name: (identifier) @name) @def
(struct_item name: (type_identifier) @name) @def
(enum_item name: (type_identifier) @name) @def
(union_item name: (type_identifier) @name) @def
(trait_item name: (type_identifier) @name) @def
(type_item name: (type_identifier) @name) @def
(macro_definition name: (identifier) @name) @def
""",
    "java": """
(class_declaration name: (identifier) @name) @def
(interface_declaration name: (identifier) @name) @def
(enum_declaration name: (identifier) @name) @def
(record_declaration name: (identifier) @name) @def
(method_declaration name: (identifier) @name) @def
(constructor_declaration name: (identifier) @name) @def
""",
    "c": _C_DEFS,
    "cpp": _C_DEFS + """
(function_definition declarator: (function_declarator declarator: (field_identifier) @name)) @def
(function_definition declarator: (function_declarator declarator: (qualified_identifier name: (identifier) @name))) @def
(field_declaration declarator: (function_declarator declarator: (field_identifier) @name)) @def
(class_specifier name: (type_identifier) @name body: (_)) @def
""",
    "csharp": """
(class_declaration name: (identifier) @name) @def
(interface_declaration name: (identifier) @name) @def
(struct_declaration name: (identifier) @name) @def
(enum_declaration name: (identifier) @name) @def
(record_declaration name: (identifier) @name) @def
(method_declaration name: (identifier) @name) @def
(constructor_declaration name: (identifier) @name) @def
""",
    "ruby": """
(method name: (_) @name) @def
(singleton_method name: (_) @name) @def
(class name: (constant) @name) @def
(module name: (constant) @name) @def
""",
    "php": """
(function_definition name: (name) @name) @def
(class_declaration name: (name) @name) @def
(interface_declaration name: (name) @name) @def
(trait_declaration name: (name) @name) @def
(method_declaration name: (name) @name) @def
""",
    "lua": "(function_declaration name: (_) @name) @def\n",
    "bash": "(function_definition name: (word) @name) @def\n",
}
DEFINITION_QUERIES["tsx"] = DEFINITION_QUERIES["typescript"]

# Top-level node types that are imports; `_IMPORT_CALL` catches require/source/include calls in any language.
IMPORT_TYPES: dict[str, frozenset[str]] = {
    "python": frozenset({"import_statement", "import_from_statement", "future_import_statement"}),
    "javascript": frozenset({"import_statement"}),
    "typescript": frozenset({"import_statement", "import_alias"}),
    "tsx": frozenset({"import_statement", "import_alias"}),
    "go": frozenset({"package_clause", "import_declaration"}),
    "rust": frozenset({"use_declaration", "extern_crate_declaration"}),
    "java": frozenset({"package_declaration", "import_declaration"}),
    "c": frozenset({"preproc_include"}),
    "cpp": frozenset({"preproc_include", "using_declaration", "alias_declaration"}),
    "csharp": frozenset({"using_directive"}),
    "php": frozenset({"namespace_use_declaration", "namespace_definition"}),
}
_IMPORT_CALL = re.compile(
    r"^\s*(?:(?:local\s+|const\s+|let\s+|var\s+)?[\w{}, ]+\s*=\s*)?"
    r"(?:require|require_relative|require_once|include|include_once|load|source|\.)[\s(]")
_TYPE_WORDS = ("class", "struct", "interface", "enum", "trait", "type", "module", "record", "union")
_DOC_COMMENT_TYPES = frozenset({"comment", "line_comment", "block_comment"})


@dataclass(frozen=True)
class Definition:
    """One named definition, rendered without its body (signature, docstring or doc comment, members of a type)."""

    name: str
    kind: str  # "function" | "type" | "variable"
    path: str  # workspace-relative path of its file
    line: int  # 0-based first line of the definition
    text: str
    end_line: int = -1  # 0-based last line (-1: unknown)

    def contains(self, other: Definition) -> bool:
        """Whether `other` is nested in this definition (a method of a class shown whole, ...)."""
        return self.path == other.path and self.line <= other.line and other.end_line <= self.end_line and \
            (self.line, self.end_line) != (other.line, other.end_line)


def _text(data: bytes, start: int, end: int) -> str:
    return data[start:end].decode("utf-8", "replace")


def _kind_of(node: Node) -> str:
    if node.type in ("expression_statement", "assignment"):
        return "variable"
    return "type" if any(w in node.type for w in _TYPE_WORDS) and "function" not in node.type else "function"


def _line_indent(data: bytes, byte: int) -> str:
    line_start = data.rfind(b"\n", 0, byte) + 1
    line = data[line_start:byte].decode("utf-8", "replace")
    return line[: len(line) - len(line.lstrip(" \t"))]


class SymbolExtractor:
    """Compiles the queries once per grammar and extracts definitions and imports from parsed files."""

    def __init__(self, registry: LanguageRegistry, max_definition_lines: int = 12, max_import_lines: int = 60) -> None:
        self._registry = registry
        self.max_definition_lines = max_definition_lines
        self.max_import_lines = max_import_lines
        self._queries: dict[str, Query | None] = {}

    def query(self, grammar: str) -> Query | None:
        """The compiled definition query of a grammar (None when the grammar has none)."""
        if grammar not in self._queries:
            language = self._registry.language(grammar)
            source = DEFINITION_QUERIES.get(grammar)
            self._queries[grammar] = Query(language, source) if language is not None and source else None
        return self._queries[grammar]

    # -- definitions -------------------------------------------------------------------------------------------------
    def definitions(self, tree: Tree, data: bytes, grammar: str, path: str) -> list[Definition]:
        """All definitions of a parsed file, in source order."""
        query = self.query(grammar)
        if query is None:
            return []
        found: list[tuple[Node, Node]] = []
        seen: set[int] = set()
        for _, captures in QueryCursor(query).matches(tree.root_node):
            def_nodes, name_nodes = captures.get("def", []), captures.get("name", [])
            if def_nodes and name_nodes and def_nodes[0].start_byte not in seen:
                seen.add(def_nodes[0].start_byte)
                found.append((def_nodes[0], name_nodes[0]))
        found.sort(key=lambda pair: (pair[0].start_byte, -pair[0].end_byte))
        kinds = [_kind_of(node) for node, _ in found]
        # One pass with a stack of the definitions enclosing the current one (innermost last): O(n * depth).
        container: list[int | None] = []  # index of the innermost enclosing type, per definition
        local: list[bool] = []  # inside a function body: not visible from other files
        members: dict[int, list[Node]] = {}
        stack: list[int] = []
        for i, (node, _) in enumerate(found):
            while stack and found[stack[-1]][0].end_byte <= node.start_byte:
                stack.pop()
            local.append(any(kinds[j] == "function" for j in stack))
            container.append(next((j for j in reversed(stack) if kinds[j] == "type"), None))
            if container[i] is not None and not local[i]:
                members.setdefault(container[i], []).append(node)  # type: ignore[arg-type]
            stack.append(i)
        out = []
        for i, (node, name_node) in enumerate(found):
            if local[i]:
                continue
            name = re.split(r"[.:]", _text(data, name_node.start_byte, name_node.end_byte))[-1]
            parent = found[container[i]][0] if container[i] is not None else None  # type: ignore[index]
            text = self.render(node, kinds[i], data, grammar, parent, members.get(i, []))
            out.append(Definition(name, kinds[i], path, node.start_point.row, text, node.end_point.row))
        return out

    def render(self, node: Node, kind: str, data: bytes, grammar: str, container: Node | None,
               members: list[Node]) -> str:
        """Signature plus docstring/doc comment; a short type whole, a long one as header plus member signatures."""
        indent = _line_indent(data, node.start_byte)
        doc = self._doc_comment(node, data)
        lines = _text(data, node.start_byte, node.end_byte).split("\n")
        if kind == "variable":
            body = "\n".join(lines[:3]) + (" ..." if len(lines) > 3 else "")
        elif kind == "type" and len(lines) <= self.max_definition_lines:
            body = "\n".join(lines)
        else:
            body = self._signature(node, data, grammar)
            if kind == "type":
                inner = [self._one_line(m, data) for m in members][: self.max_definition_lines]
                member_indent = indent + ("    " if grammar == "python" else "  ")
                body_lines = [body] + [member_indent + s.strip() for s in inner]
                if not inner:  # no members found: the first lines, then an ellipsis
                    body_lines = [*lines[: self.max_definition_lines], member_indent + "..."]
                if lines[0].rstrip().endswith("{") or body.rstrip().endswith("{"):
                    body_lines.append(indent + "}")
                body = "\n".join(body_lines)
        # The node's first line starts after its indentation; later lines (and the doc comment's) carry it.
        text = _dedent((indent + doc + "\n" if doc else "") + indent + body, indent)
        if container is not None:
            header = _text(data, container.start_byte, container.end_byte).split("\n")[0].rstrip()
            pad = "    " if grammar == "python" else "  "
            text = header + "\n" + "\n".join(pad + line if line else line for line in text.split("\n"))
            if header.endswith("{"):
                text += "\n}"
        return text.rstrip()

    def _signature(self, node: Node, data: bytes, grammar: str) -> str:
        """The definition up to its body, with the Python docstring when there is one."""
        body = node.child_by_field_name("body")
        if grammar == "ruby" and body is None:
            body = next((c for c in node.named_children if c.type in ("body_statement", "block_body")), None)
        if body is None:
            lines = _text(data, node.start_byte, node.end_byte).split("\n")
            return "\n".join(lines[: self.max_definition_lines])
        header = _text(data, node.start_byte, body.start_byte).rstrip()
        if grammar != "python":
            return header.rstrip("{").rstrip() if header.endswith("{") else header
        first = body.named_children[0] if body.named_children else None
        if first is not None and first.type == "expression_statement" and first.named_children:
            first = first.named_children[0]  # older grammars wrap the docstring in an expression_statement
        if first is not None and first.type == "string":
            indent = _line_indent(data, first.start_byte)
            return header + "\n" + indent + _summary_docstring(_text(data, first.start_byte, first.end_byte), indent)
        return header + " ..."

    @staticmethod
    def _one_line(node: Node, data: bytes) -> str:
        """A member's signature on one line: the text before its body with whitespace collapsed."""
        body = node.child_by_field_name("body")
        end = body.start_byte if body is not None else node.end_byte
        line = " ".join(_text(data, node.start_byte, end).split()).rstrip("{").rstrip()
        return line if len(line) <= 160 else line[:157] + "..."

    @staticmethod
    def _doc_comment(node: Node, data: bytes) -> str:
        """The comment lines directly above a definition (Javadoc, ///, #, --), joined; '' when there are none."""
        target = node.parent if node.parent is not None and node.parent.type in (
            "export_statement", "decorated_definition", "template_declaration") else node
        comments: list[Node] = []
        sibling = target.prev_sibling
        row = target.start_point.row
        while sibling is not None and sibling.type in _DOC_COMMENT_TYPES and sibling.end_point.row >= row - 1:
            comments.append(sibling)
            row = sibling.start_point.row
            sibling = sibling.prev_sibling
        if not comments:
            return ""
        lines = _text(data, comments[-1].start_byte, comments[0].end_byte).rstrip().split("\n")
        return "\n".join(lines[-8:])

    # -- imports -----------------------------------------------------------------------------------------------------
    def imports(self, tree: Tree | None, text: str, grammar: str | None) -> str:
        """The import statements of a file, as text (top-level import nodes, else require/source-like lines)."""
        kinds = IMPORT_TYPES.get(grammar or "")
        found: list[str] = []
        if tree is not None and kinds:
            data_lines = 0
            for child in tree.root_node.children:
                if child.type in kinds:
                    part = child.text.decode("utf-8", "replace") if child.text else ""
                    found.append(part)
                    data_lines += part.count("\n") + 1
                    if data_lines >= self.max_import_lines:
                        break
            if found:
                return "\n".join(found)
        for line in text.split("\n")[:400]:  # require/source/include near the top of the file
            if (_IMPORT_CALL.match(line) and "(" in line) or line.lstrip().startswith(("source ", "require ")):
                found.append(line.rstrip())
                if len(found) >= self.max_import_lines:
                    break
        return "\n".join(found)


def _dedent(text: str, indent: str) -> str:
    """Remove the definition's own indentation from every line that has it."""
    if not indent:
        return text
    return "\n".join(line[len(indent):] if line.startswith(indent) else line for line in text.split("\n"))


def _summary_docstring(doc: str, indent: str) -> str:
    """A docstring cut after its first paragraph (at most 6 lines), closed again when cut."""
    lines = doc.split("\n")
    if len(lines) <= 2:
        return doc
    quote = next((q for q in ('"""', "'''") if q in lines[0]), '"""')
    kept: list[str] = []
    for line in lines[:6]:
        if kept and not line.strip():
            break
        kept.append(line)
    if len(kept) == len(lines):
        return doc
    return "\n".join(kept) + "\n" + indent + "..." + quote


_FROM_IMPORT = re.compile(r"^[ \t]*from[ \t]+[\w.]+[ \t]+import[ \t]+(?:\(([^)]*)\)|([^\n#]*))", re.M)
_PLAIN_IMPORT = re.compile(r"^[ \t]*import[ \t]+([^#\n]+)", re.M)
_TOP_LEVEL_ASSIGNMENT = re.compile(r"^([A-Za-z_]\w*)[ \t]*(?::[^=\n]*)?=(?!=)", re.M)


_ALL = re.compile(r"^__all__[ \t]*(?::[^=\n]*)?\+?=[ \t]*[\[(]([^\])]*)[\])]", re.M)
_QUOTED_NAME = re.compile(r"""['"]([A-Za-z_]\w*)['"]""")


@dataclass(frozen=True)
class ModuleNames:
    """The names `module.` reaches in a module, in two tiers (the same set twice for an ES module)."""

    interface: frozenset[str]  # its own top-level definitions and assignments, and the imports it re-exports
    reachable: frozenset[str]  # the interface and every other name its imports bind (reachable, rarely meant)

    def union(self, other: ModuleNames) -> ModuleNames:
        return ModuleNames(self.interface | other.interface, self.reachable | other.reachable)

    def for_typed(self, typed: str) -> list[str]:
        """The interface names, or every reachable name when none of the interface starts with `typed` (the user
        is writing `module.os...`): sorted."""
        if any(n.startswith(typed) for n in self.interface):
            return sorted(self.interface)
        return sorted(self.reachable)


_JS_EXPORTED_DECLARATION = re.compile(
    r"^[ \t]*export[ \t]+(?:declare[ \t]+)?(?:async[ \t]+)?(?:abstract[ \t]+)?"
    r"(?:function\*?|class|const|let|var|interface|type|enum|namespace|module)[ \t]*\*?[ \t]*([A-Za-z_$][\w$]*)", re.M)
_JS_EXPORT_LIST = re.compile(r"^[ \t]*export[ \t]+(?:type[ \t]+)?\{([^}]*)\}", re.M)
_JS_EXPORT_DEFAULT = re.compile(r"^[ \t]*export[ \t]+default\b", re.M)
_JS_EXPORT_NAMESPACE = re.compile(r"^[ \t]*export[ \t]+\*[ \t]+as[ \t]+([A-Za-z_$][\w$]*)", re.M)
_JS_UNKNOWN_EXPORTS = re.compile(r"^[ \t]*export[ \t]+(?:\*[ \t]+from|=)|\bmodule\.exports\b|^[ \t]*exports\.", re.M)
_JS_GRAMMARS = frozenset({"javascript", "typescript", "tsx"})


def es_module_exports(text: str) -> frozenset[str] | None:
    """The names an ES module exports (`export function f`, `export const x`, `export { a, b as c }`, `export
    default` -> "default", `export * as ns from`): all that `import * as m` reaches, so they are its interface and
    everything it binds. None when they cannot be known: `export * from` re-exports another module's names,
    CommonJS `module.exports`/`exports.x` and TypeScript's `export =` build them at run time."""
    if _JS_UNKNOWN_EXPORTS.search(text):
        return None
    names = set(_JS_EXPORTED_DECLARATION.findall(text)) | set(_JS_EXPORT_NAMESPACE.findall(text))
    for m in _JS_EXPORT_LIST.finditer(text):
        for item in m.group(1).split(","):
            words = item.split()
            if words and words[0] == "type" and len(words) > 1:  # `export { type T }`
                words = words[1:]
            if words:
                names.add(words[-1])  # `a as b` exports b
    if _JS_EXPORT_DEFAULT.search(text):
        names.add("default")
    return frozenset(n for n in names if re.fullmatch(r"[A-Za-z_$][\w$]*", n))


def reachable_names(defs: list[Definition], text: str, imports: str, grammar: str | None,
                    is_package: bool = False) -> ModuleNames | None:
    """What `module.` reaches in a Python module (`defs` in source order; one pass), or `import * as m` in an ES
    module (`es_module_exports`); None when that cannot be known (see `import_bindings`).

    The interface follows the typing specification's rule for a library's public symbols: a module's own
    definitions and assignments (`LIMIT = 3`), and of the names its imports bind only those it re-exports: listed
    in `__all__`, imported with a redundant alias (`from x import a as a`), `from . import a`, or any import of a
    package's `__init__` (a workspace package re-exports what its `__init__` imports). Private names stay: sibling
    modules of a package call each other's `_helpers`.
    """
    if grammar in _JS_GRAMMARS:
        exports = es_module_exports(text)
        return ModuleNames(exports, exports) if exports is not None else None
    bindings = import_bindings(imports, grammar)
    if bindings is None:
        return None
    top: list[Definition] = []
    for d in defs:  # a nested definition follows its container, which a top-level one contains
        if not (top and top[-1].contains(d)):
            top.append(d)
    own = frozenset(_TOP_LEVEL_ASSIGNMENT.findall(text)) | {d.name for d in top}
    listed = {n for m in _ALL.finditer(text) for n in _QUOTED_NAME.findall(m.group(1))}
    exported = {name for name, explicit in bindings if explicit or is_package or name in listed}
    return ModuleNames(own | exported, own | {name for name, _ in bindings})


def imported_names(imports: str, grammar: str | None) -> frozenset[str] | None:
    """The names a Python file's import statements bind (`from x import a, b as c` -> a, c; `import p.q` -> p);
    None when they cannot be known (a star import, or another language): a module may re-export any of them."""
    bindings = import_bindings(imports, grammar)
    return None if bindings is None else frozenset(name for name, _ in bindings)


def import_bindings(imports: str, grammar: str | None) -> list[tuple[str, bool]] | None:
    """Each name a Python file's imports bind, and whether the import marks it re-exported (`import a as a`,
    `from x import a as a`, `from . import a`); None when they cannot be known (a star import, another language)."""
    if grammar != "python":
        return None
    bindings: list[tuple[str, bool]] = []
    for m in _FROM_IMPORT.finditer(imports):
        relative_package = re.match(r"[ \t]*from[ \t]+\.+[ \t]+import", m.group(0)) is not None
        for item in (m.group(1) or m.group(2)).replace("\\", " ").split(","):
            words = item.split()
            if words == ["*"]:
                return None
            if words:  # `b as c` binds c
                bindings.append((words[-1], relative_package or (len(words) == 3 and words[0] == words[2])))
    for m in _PLAIN_IMPORT.finditer(imports):
        for item in m.group(1).split(","):
            words = item.split()
            if len(words) == 3:
                bindings.append((words[2], words[0] == words[2]))
            elif words:
                bindings.append((words[0].split(".")[0], False))
    return [(name, explicit) for name, explicit in bindings if name.isidentifier()]
