"""Bad input gets a clear error or an empty result, never a crash: each case is followed by a request that works."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.e2e.conftest import CURSOR, SAMPLE
from tests.e2e.lsp_session import server_command, server_env, session

QUICK = {"completion": {"maxTokens": 8}}


async def _still_serves(s, workspace: Path) -> None:
    uri = s.open(workspace / "sample.py", SAMPLE, version=100)
    _, fut = s.inline(uri, *CURSOR)
    result = await asyncio.wait_for(fut, 60)
    assert result.items and result.items[0].insert_text


async def test_unknown_document_and_bad_positions(workspace: Path, tiny_args: list[str]) -> None:
    async with session(workspace, *tiny_args, config=QUICK) as s:
        _, fut = s.inline((workspace / "never-opened.py").as_uri(), 0, 0)
        with pytest.raises(JsonRpcException, match="unknown document"):
            await asyncio.wait_for(fut, 30)
        uri = s.open(workspace / "sample.py", SAMPLE)
        for line, col in ((999, 0), (0, 999), (-1, 0)):
            _, fut = s.raw_request(types.TEXT_DOCUMENT_INLINE_COMPLETION, {
                "textDocument": {"uri": uri}, "position": {"line": line, "character": col},
                "context": {"triggerKind": 2}})
            with pytest.raises(JsonRpcException):
                await asyncio.wait_for(fut, 30)
        # Malformed params: no position at all.
        _, fut = s.raw_request(types.TEXT_DOCUMENT_INLINE_COMPLETION, {"textDocument": {"uri": uri}})
        with pytest.raises(JsonRpcException):
            await asyncio.wait_for(fut, 30)
        # An edit outside the document is refused and the document is kept as it was.
        s.change(uri, 2, (500, 0), (500, 1), "x")
        await _still_serves(s, workspace)


async def test_huge_binary_and_unknown_language(workspace: Path, tiny_args: list[str]) -> None:
    async with session(workspace, *tiny_args, config=QUICK) as s:
        huge = ("x = 1\n" * 1_800_000)[:10_500_000]
        uri = s.open(workspace / "huge.py", huge)
        _, fut = s.inline(uri, 1000, 0)
        assert isinstance(await asyncio.wait_for(fut, 120), types.InlineCompletionList)
        uri = s.open(workspace / "blob.bin", "abc\x00\x01\x02def\n", language_id="binary")
        _, fut = s.inline(uri, 0, 3)
        assert not (await asyncio.wait_for(fut, 60)).items
        uri = s.open(workspace / "notes.zzz", "some words\nmore ", language_id="no-such-language")
        _, fut = s.inline(uri, 1, 5)
        assert isinstance(await asyncio.wait_for(fut, 60), types.InlineCompletionList)
        await _still_serves(s, workspace)


def _frame(obj: object | bytes) -> bytes:
    body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def _read_message(stdout) -> dict:
    length = 0
    while True:
        line = stdout.readline()
        if not line:
            raise EOFError("server closed stdout")
        if line.startswith(b"Content-Length:"):
            length = int(line.split(b":")[1])
        elif line in (b"\r\n", b"\n") and length:
            return json.loads(stdout.read(length))


def test_malformed_json_rpc_keeps_the_server_alive(workspace: Path, tiny_args: list[str]) -> None:
    proc = subprocess.Popen(server_command(*tiny_args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=server_env())
    try:
        assert proc.stdin and proc.stdout
        proc.stdin.write(_frame(b"{this is not json"))
        proc.stdin.write(_frame({"jsonrpc": "2.0", "id": 1, "method": "no/such/method", "params": {}}))
        proc.stdin.write(_frame({"jsonrpc": "2.0", "id": 2, "method": "initialize",
                                 "params": {"capabilities": {}, "rootUri": workspace.as_uri()}}))
        proc.stdin.flush()
        seen: dict[object, dict] = {}
        while 2 not in seen:
            msg = _read_message(proc.stdout)
            if "id" in msg:
                seen[msg["id"]] = msg
        assert seen[1]["error"]["code"] == -32601  # method not found
        assert "capabilities" in seen[2]["result"]
        proc.stdin.write(_frame({"jsonrpc": "2.0", "id": 3, "method": "shutdown"}))
        proc.stdin.write(_frame({"jsonrpc": "2.0", "method": "exit"}))
        proc.stdin.flush()
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
