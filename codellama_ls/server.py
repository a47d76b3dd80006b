"""The LSP feature table: each handler translates protocol types and delegates.

Document sync is handled by our own store (``documents.py``) instead of pygls' workspace,
whose line splitting and position clamping are not exact (see that module).
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import lsp_method

from codellama_ls import __version__, redact, stdio
from codellama_ls.completion import Answer, CompletionService, Notifier
from codellama_ls.config import Settings, extract_section
from codellama_ls.documents import Document, PositionError
from codellama_ls.engines.base import EngineError
from codellama_ls.jsonrpc import UNREADABLE, HardenedProtocol, describe_error, strict_converter
from codellama_ls.tokens import TokenizerNotFound

log = logging.getLogger(__name__)

PROMPT_METHOD = "codellama/prompt"
STATUS_METHOD = "codellama/status"
RESTART_COMMAND = "codellama.restartEngine"
TOGGLE_COMMAND = "codellama.toggle"


class Protocol(HardenedProtocol):
    """Routes document sync to the completion service's own document store."""

    _server: CodeLlamaServer

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams) -> Any:
        self._server.service.documents.open(params.text_document)
        yield from ()

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams) -> Any:
        self._server.service.documents.change(params, self._server.service.encoding)
        yield from ()

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams) -> Any:
        self._server.service.documents.close(params.text_document.uri)
        yield from ()


class CodeLlamaServer(LanguageServer):
    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__("codellama-ls", __version__, protocol_cls=Protocol, converter_factory=strict_converter)
        self.service = CompletionService(settings, Notifier(self._show, self._progress))

    def report_server_error(self, error: Exception, source: Any) -> None:
        if source is JsonRpcException and isinstance(error, UNREADABLE):
            self.protocol.answer_unreadable(error)  # the body was not JSON: answer ParseError
            return
        super().report_server_error(error, source)

    def start_io(self, stdin: Any = None, stdout: Any = None) -> None:
        """Serve stdio without a thread hop per message (see ``stdio.py``)."""
        stdio.serve(self, stdin, stdout)

    def _show(self, message: str, kind: types.MessageType) -> None:
        message = redact.mask(message)
        log.log(logging.ERROR if kind == types.MessageType.Error else logging.WARNING, "%s", message)
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    async def _progress(self) -> Any:
        """A thread-safe reporter of load progress, when the client supports work-done progress.

        The token is created (and acknowledged by the client) before the first notification,
        as the specification requires; a client that does not answer just gets no progress.
        """
        caps = self.client_capabilities.window
        if not (caps and caps.work_done_progress):
            return None
        token = f"codellama-ls/load/{uuid.uuid4()}"
        progress = self.work_done_progress
        try:
            await asyncio.wait_for(progress.create_async(token), 5)
        except Exception:  # no answer or an error: load without progress
            log.info("client did not accept a progress token; loading without progress")
            return None
        loop = asyncio.get_running_loop()
        begun = False

        def send(message: str, pct: int | None) -> None:
            nonlocal begun
            if not begun:
                begun = True
                begin = types.WorkDoneProgressBegin(title="codellama-ls", message=message, percentage=pct)
                progress.begin(token, begin)
            if pct is not None and pct >= 100:
                progress.end(token, types.WorkDoneProgressEnd(message=message))
            else:
                progress.report(token, types.WorkDoneProgressReport(message=message, percentage=pct))

        return lambda message, pct: loop.call_soon_threadsafe(send, message, pct)


def _invalid(exc: Exception) -> JsonRpcInvalidParams:
    return JsonRpcInvalidParams(str(exc).strip("'\""))


async def _answer(
    ls: CodeLlamaServer, document: types.TextDocumentIdentifier, position: types.Position
) -> Answer | None:
    try:
        return await ls.service.suggest(document.uri, position)
    except (KeyError, PositionError) as exc:
        raise _invalid(exc) from exc


def _range(ls: CodeLlamaServer, uri: str, answer: Answer) -> types.Range:
    doc = ls.service.documents.get(uri)
    enc = ls.service.encoding
    return types.Range(
        start=doc.position(answer.line, answer.start, enc), end=doc.position(answer.line, answer.end, enc)
    )


_WORD_BEFORE = re.compile(r"\w+$")


def completion_item(doc: Document, answer: Answer, encoding: str) -> types.CompletionItem:
    """The suggestion as a completion item whose edit starts at the word before the cursor.

    Clients filter completion items by the text between the edit's start and the cursor;
    eglot and Helix by the symbol at point. Starting the edit at that word and repeating the
    word in ``newText`` (and so in the label) lets the item through every such filter and
    still inserts exactly the suggestion. The label is the first non-blank line.
    """
    line = doc.lines[answer.line] if answer.line < len(doc.lines) else ""
    match = _WORD_BEFORE.search(line[: answer.start])
    word = match.group(0) if match else ""
    new_text = word + answer.text
    label = next((part.strip() for part in new_text.splitlines() if part.strip()), new_text)
    edit_range = types.Range(
        start=doc.position(answer.line, answer.start - len(word), encoding),
        end=doc.position(answer.line, answer.end, encoding),
    )
    return types.CompletionItem(
        label=label,
        kind=types.CompletionItemKind.Text,
        detail="Code Llama",
        documentation=types.MarkupContent(kind=types.MarkupKind.PlainText, value=answer.text),
        insert_text_format=types.InsertTextFormat.PlainText,
        text_edit=types.TextEdit(range=edit_range, new_text=new_text),
        sort_text="0",
        preselect=True,
    )


def create_server(settings: Settings | None = None) -> CodeLlamaServer:
    server = CodeLlamaServer(settings)

    @server.feature(types.INITIALIZE)
    def initialize(ls: CodeLlamaServer, params: types.InitializeParams) -> None:
        ls.service.encoding = ls.workspace.position_encoding or types.PositionEncodingKind.Utf16
        ls.service.configure(extract_section(params.initialization_options or {}))

    @server.feature(types.INITIALIZED)
    def initialized(ls: CodeLlamaServer, params: types.InitializedParams) -> None:
        ls.service.start_loading()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(ls: CodeLlamaServer, params: types.DidChangeConfigurationParams) -> None:
        if ls.service.configure(extract_section(params.settings)):
            ls.service.start_loading()

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: CodeLlamaServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList | None:
        answer = await _answer(ls, params.text_document, params.position)
        if answer is None:
            return types.InlineCompletionList(items=[])
        item = types.InlineCompletionItem(insert_text=answer.text, range=_range(ls, params.text_document.uri, answer))
        return types.InlineCompletionList(items=[item])

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "(", " "]))
    async def completion(ls: CodeLlamaServer, params: types.CompletionParams) -> types.CompletionList:
        answer = await _answer(ls, params.text_document, params.position)
        if answer is None:
            return types.CompletionList(is_incomplete=True, items=[])
        doc = ls.service.documents.get(params.text_document.uri)
        return types.CompletionList(is_incomplete=True, items=[completion_item(doc, answer, ls.service.encoding)])

    @server.feature(PROMPT_METHOD)
    def prompt(ls: CodeLlamaServer, params: Any) -> dict[str, Any]:
        try:
            pos = ls.protocol._converter.structure(_as_dict(params), types.TextDocumentPositionParams)
        except Exception as exc:
            reason = describe_error(exc)
            raise JsonRpcInvalidParams(f"{PROMPT_METHOD} needs textDocument and position: {reason}") from exc
        try:
            _, cursor = ls.service.cursor(pos.text_document.uri, pos.position)
            return ls.service.build(cursor).to_json()
        except (KeyError, PositionError) as exc:
            raise _invalid(exc) from exc
        except (TokenizerNotFound, EngineError) as exc:  # no tokenizer to be had right now
            raise JsonRpcInvalidParams(str(exc)) from exc

    @server.feature(STATUS_METHOD)
    def status(ls: CodeLlamaServer, params: Any) -> dict[str, Any]:
        # Futures pygls keeps for $/cancelRequest: 0 when idle (the soak bench watches it).
        return {**ls.service.status(), "pendingRequests": len(ls.protocol._request_futures)}

    @server.command(RESTART_COMMAND)
    async def restart_engine(ls: CodeLlamaServer, *args: Any) -> None:
        await ls.service.load_engine()

    @server.command(TOGGLE_COMMAND)
    def toggle(ls: CodeLlamaServer, *args: Any) -> bool:
        ls.service.configure({"enable": not ls.service.settings.enable})
        return ls.service.settings.enable

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: CodeLlamaServer, *args: Any) -> None:
        ls.service.shutdown()

    return server


def _as_dict(params: Any) -> Any:
    """pygls hands params of custom methods over as namedtuple-like objects; undo that."""
    if isinstance(params, dict) or params is None:
        return params
    if hasattr(params, "_asdict"):
        return {k: _as_dict(v) for k, v in params._asdict().items()}
    if isinstance(params, (list, tuple)):
        return [_as_dict(v) for v in params]
    return params
