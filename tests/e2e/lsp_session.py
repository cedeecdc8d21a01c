"""An LSP client session against the real server process, for the end-to-end tests."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

CHUNK = "lspCopilot/inlineCompletionChunk"
STATUS = "lspCopilot/status"


class Session:
    """A pygls client talking to `python -m lsp_copilot serve`, recording what the server sends on its own."""

    def __init__(self, client: LanguageClient, config: dict[str, Any]) -> None:
        self.client = client
        self.config = config  # what we answer to workspace/configuration
        self.chunks: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self.messages: list[types.ShowMessageParams] = []
        self.logs: list[types.LogMessageParams] = []
        self.progress: list[Any] = []
        self.config_requests = 0
        self.ready = asyncio.Event()
        self._next_id = 1000

    def _install(self) -> None:
        c = self.client

        @c.feature(CHUNK)
        def on_chunk(params: Any) -> None:
            self.chunks.append(_plain(params))

        @c.feature(STATUS)
        def on_status(params: Any) -> None:
            status = _plain(params)
            self.statuses.append(status)
            if status.get("state") == "ready":
                self.ready.set()

        @c.feature(types.WINDOW_SHOW_MESSAGE)
        def on_show(params: types.ShowMessageParams) -> None:
            self.messages.append(params)

        @c.feature(types.WINDOW_LOG_MESSAGE)
        def on_log(params: types.LogMessageParams) -> None:
            self.logs.append(params)

        @c.feature(types.WORKSPACE_CONFIGURATION)
        def on_config(params: types.ConfigurationParams) -> list[Any]:
            self.config_requests += 1
            return [self.config for _ in params.items]

        @c.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
        def on_create(params: types.WorkDoneProgressCreateParams) -> None:
            self.progress.append(("create", params.token))

        @c.feature(types.PROGRESS)
        def on_progress(params: types.ProgressParams) -> None:
            self.progress.append(("progress", _plain(params.value)))

    async def initialize(self, root: Path, init_options: dict[str, Any] | None = None,
                         experimental: dict[str, Any] | None = None) -> types.InitializeResult:
        caps = types.ClientCapabilities(
            workspace=types.WorkspaceClientCapabilities(configuration=True, did_change_configuration=(
                types.DidChangeConfigurationClientCapabilities(dynamic_registration=False))),
            window=types.WindowClientCapabilities(work_done_progress=True),
            text_document=types.TextDocumentClientCapabilities(
                inline_completion=types.InlineCompletionClientCapabilities()),
            experimental=experimental,
        )
        result = await self.client.initialize_async(types.InitializeParams(
            capabilities=caps, root_uri=root.as_uri(), initialization_options=init_options,
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
        ))
        self.client.initialized(types.InitializedParams())
        self.capabilities = result.capabilities
        return result

    async def wait_ready(self, timeout: float = 120.0) -> None:
        await asyncio.wait_for(self.ready.wait(), timeout)

    def open(self, path: Path, text: str, language_id: str = "python", version: int = 1) -> str:
        uri = path.as_uri()
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id=language_id, version=version, text=text)))
        return uri

    def change(self, uri: str, version: int, start: tuple[int, int], end: tuple[int, int], text: str) -> None:
        rng = types.Range(start=types.Position(*start), end=types.Position(*end))
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(range=rng, text=text)]))

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def request(self, method: str, params: Any, msg_id: int | None = None) -> tuple[int, asyncio.Future[Any]]:
        """Send a request with a known id (so it can be cancelled); returns (id, future of the result)."""
        msg_id = msg_id or self.new_id()
        fut = self.client.protocol.send_request(method, params, msg_id=msg_id)
        return msg_id, asyncio.wrap_future(fut)

    def raw_request(self, method: str, params: Any) -> tuple[int, asyncio.Future[Any]]:
        """Send params as raw JSON, bypassing the client's type checks (to send what a broken client would)."""
        msg_id = self.new_id()
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.client.protocol._request_futures[msg_id] = fut
        self.client.protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return msg_id, asyncio.wrap_future(fut)

    def inline(self, uri: str, line: int, character: int) -> tuple[int, asyncio.Future[Any]]:
        return self.request(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line, character),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic)))

    def completion(self, uri: str, line: int, character: int) -> tuple[int, asyncio.Future[Any]]:
        return self.request(types.TEXT_DOCUMENT_COMPLETION, types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line, character)))

    def cancel(self, msg_id: int) -> None:
        self.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))

    async def generated_tokens(self) -> int:
        """Tokens the server's engine has generated so far (from the lspCopilot/status request)."""
        _, fut = self.request("lspCopilot/status", {})
        status = _plain(await asyncio.wait_for(fut, 30))
        return int(status["engine"]["generated_tokens"])

    def chunks_for(self, msg_id: int) -> list[dict[str, Any]]:
        return [c for c in self.chunks if c["requestId"] == msg_id]


def _plain(obj: Any) -> Any:
    """pygls hands notifications of unknown methods over as namedtuple-like objects: turn them into dicts."""
    if hasattr(obj, "_asdict"):
        return {k: _plain(v) for k, v in obj._asdict().items()}
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    if hasattr(obj, "__attrs_attrs__"):
        from lsprotocol import converters

        return converters.get_converter().unstructure(obj)
    return obj


def server_command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "lsp_copilot", "serve", *extra]


def server_env() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.setdefault("OMP_NUM_THREADS", "1")  # tiny models gain nothing from a second thread; CI shares the CPU
    return env


@asynccontextmanager
async def session(root: Path, *server_args: str, config: dict[str, Any] | None = None,
                  init_options: dict[str, Any] | None = None, tcp: bool = False,
                  wait: bool = True, experimental: dict[str, Any] | None = None) -> AsyncIterator[Session]:
    """Start the real server (stdio, or TCP on a free loopback port), initialize it, and shut it down after."""
    client = LanguageClient("lsp-copilot-tests", "1")
    s = Session(client, config or {})
    s._install()
    proc: subprocess.Popen[bytes] | None = None
    if tcp:
        port = _free_port()
        proc = subprocess.Popen(server_command("--tcp", f"127.0.0.1:{port}", *server_args), env=server_env(),
                                stderr=subprocess.DEVNULL)
        await _connect_tcp(client, port)
    else:
        await client.start_io(*server_command(*server_args), env=server_env())
    try:
        await s.initialize(root, {"streaming": True, **(init_options or {})}, experimental)
        if wait:
            await s.wait_ready()
        yield s
    finally:
        with contextlib.suppress(Exception):  # the server may already be gone in a failing test
            await asyncio.wait_for(client.shutdown_async(None), 10)
        with contextlib.suppress(Exception):
            client.exit(None)
        server = client._server  # the subprocess pygls started (stdio), if any
        try:
            await asyncio.wait_for(client.stop(), 15)
        except asyncio.TimeoutError:
            if server is not None and server.returncode is None:
                server.kill()
            raise AssertionError("the server did not exit after shutdown/exit") from None
        if proc is not None:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _connect_tcp(client: LanguageClient, port: int, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await client.start_tcp("127.0.0.1", port)
            return
        except OSError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.2)
