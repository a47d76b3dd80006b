"""Every use of pygls internals, in one place.

pygls 2.1 has no public API for what the server needs: answering malformed messages
(``structure_message``/``handle_message``), forgetting the futures of notifications
(``_execute_handler``, ``_request_futures``), error answers without tracebacks
(``_send_response``), document sync without pygls' workspace (the builtin ``didOpen``/
``didChange``/``didClose`` handlers), the shutdown flag (``_shutdown``), the stop event of
a custom stdio loop (``_stop_event``) and the strict converter (``_converter``). Other modules
call the functions here; ``tests/test_pygls_adapter.py`` fails loudly, naming the member,
when a pygls upgrade removes or changes one of them (``REQUIRED``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Generator
from typing import Any, TypeVar

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol, lsp_method

from codellama_ls import redact
from codellama_ls.lsp.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    NOT_INITIALIZED,
    PARSE_ERROR,
    Rejected,
    describe_error,
    envelope_problem,
    valid_id,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# (class, member) pairs this module relies on; the adapter test checks each one exists.
REQUIRED: list[tuple[type, str]] = [
    (LanguageServerProtocol, "structure_message"),
    (LanguageServerProtocol, "handle_message"),
    (LanguageServerProtocol, "_execute_handler"),
    (LanguageServerProtocol, "_send_response"),
    (LanguageServerProtocol, "_send_data"),
    (LanguageServerProtocol, "lsp_text_document__did_open"),
    (LanguageServerProtocol, "lsp_text_document__did_change"),
    (LanguageServerProtocol, "lsp_text_document__did_close"),
]
# Instance attributes (set in __init__), checked on a live server by the adapter test.
REQUIRED_INSTANCE: list[tuple[str, str]] = [
    ("protocol", "_request_futures"),
    ("protocol", "_shutdown"),
    ("protocol", "_converter"),
    ("protocol", "fm"),
    ("server", "_stop_event"),
]


class HardenedProtocol(LanguageServerProtocol):
    """LanguageServerProtocol that answers malformed and out-of-order messages correctly,
    never sends a traceback, and leaves document sync to the server's own store."""

    _initialize_seen = False
    _initialized_seen = False

    # -- reading messages ------------------------------------------------------------------
    def structure_message(self, data: dict[str, Any]) -> Any:
        if "jsonrpc" not in data:
            return data  # a nested object (or an invalid message: handle_message rejects it)
        problem = envelope_problem(data)
        if problem:
            return Rejected(data, INVALID_REQUEST, problem)
        if "method" in data:
            data.setdefault("params", None)  # JSON-RPC lets a request omit params
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            method = data.get("method", "the response")
            return Rejected(data, INVALID_PARAMS, f"invalid params for {method}: {describe_error(exc)}")

    def handle_message(self, message: Any) -> None:
        if isinstance(message, Rejected):
            self._reject(message.data, message.code, message.reason)
            return
        if not hasattr(message, "jsonrpc"):  # a bare value, a batch, an object without "jsonrpc"
            self._reject(message, INVALID_REQUEST, "not a JSON-RPC 2.0 message object")
            return
        method = getattr(message, "method", None)
        is_request = method is not None and hasattr(message, "id")
        if method == types.INITIALIZE:
            if self._initialize_seen:
                self._answer_error(message.id, INVALID_REQUEST, "initialize may be sent only once")
                return
            self._initialize_seen = True
        elif method == types.INITIALIZED and self._initialized_seen:
            log.warning("ignored a repeated initialized notification")
            return
        elif method == types.CANCEL_REQUEST and not valid_id(getattr(message.params, "id", None)):
            log.warning("ignored $/cancelRequest without a valid id")
            return
        elif not self._initialize_seen and method not in (None, types.EXIT):
            if is_request:
                self._answer_error(message.id, NOT_INITIALIZED, f"{method}: the server is not initialized yet")
            else:
                log.warning("dropped notification %s before initialize", method)
            return
        if self._shutdown and is_request:
            self._answer_error(message.id, INVALID_REQUEST, f"{method}: the server is shutting down")
            return
        if method == types.INITIALIZED:
            self._initialized_seen = True
        super().handle_message(message)

    # -- running handlers ------------------------------------------------------------------
    def _execute_handler(self, msg_id: Any, handler: Any, callback: Any, args: Any = None, kwargs: Any = None) -> Any:
        """Forget a handler's future once it is done.

        pygls keeps the future of every generator, coroutine and thread handler in
        ``_request_futures`` (so that ``$/cancelRequest`` can find it) but removes it only for
        requests: each notification (every didChange, so every keystroke) left ~1 KB behind.
        """

        def done(future: Any) -> None:
            if self._request_futures.get(msg_id) is future:
                del self._request_futures[msg_id]
            callback(future)

        return super()._execute_handler(msg_id, handler, done, args, kwargs)

    def _send_response(self, msg_id: Any, result: Any | None = None, error: Any = None) -> None:
        """No traceback, server path or secret in an error answer.

        pygls answers an exception escaping a handler with InternalError whose ``data`` holds
        the traceback and whose message holds ``str(exc)``. Handlers here answer failures
        themselves; should one slip through, the client learns only the exception's type.
        """
        if error is not None and getattr(error, "code", None) == INTERNAL_ERROR:
            log.error("internal error answered for request %s: %s", msg_id, getattr(error, "message", ""))
            name = str(getattr(error, "message", "")).split(":", 1)[0].strip() or "Exception"
            name = name if name.isidentifier() else "Exception"
            error = types.ResponseError(code=INTERNAL_ERROR, message=f"codellama-ls internal error ({name})")
        elif error is not None and isinstance(getattr(error, "message", None), str):
            error = types.ResponseError(code=error.code, message=scrub(error.message), data=None)
        super()._send_response(msg_id, result, error)

    # -- document sync: the server keeps its own store ---------------------------------------
    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams) -> Generator[Any, Any, None]:
        yield from self._user(types.TEXT_DOCUMENT_DID_OPEN, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams) -> Generator[Any, Any, None]:
        yield from self._user(types.TEXT_DOCUMENT_DID_CHANGE, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams) -> Generator[Any, Any, None]:
        yield from self._user(types.TEXT_DOCUMENT_DID_CLOSE, params)

    def _user(self, method: str, params: Any) -> Generator[Any, Any, None]:
        """Run the server's handler for a sync notification, skipping pygls' workspace (whose
        line splitting and position clamping are not exact; see ``documents.py``)."""
        handler = self.fm.features.get(method)
        if handler is not None:
            yield handler, (params,), None

    # -- answering bad input -----------------------------------------------------------------
    def answer_unreadable(self, exc: BaseException) -> None:
        """The body was not JSON: ParseError, with a null id since none could be read."""
        log.warning("unreadable message: %s: %s", type(exc).__name__, str(exc)[:200])
        self._answer_error(None, PARSE_ERROR, f"Parse error: {type(exc).__name__}")

    def _reject(self, data: Any, code: int, reason: str) -> None:
        log.warning("rejected message (%s): %.200r", reason, data)
        if isinstance(data, dict):
            has_method = isinstance(data.get("method"), str)
            if has_method and "id" not in data:
                return  # a notification: nobody is waiting for an answer
            if not has_method and "method" not in data:
                return  # a response from the client that we could not read
            msg_id = data.get("id") if valid_id(data.get("id")) else None
        else:
            msg_id = None
        self._answer_error(msg_id, code, reason)

    def _answer_error(self, msg_id: Any, code: int, message: str) -> None:
        # A plain dict: lsprotocol's serializer would drop a null id, which JSON-RPC requires.
        self._send_data({"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}})


def scrub(message: str) -> str:
    """An error message without file system paths or secrets (they belong in the log, not in answers)."""
    return redact.mask(redact.without_paths(message))


# -- server-level internals ------------------------------------------------------------------
def pending_requests(server: LanguageServer) -> int:
    """Futures pygls keeps for ``$/cancelRequest``: 0 when idle (the soak bench watches it)."""
    return len(server.protocol._request_futures)


def is_shut_down(server: LanguageServer) -> bool:
    """Whether ``shutdown`` was received (LSP: then ``exit`` ends with code 0)."""
    return bool(server.protocol._shutdown)


def plain_params(value: Any) -> Any:
    """Params of custom methods and command arguments as plain JSON values: pygls hands them over as
    namedtuple-like objects (``_asdict``), at any depth; dicts, lists and scalars come back unchanged."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: plain_params(v) for k, v in value.items()}
    asdict = getattr(value, "_asdict", None)
    if callable(asdict):
        return {k: plain_params(v) for k, v in asdict().items()}
    if isinstance(value, (list, tuple)):
        return [plain_params(v) for v in value]
    return value


def structure(server: LanguageServer, data: Any, cls: type[T]) -> T:
    """Params of a custom method as a typed lsprotocol object, with the server's strict converter."""
    result: T = server.protocol._converter.structure(data, cls)
    return result


def new_stop_event(server: LanguageServer) -> threading.Event:
    """The event ``exit`` sets to end a serving loop, for a loop of our own (``stdio.py``)."""
    event = threading.Event()
    server._stop_event = event
    return event


def protocol_of(server: LanguageServer) -> HardenedProtocol:
    protocol = server.protocol
    assert isinstance(protocol, HardenedProtocol)
    return protocol
