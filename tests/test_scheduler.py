"""No fixed wait before a local suggestion; an adaptive debounce for remote engines."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from lsprotocol import types

from codellama_ls.config import Settings
from codellama_ls.engines.base import GenerationRequest, GenerationResult
from codellama_ls.pipeline.completion import Pipeline
from codellama_ls.pipeline.scheduler import Scheduler, TypingPace
from codellama_ls.session import Session
from tests.support.fake_engine import FakeEngine

TOKEN_S = 0.03  # one decoding step of the stand-in generations below


class Decoder:
    """Generations that decode a token every TOKEN_S and check the cancel flag before each,
    as the local engine does; it records how many ran at once and what each did after its
    cancel flag went up."""

    def __init__(self, tokens: int = 8) -> None:
        self.tokens = tokens
        self.running = 0
        self.most_at_once = 0
        self.after_cancel: list[int] = []  # per cancelled job: tokens decoded after the flag was raised
        self.finished: list[str] = []
        self._lock = threading.Lock()

    def job(self, name: str, flag_raised: dict[str, float]):
        def run(cancel: threading.Event) -> str:
            with self._lock:
                self.running += 1
                self.most_at_once = max(self.most_at_once, self.running)
            steps_after = 0
            try:
                for _ in range(self.tokens):
                    if cancel.is_set():
                        self.after_cancel.append(steps_after)
                        return name + ":cancelled"
                    time.sleep(TOKEN_S)
                    if name in flag_raised:
                        steps_after += 1
                self.finished.append(name)
                return name
            finally:
                with self._lock:
                    self.running -= 1

        return run


async def test_without_a_debounce_a_generation_starts_at_once():
    scheduler = Scheduler()
    started = time.perf_counter()
    began: list[float] = []
    result = await scheduler.run("doc", lambda cancel: began.append(time.perf_counter()) or "done")
    assert result == "done"
    assert began[0] - started < 0.05  # no fixed wait
    assert scheduler.last_debounce_s == 0.0
    scheduler.shutdown()


async def test_a_keystroke_stops_the_running_generation_within_one_token():
    scheduler = Scheduler()
    decoder = Decoder(tokens=100)
    raised: dict[str, float] = {}
    first = asyncio.ensure_future(scheduler.run("doc", decoder.job("first", raised)))
    await asyncio.sleep(5 * TOKEN_S)  # "first" is decoding
    raised["first"] = time.perf_counter()
    second = asyncio.ensure_future(scheduler.run("doc", decoder.job("second", {})))
    assert await asyncio.wait_for(first, 5) is None  # its request is answered empty at once
    decoder.tokens = 2
    assert await asyncio.wait_for(second, 5) == "second"
    # The first stopped at its next cancel check: at most the step in progress was decoded after the flag.
    assert decoder.after_cancel == [1] or decoder.after_cancel == [0]
    # The second waited only for that step.
    assert scheduler.last_queue_s < 3 * TOKEN_S + 0.1
    scheduler.shutdown()


async def test_a_stream_of_keystrokes_runs_one_generation_at_a_time_and_the_newest_wins():
    scheduler = Scheduler()
    decoder = Decoder(tokens=6)
    raised: dict[str, float] = {}
    pending = []
    for key in range(12):  # a keystroke every 40 ms, faster than a generation (6 × 30 ms)
        name = f"k{key}"
        for earlier in pending:
            raised.setdefault(earlier[0], time.perf_counter())
        pending.append((name, asyncio.ensure_future(scheduler.run("doc", decoder.job(name, raised)))))
        await asyncio.sleep(0.04)
    results = await asyncio.wait_for(asyncio.gather(*(f for _, f in pending)), 10)
    assert results[:-1] == [None] * 11 and results[-1] == "k11"
    assert decoder.most_at_once == 1
    assert decoder.finished == ["k11"]  # no superseded generation ran to its end
    assert all(n <= 1 for n in decoder.after_cancel)
    scheduler.shutdown()


async def test_the_wait_for_a_busy_worker_counts_from_the_request_s_arrival():
    scheduler = Scheduler()
    release = threading.Event()
    other = asyncio.ensure_future(scheduler.run("other.py", lambda cancel: release.wait(5) and "other"))
    await asyncio.sleep(0.05)  # the worker is busy with another document's generation
    asyncio.get_running_loop().call_later(0.2, release.set)
    arrived = time.perf_counter() - 0.1  # the request came in 100 ms ago (its prompt took that long)
    assert await scheduler.run("doc.py", lambda cancel: "mine", arrived=arrived) == "mine"
    assert await other == "other"
    # From arrival to the worker becoming free: ~300 ms, whatever the request did meanwhile.
    assert 0.25 <= scheduler.last_queue_s < 0.5
    assert await scheduler.run("doc.py", lambda cancel: "again", arrived=time.perf_counter()) == "again"
    assert scheduler.last_queue_s == 0.0  # an idle worker keeps nobody waiting
    scheduler.shutdown()


# -- typing speed --------------------------------------------------------------------------------
def _typed(pace: TypingPace, key: str, intervals: list[float], start: float = 100.0) -> None:
    now = start
    pace.keystroke(key, now)
    for interval in intervals:
        now += interval
        pace.keystroke(key, now)


def test_the_debounce_follows_the_typing_speed_within_its_bounds():
    pace = TypingPace()
    assert pace.debounce("a", 0.15) == 0.15  # nothing known yet: the setting
    _typed(pace, "a", [0.08, 0.07, 0.09])
    assert pace.debounce("a", 0.15) == 0.15  # three intervals are not enough to go by
    _typed(pace, "a", [0.08, 0.08], start=200.0)
    assert pace.debounce("a", 0.15) == pytest.approx(1.5 * 0.08)  # a fast typist waits less
    _typed(pace, "b", [0.3] * 6)
    assert pace.debounce("b", 0.15) == 0.15  # a slow one never waits longer than the setting
    _typed(pace, "c", [0.005] * 6)
    assert pace.debounce("c", 0.15) == TypingPace.MIN_S
    assert pace.debounce("a", 0.0) == 0.0  # debounceMs 0: no wait


def test_pauses_are_not_typing_and_only_the_recent_intervals_count():
    pace = TypingPace()
    _typed(pace, "a", [0.1, 5.0, 0.1, 30.0, 0.1, 0.1])  # thinking between bursts
    assert pace.interval("a") == pytest.approx(0.1)
    _typed(pace, "a", [0.06] * TypingPace.WINDOW, start=500.0)  # the user warmed up
    assert pace.interval("a") == pytest.approx(0.06)


# -- the pipeline's choice -----------------------------------------------------------------------
class Timed(FakeEngine):
    def generate(self, request: GenerationRequest) -> GenerationResult:
        self.started_at = time.perf_counter()
        return super().generate(request)


async def _ask(engine: Timed, typed_every: float | None, debounce_ms: int) -> float:
    """Seconds from the request to the engine starting, after typing at ``typed_every``."""
    service = Pipeline(Session(Settings(debounce_ms=debounce_ms)))
    service.session.host.use(engine)
    uri = "file:///t.py"
    service.session.documents.open(types.TextDocumentItem(uri=uri, language_id="python", version=1, text="x = \n"))
    if typed_every is not None:
        now = time.perf_counter() - 10 * typed_every
        for step in range(10):
            service.session.pace.keystroke(uri, now + step * typed_every)
    asked = time.perf_counter()
    answer = await service.suggest(uri, types.Position(line=0, character=4))
    assert answer is not None and answer.text == "10"
    service.session.shutdown()
    return engine.started_at - asked


async def test_the_local_engine_starts_at_once_and_remote_ones_wait_for_the_typing_speed():
    local = Timed(script="10")
    local.needs_debounce = False  # as LocalEngine
    assert await _ask(local, None, debounce_ms=2000) < 0.2  # the setting is for remote engines only
    remote = Timed(script="10")
    assert remote.needs_debounce  # as the TGI and OpenAI engines
    assert await _ask(remote, None, debounce_ms=400) >= 0.39  # typing speed unknown: the setting
    waited = await _ask(Timed(script="10"), 0.06, debounce_ms=400)
    assert 0.06 < waited < 0.3  # 1.5 × 60 ms, not 400 ms


def _edit(uri: str, version: int) -> types.DidChangeTextDocumentParams:
    at = types.Position(line=0, character=4)
    return types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangePartial(range=types.Range(at, at), text="a")],
    )


async def test_an_edit_stops_the_generation_for_the_old_text_at_once():
    engine = FakeEngine(mode="hang")  # decodes until its cancel flag goes up
    engine.needs_debounce = False
    service = Pipeline(Session(Settings()))
    service.session.host.use(engine)
    for uri in ("file:///a.py", "file:///b.py"):
        service.session.documents.open(types.TextDocumentItem(uri=uri, language_id="python", version=1, text="x = \n"))
    pending = asyncio.ensure_future(service.suggest("file:///a.py", types.Position(line=0, character=4)))
    while not engine.requests:
        await asyncio.sleep(0.01)
    service.session.change(_edit("file:///b.py", 2))  # another document: a's generation goes on
    service.session.change(_edit("file:///a.py", 1))  # a stale version: not applied, nothing stops
    await asyncio.sleep(0.1)
    assert not pending.done() and not engine.requests[0].cancel.is_set()
    service.session.change(_edit("file:///a.py", 2))  # the key arrives: the answer for the old text is worthless
    assert await asyncio.wait_for(pending, 1) is None
    assert engine.requests[0].cancel.is_set()
    service.session.shutdown()


async def test_background_work_never_runs_ahead_of_a_real_request():
    """A warm-up queued behind a generation is dropped when a newer request comes: the request runs
    next, and the warm-up never runs (its future says None)."""
    scheduler = Scheduler()
    started, release = threading.Event(), threading.Event()
    order: list[str] = []

    def first_job(cancel: threading.Event) -> str:
        started.set()
        release.wait(5)
        order.append("first")
        return "first"

    first = asyncio.ensure_future(scheduler.run("a.py", first_job))
    await asyncio.to_thread(started.wait, 5)
    warm = scheduler.background("warm", lambda cancel: order.append("warm") or "warm")
    second = asyncio.ensure_future(scheduler.run("b.py", lambda cancel: order.append("second") or "second"))
    await asyncio.sleep(0.01)
    release.set()
    assert (await first, await second, await warm) == ("first", "second", None)
    assert order == ["first", "second"]
    assert scheduler.background_stopped == 1


async def test_a_real_request_raises_the_flag_of_running_background_work():
    """A warm-up in progress sees its cancel flag (checked between prefill chunks) when a request comes;
    a newer warm-up replaces a queued older one."""
    scheduler = Scheduler()
    running = threading.Event()

    def warm(cancel: threading.Event) -> bool:
        running.set()
        return cancel.wait(5)  # True: stopped by the flag, not by the timeout

    stopped = scheduler.background("warm", warm)
    await asyncio.to_thread(running.wait, 5)
    older = scheduler.background("prefetch", lambda cancel: "older")
    newer = scheduler.background("prefetch", lambda cancel: "newer")
    answer = await scheduler.run("a.py", lambda cancel: "answer")
    assert (answer, await stopped, await older, await newer) == ("answer", True, None, None)
    third = await scheduler.background("prefetch", lambda cancel: "idle again")
    assert third == "idle again"
