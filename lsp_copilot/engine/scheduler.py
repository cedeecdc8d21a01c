"""One worker thread per engine (device): requests queue up, stale ones are dropped, text streams back to asyncio."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from lsp_copilot.engine.engine import Engine
from lsp_copilot.engine.types import CancelToken, GenerationRequest, GenerationResult

_DONE = object()


@dataclass
class _Job:
    req: GenerationRequest
    cancel: CancelToken
    loop: asyncio.AbstractEventLoop
    out: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)


class Scheduler:
    """Serialises generation on the engine's device; the async side never blocks on the model.

    A request cancelled before the worker reaches it is dropped without touching the model (stop reason
    "dropped"); cancelling mid-way stops within one decode step. `dropped` counts the former.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dropped = 0
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="lsp-copilot-engine", daemon=True)
        self._worker.start()

    async def stream(self, req: GenerationRequest, cancel: CancelToken) -> AsyncIterator[str]:
        """Text deltas of `req`; the result lands on `cancel.result`. Leaving the loop early cancels the request."""
        job = _Job(req, cancel, asyncio.get_running_loop())
        self._jobs.put(job)
        finished = False
        try:
            while True:
                item = await job.out.get()
                if item is _DONE:
                    finished = True
                    return
                if isinstance(item, BaseException):
                    finished = True
                    raise item
                yield item
        finally:
            if not finished:  # the consumer walked away (or was cancelled): free the worker
                cancel.cancel()

    def close(self) -> None:
        """Stop the worker after the queued requests (they are dropped if already cancelled)."""
        self._jobs.put(None)
        self._worker.join(timeout=5)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if job.cancel.cancelled:
                self.dropped += 1
                job.cancel.result = GenerationResult("", 0, "dropped", 0, 0.0)
                self._send(job, _DONE)
                continue
            try:
                for delta in self.engine.generate(job.req, job.cancel):
                    self._send(job, delta)
                job.cancel.result = self.engine.last_result
                self._send(job, _DONE)
            except Exception as exc:  # handed to the awaiting coroutine, which re-raises it
                self._send(job, exc)

    @staticmethod
    def _send(job: _Job, item: object) -> None:
        with contextlib.suppress(RuntimeError):  # a closed event loop: nobody is listening
            job.loop.call_soon_threadsafe(job.out.put_nowait, item)
