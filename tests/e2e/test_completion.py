"""textDocument/completion: the same suggestion as inline completion, as a completion item with a text edit."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lsprotocol import types

from tests.e2e.conftest import CURSOR, SAMPLE
from tests.e2e.lsp_session import session


async def test_completion_item_matches_inline_suggestion(workspace: Path, embedded_args: list[str]) -> None:
    async with session(workspace, *embedded_args) as s:
        uri = s.open(workspace / "sample.py", SAMPLE)
        _, fut = s.inline(uri, *CURSOR)
        inline = await asyncio.wait_for(fut, 120)
        # Close and reopen so the second answer is generated again (greedy: the same text), not served from the cache.
        s.client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))
        uri = s.open(workspace / "sample.py", SAMPLE)
        _, fut = s.completion(uri, *CURSOR)
        comp: types.CompletionList = await asyncio.wait_for(fut, 120)
        assert inline.items, "expected a suggestion"
        assert len(comp.items) == 1
        item = comp.items[0]
        assert item.text_edit.new_text == inline.items[0].insert_text
        assert item.text_edit.range.start == types.Position(*CURSOR)
        assert item.insert_text_format == types.InsertTextFormat.PlainText
        assert item.label == item.text_edit.new_text.strip().splitlines()[0][:80]


async def test_initialize_advertises_capabilities(workspace: Path, tiny_args: list[str]) -> None:
    async with session(workspace, *tiny_args) as s:
        caps = s.capabilities
        assert caps.inline_completion_provider
        assert caps.completion_provider is not None
        sync = caps.text_document_sync
        assert sync.change == types.TextDocumentSyncKind.Incremental
        # Loading is reported with $/progress and the status notification, and settings were pulled.
        assert any(kind == "create" for kind, _ in s.progress)
        kinds = [v.get("kind") for k, v in s.progress if k == "progress"]
        assert kinds[0] == "begin" and kinds[-1] == "end"
        assert [st["state"] for st in s.statuses][:1] == ["loading"] and s.statuses[-1]["state"] == "ready"
        assert s.config_requests >= 1
