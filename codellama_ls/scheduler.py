"""Debounce, supersede and cancel completion requests, one generation at a time.

Per document only the newest request is wanted: a new one makes the previous answer empty
at once and raises its cancel flag, which the engine checks every token, so the device is
free for the newest request within one decoding step. Requests wait in the debounce window
without touching the engine; only the newest survives it. Generation runs in a single
worker thread, so at most one runs while the LSP loop stays free.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class Ticket:
    """One request's claim on its document; ``cancel`` is what the engine polls."""

    cancel: threading.Event = field(default_factory=threading.Event)
    superseded: asyncio.Event = field(default_factory=asyncio.Event)

    def drop(self) -> None:
        self.cancel.set()
        self.superseded.set()


class Scheduler:
    def __init__(self) -> None:
        self._latest: dict[str, Ticket] = {}
        self._worker = _new_worker()
        self.started = 0  # jobs that reached the worker (for tests and the soak bench)

    def supersede(self, key: str) -> Ticket:
        """Claim ``key`` for a new request, dropping the previous one."""
        ticket = Ticket()
        old = self._latest.get(key)
        if old is not None:
            old.drop()
        self._latest[key] = ticket
        return ticket

    def cancel(self, key: str) -> None:
        """Drop ``key``'s pending or running request (a cache answered a newer one)."""
        ticket = self._latest.pop(key, None)
        if ticket is not None:
            ticket.drop()

    def cancel_all(self) -> None:
        for ticket in list(self._latest.values()):
            ticket.drop()

    async def run(
        self,
        key: str,
        job: Callable[[threading.Event], T],
        *,
        debounce_s: float = 0.0,
        timeout_s: float | None = None,
        ticket: Ticket | None = None,
    ) -> T | None:
        """Run ``job(cancel_flag)`` in the worker after the debounce; ``None`` if superseded."""
        ticket = ticket or self.supersede(key)
        try:
            if debounce_s > 0:
                try:
                    await asyncio.wait_for(ticket.superseded.wait(), debounce_s)
                except TimeoutError:
                    pass
            if ticket.superseded.is_set():
                return None
            loop = asyncio.get_running_loop()
            self.started += 1
            began = threading.Event()  # the job left the queue (a code action may hold the worker for long)

            def started_job(cancel: threading.Event) -> T:
                began.set()
                return job(cancel)

            future = loop.run_in_executor(self._worker, _guarded, started_job, ticket.cancel)
            waiter: asyncio.Future[Any] = asyncio.ensure_future(ticket.superseded.wait())
            both: set[asyncio.Future[Any]] = {future, waiter}
            try:
                done, _ = await asyncio.wait(both, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
            if future in done:
                return future.result()
            ticket.cancel.set()  # superseded or timed out: the job stops at its next token
            if not ticket.superseded.is_set():
                if not began.is_set():
                    raise TimeoutError(f"another generation held the model for longer than {timeout_s:.1f}s")
                raise TimeoutError(f"generation took longer than {timeout_s:.1f}s")
            return None
        except asyncio.CancelledError:
            ticket.cancel.set()  # $/cancelRequest: stop the engine too
            raise
        finally:
            if self._latest.get(key) is ticket:
                del self._latest[key]

    def drain(self, timeout: float) -> bool:
        """Block until the worker has finished its jobs (call ``cancel_all`` first; then they
        end within a token). A job still running after ``timeout`` is stuck in a device call:
        the worker is replaced so that new requests do not queue behind it. Any thread."""
        try:
            self._worker.submit(lambda: None).result(timeout)
            return True
        except concurrent.futures.TimeoutError:
            stuck, self._worker = self._worker, _new_worker()
            stuck.shutdown(wait=False, cancel_futures=True)
            return False

    def shutdown(self) -> None:
        self.cancel_all()
        self._worker.shutdown(wait=False, cancel_futures=True)


def _new_worker() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="codellama-gen")


def _guarded(job: Callable[[threading.Event], T], cancel: threading.Event) -> T | None:
    """Skip jobs that were dropped while queued behind another generation."""
    if cancel.is_set():
        return None
    return job(cancel)
