"""The language server: state on a `LanguageServer` subclass, thin handlers from LSP types to the domain modules."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import JsonRPCNotification, LanguageServerProtocol
from pygls.uris import to_fs_path

from lsp_copilot import __version__
from lsp_copilot.context import ContextBuilder
from lsp_copilot.context.describe import describe_context
from lsp_copilot.documents import Document, DocumentStore, PositionError
from lsp_copilot.engine import CancelToken, Scheduler
from lsp_copilot.pipeline import LoadedModel, Pipeline, Suggestion, load_model
from lsp_copilot.prompts import render_prompt
from lsp_copilot.settings import build_settings

log = logging.getLogger("lsp_copilot")

CHUNK_METHOD = "lspCopilot/inlineCompletionChunk"
STATUS_METHOD = "lspCopilot/status"
CONTEXT_METHOD = "lspCopilot/context"
CONFIG_SECTION = "lspCopilot"


class CopilotProtocol(LanguageServerProtocol):
    """pygls' protocol, but `$/cancelRequest` for a completion stops its generation instead of killing the task,
    so the request still answers (with an empty result) and the worker is freed within one decode step."""

    def structure_message(self, data: Any) -> Any:
        """Parse one message; a request whose params do not fit its method gets an InvalidParams error at once
        (pygls would only log it, and the client would wait for an answer that never comes)."""
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if not (isinstance(data, dict) and "id" in data and "method" in data):
                raise
            message = f"invalid params for {data['method']}: {exc.message or type(exc).__name__}"
            log.warning("%s (request %s)", message, data["id"])
            self._send_response(data["id"], error=types.ResponseError(code=types.ErrorCodes.InvalidParams,
                                                                      message=message))
            return JsonRPCNotification(method="$/lspCopilot/invalidRequest", jsonrpc="2.0", params=None)

    def _handle_cancel_notification(self, msg_id: Any) -> None:
        server = self._server
        if isinstance(server, CopilotServer) and server.cancel_by_request_id(msg_id):
            return
        super()._handle_cancel_notification(msg_id)


class ClientLogHandler(logging.Handler):
    """Forwards lsp_copilot's log records to the client as `window/logMessage` (thread-safe)."""

    LEVELS: ClassVar[dict[int, types.MessageType]] = {
        logging.ERROR: types.MessageType.Error, logging.WARNING: types.MessageType.Warning,
        logging.INFO: types.MessageType.Info,
    }

    def __init__(self, server: LanguageServer, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(logging.INFO)
        self.server = server
        self.loop = loop

    def emit(self, record: logging.LogRecord) -> None:
        kind = self.LEVELS.get(record.levelno, types.MessageType.Log)
        params = types.LogMessageParams(type=kind, message=self.format(record))
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is shutting down
            self.loop.call_soon_threadsafe(self.server.window_log_message, params)


@dataclass
class InFlight:
    """A completion request being served."""

    request_id: Any
    uri: str
    cancel: CancelToken = field(default_factory=CancelToken)


class CopilotServer(LanguageServer):
    """All server state lives here: settings, documents, context index, the model and the requests in flight."""

    def __init__(self, cli_settings: dict[str, Any] | None = None) -> None:
        super().__init__("lsp-copilot", __version__, protocol_cls=CopilotProtocol,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.cli_settings = cli_settings or {}  # --model/--draft/--device/--config: they win over the client's
        self.settings, _ = build_settings(self.cli_settings)
        self.client_settings: dict[str, Any] = {}
        self.documents = DocumentStore()
        self.context_builder = ContextBuilder(self.settings.context, self._count_tokens)
        self.model: LoadedModel | None = None
        self.pipeline: Pipeline | None = None
        self.scheduler: Scheduler | None = None
        self.model_error: str | None = None
        self.model_ready = asyncio.Event()
        self.loading: asyncio.Task[None] | None = None
        self.streaming = False
        self.in_flight: dict[Any, InFlight] = {}  # request id -> request
        self.latest_by_uri: dict[str, Any] = {}  # uri -> request id of the newest completion request
        self.state = "loading"
        self.requests_served = 0
        self.initialization_options: dict[str, Any] = {}

    def report_server_error(self, error: Exception, source: Any) -> None:
        """A message that could not be handled (e.g. malformed JSON): answer with a JSON-RPC error, keep serving."""
        log.error("could not handle a message: %s", error)
        if isinstance(error, json.JSONDecodeError):
            err = types.ResponseError(code=types.ErrorCodes.ParseError, message=f"parse error: {error}")
            self.protocol._send_response(None, error=err)  # type: ignore[arg-type]

    # ---- model ---------------------------------------------------------------------------------------------------
    def _count_tokens(self, text: str) -> int:
        if self.model is None:
            return max(1, len(text) * 2 // 7)  # ~3.5 characters a token until the tokenizer is there
        return self.model.engine.count_tokens(text)

    def start_loading(self) -> None:
        """Load the configured model in a worker thread, reported with `$/progress` and `lspCopilot/status`."""
        if self.loading is not None and not self.loading.done():
            self.loading.cancel()
        self.model_ready.clear()
        self.loading = asyncio.get_running_loop().create_task(self._load())

    async def _load(self) -> None:
        settings = self.settings
        token = str(uuid.uuid4())
        progress = await self._progress_begin(token, "lsp-copilot: loading model")
        self.set_status("loading")
        started = time.perf_counter()
        try:
            old, self.model = self.model, None
            if self.scheduler is not None:
                self.scheduler.close()
            del old
            model = await asyncio.to_thread(load_model, settings)
        except Exception as exc:
            self.model_error = str(exc)
            log.error("model failed to load: %s", exc)
            self.show_message(f"lsp-copilot: the model failed to load: {exc}", types.MessageType.Error)
            self.set_status("error", str(exc))
            if progress:
                self.work_done_progress.end(token, types.WorkDoneProgressEnd(message="failed"))
            return
        self.model, self.model_error = model, None
        self.context_builder.count_tokens = model.engine.count_tokens
        self.scheduler = Scheduler(model.engine)
        self.pipeline = Pipeline(model, self.context_builder, settings.completion)
        log.info("model %s (template %s, draft %s) ready on %s in %.1f s", model.model_dir, model.template.family,
                 model.draft_dir, model.engine.device, time.perf_counter() - started)
        if progress:
            self.work_done_progress.end(token, types.WorkDoneProgressEnd(message="ready"))
        self.set_status("ready")
        self.model_ready.set()

    async def _progress_begin(self, token: str, title: str) -> bool:
        caps = self.client_capabilities.window
        if not (caps and caps.work_done_progress):
            return False
        try:
            await asyncio.wait_for(self.work_done_progress.create_async(token), timeout=5)
        except (asyncio.TimeoutError, JsonRpcException):
            return False
        self.work_done_progress.begin(token, types.WorkDoneProgressBegin(title=title, cancellable=False))
        return True

    async def wait_for_model(self) -> bool:
        """Wait (bounded by completion.waitForModelMs) for the model; False if it is not there in time."""
        if self.model_ready.is_set():
            return True
        if self.model_error is not None:
            return False
        try:
            await asyncio.wait_for(self.model_ready.wait(), self.settings.completion.wait_for_model_ms / 1000)
        except asyncio.TimeoutError:
            return False
        return True

    # ---- settings ------------------------------------------------------------------------------------------------
    def apply_settings(self, *client_layers: Any) -> None:
        """Rebuild the settings from the client's layers and the command line; report problems; reload if needed."""
        if client_layers:
            self.client_settings = {}
            for layer in client_layers:
                if isinstance(layer, dict):
                    _merge(self.client_settings, layer)
        new, problems = build_settings(self.client_settings, self.cli_settings)
        for problem in problems:
            self.show_message(f"lsp-copilot: {problem}", types.MessageType.Warning)
        old = self.settings
        self.settings = new
        self.context_builder.settings = new.context
        if self.pipeline is not None:
            self.pipeline.settings = new.completion
        if (new.model, new.prompts) != (old.model, old.prompts) and self.loading is not None:
            log.info("model settings changed: reloading")
            self.start_loading()

    async def pull_configuration(self) -> None:
        """`workspace/configuration` for our section, when the client supports it."""
        ws = self.client_capabilities.workspace
        if not (ws and ws.configuration):
            return
        try:
            result = await asyncio.wait_for(self.workspace_configuration_async(types.ConfigurationParams(
                items=[types.ConfigurationItem(section=CONFIG_SECTION)])), timeout=5)
        except (asyncio.TimeoutError, JsonRpcException) as exc:
            log.warning("workspace/configuration failed: %s", exc)
            return
        if result and isinstance(result[0], dict):
            self.apply_settings(self.initialization_options, result[0])

    # ---- messages ------------------------------------------------------------------------------------------------
    def show_message(self, message: str, kind: types.MessageType) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def set_status(self, state: str, message: str = "") -> None:
        self.state = state
        self.protocol.notify(STATUS_METHOD, self.status())

    def status(self) -> dict[str, Any]:
        model = self.model
        return {
            "state": self.state if self.settings.enable else "disabled",
            "model": model.model_dir.name if model and model.model_dir.name != "target" else "embedded",
            "modelPath": str(model.model_dir) if model else self.settings.model.path,
            "draft": str(model.draft_dir) if model and model.draft_dir else None,
            "template": model.template.family if model else None,
            "device": str(model.engine.device) if model else None,
            "message": self.model_error or "",
            "requests": self.requests_served,
            "engine": dataclasses.asdict(model.engine.stats) if model else {},
            "cacheHitRate": model.engine.cache_hit_rate() if model else 0.0,
        }

    # ---- requests in flight --------------------------------------------------------------------------------------
    def begin_request(self, uri: str) -> InFlight:
        """Register a completion request; a newer request for the same document supersedes the older one."""
        request_id = self.protocol.msg_id
        previous = self.latest_by_uri.get(uri)
        if previous is not None and previous in self.in_flight:
            self.in_flight[previous].cancel.cancel()
        flight = InFlight(request_id, uri)
        self.in_flight[request_id] = flight
        self.latest_by_uri[uri] = request_id
        return flight

    def end_request(self, flight: InFlight) -> None:
        self.in_flight.pop(flight.request_id, None)
        if self.latest_by_uri.get(flight.uri) == flight.request_id:
            del self.latest_by_uri[flight.uri]

    def cancel_by_request_id(self, request_id: Any) -> bool:
        flight = self.in_flight.get(request_id)
        if flight is None:
            return False
        flight.cancel.cancel()
        return True

    def send_chunk(self, flight: InFlight, doc: Document, position: types.Position, text: str, done: bool) -> None:
        if self.streaming:
            self.protocol.notify(CHUNK_METHOD, {
                "requestId": flight.request_id, "uri": doc.uri, "version": doc.version,
                "position": {"line": position.line, "character": position.character}, "text": text, "done": done,
            })

    def describe_context(self, uri: str, position: Any) -> dict[str, Any]:
        doc = self.documents.get(uri)
        if doc is None:
            raise JsonRpcInvalidParams(f"unknown document {uri}: send textDocument/didOpen first")
        try:
            offset = doc.offset_at(int(_field(position, "line")), int(_field(position, "character")))
        except (PositionError, TypeError, ValueError) as exc:
            raise JsonRpcInvalidParams(f"position out of range in {uri}: {exc}") from exc
        ctx = self.context_builder.build(doc, offset, self.documents)
        described = describe_context(ctx)
        if self.model is not None:
            described["template"] = self.model.template.family
            described["prompt"] = render_prompt(self.model.template, ctx)
        return described

    # ---- the completion itself -----------------------------------------------------------------------------------
    async def suggest(self, uri: str, position: types.Position) -> tuple[Suggestion, Document, int]:
        """Serve one completion request: the suggestion for `position` in `uri` (empty when there is none)."""
        doc = self.documents.get(uri)
        if doc is None:
            raise JsonRpcInvalidParams(f"unknown document {uri}: send textDocument/didOpen first")
        try:
            offset = doc.offset_at(position.line, position.character)
        except PositionError as exc:
            raise JsonRpcInvalidParams(f"position out of range in {uri}: {exc}") from exc
        empty = Suggestion("", "none")
        if not self.settings.enable or doc.language_id in self.settings.disabled_languages or "\x00" in doc.text:
            return empty, doc, offset
        flight = self.begin_request(uri)
        try:
            return await self._generate(flight, doc, offset, position), doc, offset
        finally:
            self.end_request(flight)

    async def _generate(self, flight: InFlight, doc: Document, offset: int, position: types.Position) -> Suggestion:
        if not await self.wait_for_model() or flight.cancel.cancelled:
            if flight.cancel.cancelled:
                self.send_chunk(flight, doc, position, "", True)
            return Suggestion("", "not-ready" if not self.model_ready.is_set() else "cancelled")
        assert self.pipeline is not None and self.scheduler is not None
        pipeline = self.pipeline
        version = doc.version
        cached = pipeline.cache.lookup(doc.uri, doc.text, offset)
        if cached is not None and cached[1]:  # typed through a complete suggestion: show the rest, no generation
            self.send_chunk(flight, doc, position, cached[0], True)
            return Suggestion(cached[0], "cache", from_cache=True)
        prepared = pipeline.prepare(doc, offset, self.documents, expected=cached[0] if cached else None)
        run = pipeline.start(prepared)
        interval = self.settings.completion.stream_interval_ms / 1000.0
        last_sent = 0.0
        self.set_status("generating")
        try:
            async for shown in run.aiterate(self.scheduler, flight.cancel):
                now = time.monotonic()
                if now - last_sent >= interval and doc.version == version:
                    self.send_chunk(flight, doc, position, shown, False)
                    last_sent = now
        finally:
            self.set_status("ready")
        superseded = flight.cancel.cancelled  # by $/cancelRequest, a newer request or an edit of the document
        suggestion = run.suggestion(cancelled=superseded)
        self.send_chunk(flight, doc, position, suggestion.text, True)
        self.requests_served += 1
        if not superseded:
            pipeline.cache.remember(doc.uri, doc.text, offset, suggestion)
        log.info("completion %s: %d tokens, %s, %r", flight.request_id, suggestion.tokens, suggestion.stop_reason,
                 suggestion.text[:80])
        return suggestion


def _merge(into: dict[str, Any], layer: dict[str, Any]) -> None:
    """Deep-merge `layer` into `into` (later layers win)."""
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def create_server(cli_settings: dict[str, Any] | None = None) -> CopilotServer:
    """The server with every handler registered."""
    server = CopilotServer(cli_settings)

    @server.feature(types.INITIALIZE)
    def initialize(ls: CopilotServer, params: types.InitializeParams) -> None:
        options = params.initialization_options if isinstance(params.initialization_options, dict) else {}
        experimental = params.capabilities.experimental
        opted_in = isinstance(experimental, dict) and bool(experimental.get("lspCopilot", {}).get("streaming"))
        ls.streaming = bool(options.pop("streaming", False)) or opted_in
        ls.initialization_options = options
        ls.apply_settings(options)
        roots = [Path(to_fs_path(f.uri) or "") for f in params.workspace_folders or []]
        if not roots and params.root_uri:
            roots = [Path(to_fs_path(params.root_uri) or "")]
        ls.context_builder.set_workspace([r for r in roots if str(r)])

    @server.feature(types.INITIALIZED)
    async def initialized(ls: CopilotServer, params: types.InitializedParams) -> None:
        handler = ClientLogHandler(ls, asyncio.get_running_loop())
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
        await ls.pull_configuration()
        ls.start_loading()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(ls: CopilotServer, params: types.DidChangeConfigurationParams) -> None:
        settings = params.settings
        if isinstance(settings, dict) and isinstance(settings.get(CONFIG_SECTION), dict):
            ls.apply_settings(ls.initialization_options, settings[CONFIG_SECTION])
        else:
            await ls.pull_configuration()

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(ls: CopilotServer, params: types.DidChangeWatchedFilesParams) -> None:
        for change in params.changes:
            path = to_fs_path(change.uri)
            if not path:
                continue
            if change.type == types.FileChangeType.Deleted:
                ls.context_builder.update_file(Path(path), None)
            else:  # the index reads the file itself, and only inside the workspace roots
                ls.context_builder.refresh_file(Path(path))

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: CopilotServer, params: types.DidOpenTextDocumentParams) -> None:
        d = params.text_document
        ls.documents.open(d.uri, d.language_id, d.version, d.text)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: CopilotServer, params: types.DidChangeTextDocumentParams) -> None:
        doc = ls.documents.get(params.text_document.uri)
        if doc is None:
            log.warning("didChange for unknown document %s ignored", params.text_document.uri)
            return
        for change in params.content_changes:
            rng = getattr(change, "range", None)
            span = (rng.start.line, rng.start.character, rng.end.line, rng.end.character) if rng else None
            try:
                doc.apply_change(span, change.text, params.text_document.version)
            except PositionError as exc:
                log.error("didChange out of range in %s: %s (document kept at version %d)", doc.uri, exc, doc.version)
                ls.show_message(f"lsp-copilot: bad edit for {doc.uri}: {exc}", types.MessageType.Warning)
                return
        for flight in list(ls.in_flight.values()):  # the cursor moved on: older suggestions are stale
            if flight.uri == doc.uri:
                flight.cancel.cancel()

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: CopilotServer, params: types.DidSaveTextDocumentParams) -> None:
        doc = ls.documents.get(params.text_document.uri)
        if doc is not None and doc.path is not None:
            ls.context_builder.update_file(doc.path, doc.text)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: CopilotServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.documents.close(params.text_document.uri)
        if ls.pipeline is not None:
            ls.pipeline.cache.forget(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(ls: CopilotServer, params: types.InlineCompletionParams) -> types.InlineCompletionList:
        suggestion, _, _ = await ls.suggest(params.text_document.uri, params.position)
        if not suggestion.text:
            return types.InlineCompletionList(items=[])
        pos = params.position
        return types.InlineCompletionList(items=[types.InlineCompletionItem(
            insert_text=suggestion.text, range=types.Range(start=pos, end=pos))])

    @server.feature(types.TEXT_DOCUMENT_COMPLETION,
                    types.CompletionOptions(trigger_characters=[".", "(", " "], resolve_provider=False))
    async def completion(ls: CopilotServer, params: types.CompletionParams) -> types.CompletionList:
        suggestion, doc, offset = await ls.suggest(params.text_document.uri, params.position)
        if not suggestion.text:
            return types.CompletionList(is_incomplete=True, items=[])
        pos = params.position
        label = suggestion.text.strip().splitlines()[0] if suggestion.text.strip() else suggestion.text
        item = types.CompletionItem(
            label=label[:80], kind=types.CompletionItemKind.Text, detail="lsp-copilot",
            documentation=types.MarkupContent(kind=types.MarkupKind.Markdown,
                                              value=f"```{doc.language_id}\n{suggestion.text}\n```"),
            insert_text_format=types.InsertTextFormat.PlainText,
            text_edit=types.TextEdit(range=types.Range(start=pos, end=pos), new_text=suggestion.text),
            filter_text=_line_prefix(doc.text, offset) + suggestion.text, sort_text="0",
        )
        return types.CompletionList(is_incomplete=True, items=[item])

    @server.feature(STATUS_METHOD)
    def status(ls: CopilotServer, params: Any) -> dict[str, Any]:
        return ls.status()

    @server.feature(CONTEXT_METHOD)
    def context(ls: CopilotServer, params: Any) -> dict[str, Any]:
        """What the model would see at a position: the parts, their sources and token counts, and the prompt."""
        return ls.describe_context(_field(_field(params, "textDocument"), "uri"), _field(params, "position"))

    return server


def _field(obj: Any, name: str) -> Any:
    """A field of a params object that pygls may hand over as a dict or as a namedtuple-like object."""
    value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    if value is None:
        raise JsonRpcInvalidParams(f"missing parameter {name!r}")
    return value


def _line_prefix(text: str, offset: int) -> str:
    start = text.rfind("\n", 0, offset) + 1
    return text[start:offset].lstrip()


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=str)
