"""Documents: UTF-16 positions, incremental edits and reparses, plain-text fallbacks, the store's recency order."""

from __future__ import annotations

import pytest

from lsp_copilot.documents import Document, DocumentStore, PositionError, uri_to_path
from lsp_copilot.languages import default_registry

PY = "def f(x):\n    return x\n"


def test_utf16_positions_round_trip_with_non_ascii() -> None:
    text = "a = 'é€😀b'\nz\n"
    doc = Document("file:///w/a.py", "python", 1, text)
    # é and € are one UTF-16 unit each, the emoji two: 'b' is at UTF-16 column 9, str column 8.
    assert doc.offset_at(0, 9) == text.index("b")
    assert doc.position_at(text.index("b")) == (0, 9)
    assert doc.offset_at(1, 0) == text.index("z")
    assert doc.offset_at(2, 0) == len(text)  # the empty line after the final newline
    assert doc.byte_at(text.index("b")) == len(text[: text.index("b")].encode())
    with pytest.raises(PositionError, match="surrogate"):
        doc.offset_at(0, 8)  # inside the emoji


def test_positions_past_the_end_raise_clear_errors() -> None:
    doc = Document("file:///w/a.py", "python", 1, PY)
    with pytest.raises(PositionError, match="past the end of line 0"):
        doc.offset_at(0, 10)
    with pytest.raises(PositionError, match="line 3 is outside"):
        doc.offset_at(3, 0)
    with pytest.raises(PositionError):
        doc.position_at(len(PY) + 1)


def test_bad_change_changes_nothing() -> None:
    doc = Document("file:///w/a.py", "python", 1, PY)
    tree_before = str(doc.tree.root_node) if doc.tree else ""
    with pytest.raises(PositionError):
        doc.apply_change((0, 0, 9, 0), "x", 2)
    with pytest.raises(PositionError, match="ends before"):
        doc.apply_change((1, 2, 0, 1), "x", 2)
    assert doc.text == PY and doc.version == 1
    assert doc.tree is not None and str(doc.tree.root_node) == tree_before


def test_incremental_edit_updates_text_tree_and_lines() -> None:
    doc = Document("file:///w/a.py", "python", 1, PY)
    doc.apply_change((1, 11, 1, 12), "x + 1\n    # é😀\n    pass", 2)
    assert doc.text == "def f(x):\n    return x + 1\n    # é😀\n    pass\n"
    assert doc.line_text(2) == "    # é😀" and doc.line_count == 5
    parser = default_registry().parser("python")
    assert parser is not None and doc.tree is not None
    assert str(doc.tree.root_node) == str(parser.parse(doc.text.encode()).root_node)
    assert "binary_operator" in str(doc.tree.root_node)
    doc.apply_change(None, "x = 1\n", 3)
    assert doc.text == "x = 1\n" and doc.version == 3 and doc.line_count == 2


def test_crlf_lines_exclude_the_carriage_return() -> None:
    doc = Document("file:///w/a.py", "python", 1, "ab\r\ncd")
    assert doc.line_text(0) == "ab"
    assert doc.offset_at(0, 2) == 2
    with pytest.raises(PositionError):
        doc.offset_at(0, 3)
    doc.apply_change((0, 2, 1, 0), "", 2)
    assert doc.text == "abcd"


def test_plain_text_for_unknown_language_huge_and_binary_documents() -> None:
    assert Document("file:///w/notes.xyz", "plaintext", 1, "hello").tree is None
    assert Document("untitled:1", "cobol-ish", 1, "hello").language is None
    big = Document("file:///w/big.py", "python", 1, "x = 1\n" * 100, max_tree_bytes=100)
    assert big.language == "python" and big.tree is None
    binary = Document("file:///w/bin.py", "python", 1, "x = 1\x00\n")
    assert binary.tree is None
    binary.apply_change((0, 5, 0, 6), "", 2)  # the NUL removed: the tree comes back
    assert binary.tree is not None and binary.text == "x = 1\n"


def test_language_detected_from_extension_when_id_is_unknown() -> None:
    assert Document("file:///w/main.go", "unknown", 1, "package main\n").language == "go"
    assert Document("file:///w/App.tsx", "typescriptreact", 1, "").language == "tsx"


def test_uri_to_path() -> None:
    assert str(uri_to_path("file:///w/a%20b.py")) == "/w/a b.py"
    assert uri_to_path("untitled:Untitled-1") is None


def test_store_recency_and_close() -> None:
    store = DocumentStore()
    store.open("file:///w/a.py", "python", 1, "a\n")
    store.open("file:///w/b.py", "python", 1, "b\n")
    store.change("file:///w/a.py", [((0, 1, 0, 1), "x")], 2)
    assert [d.uri for d in store.recently_edited()] == ["file:///w/a.py", "file:///w/b.py"]
    store["file:///w/b.py"].apply_change((0, 0, 0, 0), "y", 2)  # an edit made on the document directly counts too
    assert [d.uri for d in store.recently_edited(1)] == ["file:///w/b.py"]
    assert store["file:///w/a.py"].text == "ax\n"
    assert store.close("file:///w/a.py") is not None
    assert "file:///w/a.py" not in store and len(store) == 1
    with pytest.raises(KeyError):
        store.change("file:///w/a.py", [(None, "")], 3)
