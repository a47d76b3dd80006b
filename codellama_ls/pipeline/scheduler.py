"""Debounce, supersede and cancel completion requests, one generation at a time.

Per document only the newest request is wanted: a new one makes the previous answer empty
at once and raises its cancel flag, which the engine checks every token, so the device is
free for the newest request within one decoding step. Generation runs in a single worker
thread, so at most one runs while the LSP loop stays free; a request arriving while another
generates waits for it to stop (within a token) and then starts.

Work nobody waits for (warming the cache where the cursor rests, prefetching the suggestion
after an accept) runs at low priority through :meth:`Scheduler.background`: it queues behind
every real request (the worker takes jobs in order), and a real request arriving raises its
cancel flag, which a prefill checks between chunks, so it waits for one chunk at most.

The wait before a request reaches the engine (the debounce) is the caller's choice: none
for the in-process engine, which a keystroke stops within a token anyway; for a remote
server, shared by a team and a round trip away, :class:`TypingPace` derives it from how
fast the user types. Requests waiting in the debounce never touch the engine; only the
newest survives it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import statistics
import threading
import time
from collections import OrderedDict, deque
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
    started: float | None = None  # perf_counter when the job began in the worker
    worker_free: float | None = None  # when the job before it ended (the worker became free for it)

    def drop(self) -> None:
        self.cancel.set()
        self.superseded.set()


class TypingPace:
    """How fast the user types, per document, and the debounce that follows from it.

    ``debounce = clamp(FACTOR × median of the last WINDOW keystroke intervals, MIN_S, ceiling)``,
    where the ceiling is the ``debounceMs`` setting. Intervals longer than ``PAUSE_S`` are
    pauses, not typing, and are not counted; until ``MIN_INTERVALS`` intervals are known the
    ceiling applies. Waiting a little longer than the user's usual interval lets a keystroke
    within a word supersede the request before it costs a server call, while a pause is
    recognised after 1.5 of the user's intervals instead of a fixed time.
    """

    FACTOR = 1.5
    MIN_S = 0.02
    WINDOW = 16
    PAUSE_S = 1.0
    MIN_INTERVALS = 4
    DOCUMENTS = 64

    def __init__(self) -> None:
        self._last: OrderedDict[str, float] = OrderedDict()
        self._intervals: dict[str, deque[float]] = {}

    def keystroke(self, key: str, now: float | None = None) -> None:
        """Note an edit of document ``key`` (``now``: a ``time.perf_counter()`` value)."""
        now = time.perf_counter() if now is None else now
        last = self._last.pop(key, None)
        self._last[key] = now
        if last is not None and 0 <= now - last <= self.PAUSE_S:
            self._intervals.setdefault(key, deque(maxlen=self.WINDOW)).append(now - last)
        while len(self._last) > self.DOCUMENTS:
            old, _ = self._last.popitem(last=False)
            self._intervals.pop(old, None)

    def interval(self, key: str) -> float | None:
        """The median keystroke interval of ``key`` in seconds, once enough are known."""
        intervals = self._intervals.get(key)
        if intervals is None or len(intervals) < self.MIN_INTERVALS:
            return None
        return statistics.median(intervals)

    def debounce(self, key: str, ceiling_s: float) -> float:
        """Seconds to wait after a keystroke in ``key`` before asking a remote engine."""
        if ceiling_s <= 0:
            return 0.0
        interval = self.interval(key)
        if interval is None:
            return ceiling_s
        return min(max(self.FACTOR * interval, self.MIN_S), ceiling_s)

    def forget(self, key: str) -> None:
        self._last.pop(key, None)
        self._intervals.pop(key, None)


class Scheduler:
    def __init__(self) -> None:
        self._latest: dict[str, Ticket] = {}
        self._worker = _new_worker()
        self.started = 0  # jobs that reached the worker (for tests and the soak bench)
        # The last job's waits before it began: the debounce, then the worker finishing the
        # previous job (a superseded generation stops within a token), counted from the moment
        # the job could have started (the request's arrival, or the end of its debounce).
        self.last_debounce_s = 0.0
        self.last_queue_s = 0.0
        self._last_end: float | None = None  # when the worker finished its last job (worker thread)
        self._background: dict[str, Ticket] = {}  # low-priority jobs by kind ("warm", "prefetch")
        self.background_started = 0
        self.background_stopped = 0  # dropped for a real request (queued, or stopped between chunks)

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
        self._yield_background()

    def background(self, kind: str, job: Callable[[threading.Event], T]) -> asyncio.Future[T | None]:
        """Run ``job(cancel_flag)`` when no real request waits; a newer job of the same ``kind``
        replaces it, and a real request raises its flag. Resolves to ``None`` when it never ran.
        Call from the event loop."""
        old = self._background.pop(kind, None)
        if old is not None:
            old.drop()
        ticket = Ticket()
        self._background[kind] = ticket
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._worker, self._guarded, job, ticket)

        def finished(_: asyncio.Future[T | None]) -> None:
            if self._background.get(kind) is ticket:
                del self._background[kind]

        future.add_done_callback(finished)
        return future

    def _yield_background(self) -> None:
        """A real request wants the worker: low-priority jobs stop (between chunks) or never start."""
        for ticket in self._background.values():
            if not ticket.cancel.is_set():
                ticket.drop()
                self.background_stopped += 1
        self._background.clear()

    async def run(
        self,
        key: str,
        job: Callable[[threading.Event], T],
        *,
        debounce_s: float = 0.0,
        timeout_s: float | None = None,
        ticket: Ticket | None = None,
        arrived: float | None = None,
    ) -> T | None:
        """Run ``job(cancel_flag)`` in the worker after the debounce; ``None`` if superseded.

        ``arrived`` (a ``time.perf_counter()`` value): when the request came in, to measure how
        long the worker kept it waiting (``last_queue_s``)."""
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
            self._yield_background()
            self.started += 1
            submitted = time.perf_counter()
            ready = submitted if debounce_s > 0 or arrived is None else arrived  # could have started from here
            future = loop.run_in_executor(self._worker, self._guarded, job, ticket)
            waiter: asyncio.Future[Any] = asyncio.ensure_future(ticket.superseded.wait())
            both: set[asyncio.Future[Any]] = {future, waiter}
            try:
                done, _ = await asyncio.wait(both, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
            if future in done:
                self.last_debounce_s = debounce_s
                free = ticket.worker_free
                self.last_queue_s = max(0.0, free - ready) if free is not None else 0.0
                return future.result()
            ticket.cancel.set()  # superseded or timed out: the job stops at its next token
            if not ticket.superseded.is_set():
                if ticket.started is None:  # still queued: a code action may hold the worker for long
                    raise TimeoutError(f"another generation held the model for longer than {timeout_s:.1f}s")
                raise TimeoutError(f"generation took longer than {timeout_s:.1f}s")
            return None
        except asyncio.CancelledError:
            ticket.cancel.set()  # $/cancelRequest: stop the engine too
            raise
        finally:
            if self._latest.get(key) is ticket:
                del self._latest[key]

    def _guarded(self, job: Callable[[threading.Event], T], ticket: Ticket) -> T | None:
        """Skip jobs that were dropped while queued behind another generation (worker thread)."""
        if ticket.cancel.is_set():
            return None
        ticket.worker_free, ticket.started = self._last_end, time.perf_counter()
        try:
            return job(ticket.cancel)
        finally:
            self._last_end = time.perf_counter()

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
