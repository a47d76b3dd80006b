"""JSON-RPC hardening: every request gets an answer, whatever the client sends.

pygls reads each message with ``json.loads(body, object_hook=structure_message)``. When the
body is not JSON, is not an object, lacks ``"jsonrpc": "2.0"``, or has params that do not
match the method's type, pygls logs the failure and sends nothing back — the client's
request then waits forever. Here such messages are answered with the error the JSON-RPC
and LSP specifications name (ParseError, InvalidRequest, InvalidParams,
ServerNotInitialized), and notifications are dropped with a log line. Nothing a client
sends can stop the server.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import cattrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.protocol import LanguageServerProtocol, default_converter

log = logging.getLogger(__name__)

PARSE_ERROR = types.ErrorCodes.ParseError.value
INVALID_REQUEST = types.ErrorCodes.InvalidRequest.value
INVALID_PARAMS = types.ErrorCodes.InvalidParams.value
NOT_INITIALIZED = types.ErrorCodes.ServerNotInitialized.value

# What json.loads raises for bodies that are not JSON (RecursionError: absurdly deep nesting).
UNREADABLE = (json.JSONDecodeError, UnicodeDecodeError, RecursionError)


class Rejected:
    """A message that could not be read; stands in for it until ``handle_message``."""

    def __init__(self, data: Any, code: int, reason: str) -> None:
        self.data = data
        self.code = code
        self.reason = reason


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _envelope_problem(data: dict[str, Any]) -> str | None:
    if data.get("jsonrpc") != "2.0":
        return '"jsonrpc" must be "2.0"'
    if "method" in data and not isinstance(data["method"], str):
        return '"method" must be a string'
    if "id" in data and "method" in data and not _valid_id(data["id"]):
        return '"id" must be a string or an integer'
    return None


def describe_error(exc: BaseException) -> str:
    """A short, readable reason from a cattrs validation error (no values, so no secrets)."""
    cause = exc.__cause__ or exc
    if isinstance(cause, cattrs.BaseValidationError):
        details = cattrs.transform_error(cause)
        return "; ".join(d.replace("$.params.", "").replace("$.", "") for d in details[:3])
    return type(cause).__name__


def strict_converter() -> cattrs.Converter:
    """pygls' converter without cattrs' silent coercions of scalars.

    cattrs structures ``int`` with ``int(value)``: a position ``{"line": 1.5}`` became line 1,
    ``"7"`` became 7 and ``true`` became 1. A client that sends such values has a bug that
    InvalidParams shows at once, instead of a suggestion placed at a guessed position.
    """
    converter = default_converter()

    def exact(kind: type, *also: type) -> Any:
        def hook(value: Any, _: Any) -> Any:
            if type(value) is kind or (also and type(value) in also):
                return kind(value)
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")

        return hook

    converter.register_structure_hook(int, exact(int))
    converter.register_structure_hook(str, exact(str))
    converter.register_structure_hook(bool, exact(bool))
    converter.register_structure_hook(float, exact(float, int))
    return converter


class HardenedProtocol(LanguageServerProtocol):
    """LanguageServerProtocol that answers malformed and out-of-order messages correctly."""

    _initialize_seen = False
    _initialized_seen = False

    def structure_message(self, data: dict[str, Any]) -> Any:
        if "jsonrpc" not in data:
            return data  # a nested object (or an invalid message: handle_message rejects it)
        problem = _envelope_problem(data)
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
        elif method == types.CANCEL_REQUEST and not _valid_id(getattr(message.params, "id", None)):
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
            msg_id = data.get("id") if _valid_id(data.get("id")) else None
        else:
            msg_id = None
        self._answer_error(msg_id, code, reason)

    def _answer_error(self, msg_id: Any, code: int, message: str) -> None:
        # A plain dict: lsprotocol's serializer would drop a null id, which JSON-RPC requires.
        self._send_data({"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}})
