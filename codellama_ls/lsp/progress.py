"""Progress the user sees: LSP work-done tokens (model loading, code actions) and a terminal bar
for model loading in ``complete`` and ``eval``."""

from __future__ import annotations

import asyncio
import logging
import sys
from concurrent.futures import Future
from typing import Any, Protocol

from lsprotocol import types

from codellama_ls.notify import ProgressFn

log = logging.getLogger(__name__)


class WorkDoneProgress(Protocol):
    """pygls' ``Progress`` (server-initiated work-done progress)."""

    tokens: dict[types.ProgressToken, Future[Any]]

    async def create_async(self, token: types.ProgressToken) -> Any: ...

    def begin(self, token: types.ProgressToken, value: types.WorkDoneProgressBegin) -> None: ...

    def report(self, token: types.ProgressToken, value: types.WorkDoneProgressReport) -> None: ...

    def end(self, token: types.ProgressToken, value: types.WorkDoneProgressEnd) -> None: ...


class ProgressServer(Protocol):
    """What showing progress needs of the server (a pygls ``LanguageServer``)."""

    @property
    def client_capabilities(self) -> types.ClientCapabilities: ...

    @property
    def work_done_progress(self) -> WorkDoneProgress: ...


async def work_done_token(server: ProgressServer, token: str, what: str) -> bool:
    """Create ``token`` for server-initiated ``$/progress`` (the specification wants it acknowledged
    before the first notification). False when the client cannot show progress or does not answer
    within 5 s: ``what`` then runs without progress."""
    caps = server.client_capabilities
    if not (caps.window and caps.window.work_done_progress):
        return False
    try:
        await asyncio.wait_for(server.work_done_progress.create_async(token), 5)
    except Exception:  # no answer or an error
        log.info("client did not accept a progress token; %s runs without progress", what)
        return False
    return True


def progress_bar() -> ProgressFn:
    """A tqdm bar on stderr fed by the engine's load progress."""
    from tqdm import tqdm

    bar = tqdm(total=100, file=sys.stderr, desc="Loading", leave=False)

    def report(message: str, pct: int | None) -> None:
        bar.set_description(message)
        if pct is not None:
            bar.update(max(pct - bar.n, 0))
        if pct is not None and pct >= 100:
            bar.close()

    return report
