"""The cursor's surroundings: the enclosing scope from the tree, single- vs multi-line completion, indentation."""

from __future__ import annotations

import re

from tree_sitter import Node, Tree

FUNCTION_TYPES = frozenset({
    "function_definition", "function_declaration", "function_item", "method_definition", "method_declaration",
    "constructor_declaration", "arrow_function", "function_expression", "generator_function_declaration",
    "func_literal", "lambda", "lambda_expression", "closure_expression", "method", "singleton_method",
    "local_function", "function_definition_statement", "anonymous_function", "local_function_declaration_statement",
    "function", "anonymous_function_creation_expression", "block_function",
})
CLASS_TYPES = frozenset({
    "class_definition", "class_declaration", "abstract_class_declaration", "class_specifier", "struct_specifier",
    "struct_item", "impl_item", "trait_item", "enum_item", "interface_declaration", "enum_declaration",
    "record_declaration", "struct_declaration", "trait_declaration", "class", "module", "type_declaration",
    "namespace_declaration", "namespace_definition", "mod_item", "object", "class_body",
})
BLOCK_TYPES = frozenset({
    "for_statement", "for_in_statement", "for_expression", "while_statement", "while_expression", "if_statement",
    "if_expression", "with_statement", "try_statement", "switch_statement", "match_expression", "loop_expression",
    "do_statement", "case_statement", "expression_switch_statement", "type_switch_statement", "select_statement",
    "foreach_statement", "unless", "while", "until", "for", "if", "case", "begin", "do_block", "block",
    "if_statement_block", "repeat_statement", "elif_clause", "else_clause",
})
_BLOCK_OPENER = re.compile(r"(\{|\(|\[|=>|->)\s*$|\b(then|do|begin|else)\s*$")
_PY_BLOCK_OPENER = re.compile(r":\s*(#.*)?$")
# Text after the cursor that still allows a multi-line completion: only closing brackets and separators.
_ONLY_CLOSERS = re.compile(r"^[\s)\]};,]*$")


def enclosing_scope(tree: Tree | None, byte: int, max_column: int | None = None) -> tuple[str | None, Node | None]:
    """("function" | "class" | "block", node) of the innermost scope around a byte offset; (None, None) at top level.

    `max_column` (indentation-based languages, cursor on a blank line): only scopes starting left of that column
    count, since a blank line at a node's own indentation already belongs to its parent.
    """
    if tree is None:
        return None, None
    node: Node | None = tree.root_node.descendant_for_byte_range(byte, byte)
    while node is not None and node.parent is not None:  # the root (Python's "module") is no scope
        # A scope encloses the cursor only strictly inside it (not at its first byte).
        if node.start_byte < byte <= node.end_byte and (max_column is None or node.start_point.column < max_column):
            if node.type in FUNCTION_TYPES:
                return "function", node
            if node.type in CLASS_TYPES and node.type != "class_body":
                return "class", node
            if node.type in BLOCK_TYPES and node.type not in ("block",):
                return "block", node
        node = node.parent
    return None, None


def opens_block(line: str, language: str | None) -> bool:
    """Whether a line's text ends by opening a block (':' in Python, '{', '(', 'then', 'do', ...)."""
    code = line.rstrip()
    if not code:
        return False
    if language == "python":
        return bool(_PY_BLOCK_OPENER.search(code)) or bool(_BLOCK_OPENER.search(code))
    return bool(_BLOCK_OPENER.search(code))


def is_multiline(line_before: str, line_after: str, prev_line: str | None, language: str | None) -> bool:
    """Complete a block (True) or only the rest of the line (False).

    Multi-line: at the end of a line that opens a block, or on an empty line right after a block opener or inside an
    empty body. Single-line: text after the cursor, or mid-line.
    """
    if not _ONLY_CLOSERS.match(line_after):
        return False  # typing in the middle of a line
    if line_after.strip() and not line_before.strip():
        return False  # at the start of a line that already has content
    if line_before.strip():
        return opens_block(line_before, language) and not line_after.strip()
    # The cursor line is empty (or whitespace): after a block opener, or inside an empty `{ }` body.
    # (An empty `{ }` / `def f():` body always has its opener on the previous non-empty line.)
    return prev_line is not None and opens_block(prev_line, language)


def line_indent(line: str) -> str:
    """The leading whitespace of a line."""
    return line[: len(line) - len(line.lstrip(" \t"))]
