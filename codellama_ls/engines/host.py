"""The engine the settings ask for: created, loaded off the event loop, replaced on reload.

Loading takes seconds to minutes (weights, or a server's ``/info``), so it runs in a worker
thread while the LSP loop keeps answering (empty, until the engine is ready). A reload first
lets a cancelled generation of the old engine stop, so its model is not freed under it; a
call stuck in a device for longer than ``DRAIN_TIMEOUT_S`` is left behind and its worker
replaced. Load failures of any kind leave a failed engine and one message, never a stuck
state. A second engine (Instruct actions) uses its own host.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from lsprotocol import types

from codellama_ls.config import Settings
from codellama_ls.engines import create_engine
from codellama_ls.engines.base import (
    Engine,
    EngineError,
    EngineState,
    GenerationRequest,
    GenerationResult,
)
from codellama_ls.notify import Notifier, ProgressFn
from codellama_ls.pipeline.scheduler import Scheduler

log = logging.getLogger(__name__)

# How long a reload waits for a cancelled generation to stop before leaving it behind.
DRAIN_TIMEOUT_S = 10.0

EngineFactory = Callable[[Settings], Engine]


class NoEngine(Engine):
    """Placeholder until the configured engine is loaded (or after it failed to be created)."""

    name = "none"

    def __init__(self, error: str | None = None, settings: Settings | None = None) -> None:
        super().__init__(settings)
        if error:
            self.state, self.error = EngineState.FAILED, error

    def load(self, progress: ProgressFn | None = None) -> None:
        return None

    def generate(self, request: GenerationRequest) -> GenerationResult:
        raise EngineError(self.error or "no engine", "not-ready")

    def close(self) -> None:
        return None


class EngineHost:
    """Owns one engine slot: ``engine`` is always usable (a placeholder while none is loaded)."""

    def __init__(
        self,
        notifier: Notifier,
        scheduler: Scheduler,
        factory: EngineFactory = create_engine,
        *,
        key: str = "load",
    ) -> None:
        self.notifier = notifier
        self.scheduler = scheduler
        self.factory = factory
        self.key = key  # prefix of this host's message kinds (one message per kind of failure)
        self.engine: Engine = NoEngine()
        self._lock = threading.Lock()

    def use(self, engine: Engine) -> None:
        """Serve with an engine made elsewhere, already loaded (the evaluation harness, tests)."""
        self.engine = engine

    def configure(self, settings: Settings) -> None:
        """Hand settings that need no reload to the current engine."""
        self.engine.configure(settings)

    async def load(self, settings: Settings) -> bool:
        """(Re)load in a worker thread; True when the new engine is ready."""
        old = self.engine
        try:
            engine = self.factory(settings)
        except EngineError as exc:
            self.engine = NoEngine(str(exc), settings)
            self.notifier.once(f"{self.key}:{exc}", str(exc))
            return False
        engine.state = EngineState.LOADING
        self.engine = engine
        self.notifier.reset(f"{self.key}:")
        progress = await self.notifier.progress()
        try:
            await asyncio.to_thread(self._swap, old, engine, progress)
        except Exception as exc:  # EngineError, or any bug in an engine's loader: report, keep serving
            if progress is not None:
                progress("Loading failed", 100)
            message = str(exc)
            if not isinstance(exc, EngineError):
                log.exception("loading the engine failed")
                message = f"Loading the engine failed: {type(exc).__name__}: {exc}"
            engine.state, engine.error = EngineState.FAILED, message
            self.notifier.once(f"{self.key}:{message}", message)
            return False
        self.show_notices()
        return engine.ready

    def _swap(self, old: Engine, engine: Engine, progress: ProgressFn | None) -> None:
        with self._lock:
            # The old engine may still be generating a (cancelled) request: let it stop before
            # its model is freed under it. A call stuck longer than this is left behind.
            self.scheduler.drain(DRAIN_TIMEOUT_S)
            old.close()
            engine.load(progress)

    def show_notices(self) -> None:
        """Information the engine left (how its prompts are made), once per kind."""
        for key, message in self.engine.take_notices():
            self.notifier.once(f"notice:{key}", message, types.MessageType.Info)

    def report_unready(self) -> None:
        """A request found the engine failed: say why (once)."""
        engine = self.engine
        if engine.state is EngineState.FAILED and engine.error:
            self.notifier.once(f"{self.key}:{engine.error}", engine.error)

    def close(self) -> None:
        self.engine.close()
