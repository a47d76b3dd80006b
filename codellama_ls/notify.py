"""How every part of the server talks to the user: messages (once per kind of failure) and progress.

The server passes LSP-backed callables (``window/showMessage``, ``$/progress``); the CLI and the
evaluation harness pass ones that print. Nothing here knows about LSP transport.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from lsprotocol import types

log = logging.getLogger(__name__)

# Progress of one long step: a message and a percentage (None when unknown). It lives here, below the
# engines, because engines report through it and nothing here may import an engine.
ProgressFn = Callable[[str, "int | None"], None]

ShowFn = Callable[[str, types.MessageType], None]
ProgressFactory = Callable[[], Awaitable[ProgressFn | None]]


class Notifier:
    """Messages and progress for the user, with repeats of the same failure only logged."""

    def __init__(self, show: ShowFn | None = None, progress: ProgressFactory | None = None) -> None:
        self._show: ShowFn = show or (lambda message, kind: log.warning("%s", message))
        self._progress = progress
        self._shown: set[str] = set()

    def show(self, message: str, kind: types.MessageType = types.MessageType.Error) -> None:
        self._show(message, kind)

    def once(self, key: str, message: str, kind: types.MessageType = types.MessageType.Error) -> None:
        """Show a message once per kind of failure, not once per keystroke."""
        if key in self._shown:
            log.info("%s", message)
            return
        self._shown.add(key)
        self.show(message, kind)

    def reset(self, prefix: str = "") -> None:
        """Forget shown kinds (all, or those starting with ``prefix``): the cause may be back later."""
        self._shown = {k for k in self._shown if not k.startswith(prefix)} if prefix else set()

    def set_progress(self, progress: ProgressFactory | None) -> None:
        self._progress = progress

    async def progress(self) -> ProgressFn | None:
        """A thread-safe load-progress reporter, when the client can show one."""
        return await self._progress() if self._progress else None
