"""JSON-RPC rules: which messages are valid, how to describe a bad one, strict value types.

Used by the hardened protocol in ``adapter.py``: malformed messages are answered with
the error the JSON-RPC and LSP specifications name (ParseError, InvalidRequest, InvalidParams,
ServerNotInitialized) instead of pygls' silence, which leaves a client's request waiting
forever. Nothing here touches pygls internals.
"""

from __future__ import annotations

import enum
import json
import logging
from typing import Any

import cattrs
from lsprotocol import types
from pygls.protocol import default_converter

log = logging.getLogger(__name__)

PARSE_ERROR = types.ErrorCodes.ParseError.value
INVALID_REQUEST = types.ErrorCodes.InvalidRequest.value
INVALID_PARAMS = types.ErrorCodes.InvalidParams.value
NOT_INITIALIZED = types.ErrorCodes.ServerNotInitialized.value
INTERNAL_ERROR = types.ErrorCodes.InternalError.value

# What json.loads raises for bodies that are not JSON (RecursionError: absurdly deep nesting).
UNREADABLE = (json.JSONDecodeError, UnicodeDecodeError, RecursionError)


class Rejected:
    """A message that could not be read; stands in for it until ``handle_message``."""

    def __init__(self, data: Any, code: int, reason: str) -> None:
        self.data = data
        self.code = code
        self.reason = reason


def valid_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def envelope_problem(data: dict[str, Any]) -> str | None:
    if data.get("jsonrpc") != "2.0":
        return '"jsonrpc" must be "2.0"'
    if "method" in data and not isinstance(data["method"], str):
        return '"method" must be a string'
    if "id" in data and "method" in data and not valid_id(data["id"]):
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
    converter: cattrs.Converter = default_converter()

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

    # lsprotocol's enums subclass int or str (``class DiagnosticSeverity(int, Enum)``), so the hooks
    # above took them too and left plain values, which cannot be sent back: a code action carrying
    # the client's diagnostic failed to serialize. A known value becomes the member again; an unknown
    # one stays as it came (as before).
    def exact_enum(base: type) -> Any:
        def hook(value: Any, kind: type[enum.Enum]) -> Any:
            if type(value) is not base:
                raise TypeError(f"expected {base.__name__} for {kind.__name__}, got {type(value).__name__}")
            try:
                return kind(value)
            except ValueError:
                return value

        return hook

    for kind in vars(types).values():
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            base = int if issubclass(kind, int) else str if issubclass(kind, str) else None
            if base is not None:
                converter.register_structure_hook(kind, exact_enum(base))
    return converter
