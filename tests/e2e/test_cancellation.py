"""$/cancelRequest and supersession: generation stops between steps and the stale request answers empty."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.e2e.conftest import SAMPLE
from tests.e2e.lsp_session import session

CURSOR = (len(SAMPLE.splitlines()) - 1, 4)
# The tiny random model never says end-of-text, so an uncancelled request runs to maxTokens.
LONG = {"completion": {"maxTokens": 400, "multiline": "always", "timeLimitMs": 30000, "streamIntervalMs": 0}}


async def _first_chunk(s, msg_id: int) -> None:  # noqa: ANN001
    while not s.chunks_for(msg_id):
        await asyncio.sleep(0.005)


async def test_cancel_request_stops_generation(workspace: Path, tiny_args: list[str]) -> None:
    async with session(workspace, *tiny_args, config=LONG) as s:
        uri = s.open(workspace / "sample.py", SAMPLE)
        msg_id, fut = s.inline(uri, *CURSOR)
        await asyncio.wait_for(_first_chunk(s, msg_id), 60)
        s.cancel(msg_id)
        result = await asyncio.wait_for(fut, 30)
        assert not result.items
        chunks = s.chunks_for(msg_id)
        assert chunks[-1] == {**chunks[-1], "text": "", "done": True}
        longest = max(len(c["text"]) for c in chunks)
        # A full run would have produced 400 tokens; cancellation stopped it well before.
        uncancelled_id, fut2 = s.inline(uri, *CURSOR)
        full = await asyncio.wait_for(fut2, 120)
        assert full.items and len(full.items[0].insert_text) > longest


async def test_newer_request_supersedes_older(workspace: Path, tiny_args: list[str]) -> None:
    async with session(workspace, *tiny_args, config=LONG) as s:
        uri = s.open(workspace / "sample.py", SAMPLE)
        first_id, first = s.inline(uri, *CURSOR)
        await asyncio.wait_for(_first_chunk(s, first_id), 60)
        second_id, second = s.inline(uri, CURSOR[0] - 1, 0)
        r1, r2 = await asyncio.wait_for(asyncio.gather(first, second), 120)
        assert not r1.items
        assert s.chunks_for(first_id)[-1]["text"] == ""
        assert r2.items and r2.items[0].insert_text


async def test_edit_cancels_request_in_flight(workspace: Path, tiny_args: list[str]) -> None:
    async with session(workspace, *tiny_args, config=LONG) as s:
        uri = s.open(workspace / "sample.py", SAMPLE)
        msg_id, fut = s.inline(uri, *CURSOR)
        await asyncio.wait_for(_first_chunk(s, msg_id), 60)
        s.change(uri, 2, CURSOR, CURSOR, "r")
        result = await asyncio.wait_for(fut, 30)
        assert not result.items
