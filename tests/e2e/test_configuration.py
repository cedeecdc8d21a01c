"""Settings: pulled with workspace/configuration, changed with didChangeConfiguration, bad values reported."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lsprotocol import types

from tests.e2e.conftest import CURSOR, SAMPLE
from tests.e2e.lsp_session import Session, session


async def _token_count(s: Session, uri: str) -> int:
    """Tokens generated for one request (the random tiny model's text may be wiped by post-processing)."""
    before = await s.generated_tokens()
    _, fut = s.inline(uri, *CURSOR)
    await asyncio.wait_for(fut, 120)
    return await s.generated_tokens() - before


async def test_pulled_configuration_applies(workspace: Path, tiny_args: list[str]) -> None:
    config = {"completion": {"maxTokens": 3, "multiline": "always"}}
    async with session(workspace, *tiny_args, config=config) as s:
        uri = s.open(workspace / "sample.py", SAMPLE)
        short = await _token_count(s, uri)
        # Raise the limit through didChangeConfiguration (the server pulls again).
        s.config = {"completion": {"maxTokens": 60, "multiline": "always"}}
        s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        await asyncio.sleep(0.5)
        s.client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))
        uri = s.open(workspace / "sample.py", SAMPLE)
        longer = await _token_count(s, uri)
        assert (short, longer) == (3, 60)


async def test_invalid_setting_warns_and_falls_back(workspace: Path, tiny_args: list[str]) -> None:
    config = {"completion": {"maxTokens": "many", "temperature": 7}, "noSuchSetting": 1}
    async with session(workspace, *tiny_args, config=config) as s:
        warnings = [m.message for m in s.messages if m.type == types.MessageType.Warning]
        assert any("completion.maxTokens" in w and "integer" in w for w in warnings)
        assert any("completion.temperature" in w for w in warnings)
        assert any("noSuchSetting" in w for w in warnings)
        uri = s.open(workspace / "sample.py", SAMPLE)
        assert await _token_count(s, uri) > 3  # defaults in force (maxTokens 128), still serving


async def test_missing_model_directory_is_reported(workspace: Path, tmp_path: Path) -> None:
    async with session(workspace, "--model", str(tmp_path / "nope"), wait=False) as s:
        for _ in range(600):
            if any(st["state"] == "error" for st in s.statuses):
                break
            await asyncio.sleep(0.1)
        errors = [m.message for m in s.messages if m.type == types.MessageType.Error]
        assert errors and "nope" in errors[0]
        uri = s.open(workspace / "sample.py", SAMPLE)
        _, fut = s.inline(uri, *CURSOR)
        assert not (await asyncio.wait_for(fut, 30)).items
