"""The server's log in the editor: ``window/logMessage`` at each record's own level.

An editor shows a language server's stderr as errors (VS Code's client writes every stderr line
at the error level, with its own timestamp in front of ours). While serving LSP the log goes to
the client instead, as ``window/logMessage`` with the record's MessageType and no timestamp (the
editor adds one), and stderr carries only what escapes logging (a crash). Progress bars of the
Hugging Face libraries are turned off: the editor shows model loading from ``$/progress``.
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import threading
from collections.abc import Callable

from lsprotocol import types

from codellama_ls import redact

# Records logged before the client's `initialize` arrives wait here (the specification allows
# no notification before it); the oldest are dropped past this many.
BACKLOG = 200
# pygls logs each message it sends at DEBUG: forwarding those would send a message per message.
OWN_TRAFFIC = ("pygls",)
LEVELS = (
    (logging.ERROR, types.MessageType.Error),
    (logging.WARNING, types.MessageType.Warning),
    (logging.INFO, types.MessageType.Info),
)

SendFn = Callable[[types.MessageType, str], None]


def message_type(level: int) -> types.MessageType:
    """ERROR and CRITICAL → Error, WARNING → Warning, INFO → Info, below → Debug (LSP 3.18)."""
    for floor, kind in LEVELS:
        if level >= floor:
            return kind
    return types.MessageType.Debug


class _ClientFormat(logging.Formatter):
    """One line a record for the editor: no traceback (the log file keeps it), no paths, no tokens,
    since whatever reaches the client may be shown, copied or shared."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.name}: {record.getMessage()}"
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            text += f" ({type(exc).__name__}; the log file has the details)"
        return redact.without_paths(redact.mask(text))


class NoEchoes(logging.Filter):
    """Drops pygls' DEBUG traces of the ``window/logMessage`` notifications that carry our own
    records: with ``--log-level DEBUG`` the log file would otherwise show every record three times."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.split(".", 1)[0] not in OWN_TRAFFIC:
            return True
        try:
            return "window/logMessage" not in record.getMessage()
        except Exception:  # a bad format string: let the handler report it
            return True


class ClientLog(logging.Handler):
    """A logging handler that sends records to the editor through ``send`` once connected.

    ``send`` may be called from any thread (model loading logs from worker threads); the server
    passes one that hands the notification to its event loop.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(_ClientFormat())
        self._send: SendFn | None = None
        self._backlog: collections.deque[tuple[types.MessageType, str]] = collections.deque(maxlen=BACKLOG)
        self._guard = threading.Lock()

    def connect(self, send: SendFn) -> None:
        """The client sent `initialize`: send the backlog, then every record as it comes."""
        with self._guard:
            self._send = send
            backlog, self._backlog = list(self._backlog), collections.deque(maxlen=BACKLOG)
        for kind, text in backlog:
            send(kind, text)

    def disconnect(self) -> None:
        with self._guard:
            self._send = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".", 1)[0] in OWN_TRAFFIC:
            return
        try:
            text = self.format(record)
        except Exception:  # a bad format string must not take the server down
            self.handleError(record)
            return
        kind = message_type(record.levelno)
        with self._guard:
            send = self._send
            if send is None:
                self._backlog.append((kind, text))
                return
        try:
            send(kind, text)
        except Exception:  # the connection is gone (shutting down): nothing to tell
            pass


def quiet_progress_bars() -> None:
    """No tqdm bars from huggingface_hub / transformers (they read this before their first bar),
    and transformers' own stderr handler only for errors, while the editor shows progress."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "huggingface_hub" in sys.modules:  # imported already: tell it directly
        from huggingface_hub.utils import disable_progress_bars  # type: ignore[attr-defined]

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
