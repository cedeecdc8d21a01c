"""$/cancelRequest and supersession: generation stops between steps and the stale request answers empty."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.e2e.conftest import CURSOR, SAMPLE
from tests.e2e.lsp_session import Session, session

MAX = 400
# The tiny random model never says end-of-text, so an uncancelled request generates exactly MAX tokens.
LONG = {"completion": {"maxTokens": MAX, "multiline": "always", "timeLimitMs": 60000, "streamIntervalMs": 0}}


async def _generation_started(s: Session, seen: int) -> None:
    """Wait for a `generating` status notification after the first `seen` ones (random text may show nothing)."""
    while not any(st["state"] == "generating" for st in s.statuses[seen:]):
        await asyncio.sleep(0.002)


async def test_cancel_request_stops_generation(workspace: Path, tiny_args: list[str]) -> None:
    async with session(workspace, *tiny_args, config=LONG) as s:
        uri = s.open(workspace / "sample.py", SAMPLE)
        seen = len(s.statuses)
        msg_id, fut = s.inline(uri, *CURSOR)
        await asyncio.wait_for(_generation_started(s, seen), 60)
        s.cancel(msg_id)
        result = await asyncio.wait_for(fut, 30)
        assert not result.items
        chunks = s.chunks_for(msg_id)
        assert chunks[-1]["text"] == "" and chunks[-1]["done"] is True
        cancelled_tokens = await s.generated_tokens()
        assert cancelled_tokens < MAX // 2  # (mid-step cancellation itself is covered by tests/unit/test_engine.py)
        # The same request left alone runs to maxTokens: the cancellation above is what stopped it.
        s.change(uri, 2, CURSOR, CURSOR, " ")  # a new text, so nothing is served from the suggestion cache
        _, fut2 = s.inline(uri, CURSOR[0], CURSOR[1] + 1)
        await asyncio.wait_for(fut2, 300)
        assert await s.generated_tokens() - cancelled_tokens == MAX


async def test_newer_request_supersedes_older(workspace: Path, tiny_args: list[str]) -> None:
    async with session(workspace, *tiny_args, config=LONG) as s:
        uri = s.open(workspace / "sample.py", SAMPLE)
        seen = len(s.statuses)
        first_id, first = s.inline(uri, *CURSOR)
        await asyncio.wait_for(_generation_started(s, seen), 60)
        second_id, second = s.inline(uri, CURSOR[0] - 1, 0)
        r1, _ = await asyncio.wait_for(asyncio.gather(first, second), 300)
        assert not r1.items
        assert s.chunks_for(first_id)[-1] == {**s.chunks_for(first_id)[-1], "text": "", "done": True}
        assert s.chunks_for(second_id)[-1]["done"] is True
        total = await s.generated_tokens()
        assert MAX <= total < MAX + MAX // 2  # the second ran in full, the first was cut short (maybe at once)


async def test_edit_cancels_request_in_flight(workspace: Path, tiny_args: list[str]) -> None:
    async with session(workspace, *tiny_args, config=LONG) as s:
        uri = s.open(workspace / "sample.py", SAMPLE)
        seen = len(s.statuses)
        _, fut = s.inline(uri, *CURSOR)
        await asyncio.wait_for(_generation_started(s, seen), 60)
        s.change(uri, 2, CURSOR, CURSOR, "r")
        result = await asyncio.wait_for(fut, 30)
        assert not result.items
        assert await s.generated_tokens() < MAX // 2
