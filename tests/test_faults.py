"""Faults: an engine that raises mid-generation, hangs, or fails to load. Every request is
answered, each kind of failure is reported once, and serving recovers when the cause goes away.

``Pipeline`` runs with the fake engine (the fault is injected where a device would
raise it); the OOM case runs the real decoding loop of ``LocalEngine``. The same faults
through the real server process are in ``tests/e2e/test_faults_e2e.py``.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
import torch
from lsprotocol import types

from codellama_ls.config import Settings
from codellama_ls.engines import host
from codellama_ls.engines.base import Engine, EngineState
from codellama_ls.engines.local import LocalEngine
from codellama_ls.notify import Notifier
from codellama_ls.pipeline.completion import Pipeline
from codellama_ls.prompt.tokens import CodeTokenizer
from codellama_ls.session import Session
from tests.support.fake_engine import FakeEngine

URI = "file:///w/fault.py"
OK = "compute(1)"  # what a healthy fake engine suggests
POS = types.Position(line=0, character=4)


@pytest.fixture
def tok(tokenizer_dir) -> CodeTokenizer:
    return CodeTokenizer.load(str(tokenizer_dir))


def make_service(engine: Engine, shown: list, **settings) -> Pipeline:
    notifier = Notifier(lambda message, kind: shown.append((kind, message)))
    service = Pipeline(Session(Settings(debounce_ms=0, **settings), notifier))
    service.session.host.use(engine)
    for uri in (URI, URI + "2"):
        service.session.documents.open(types.TextDocumentItem(uri=uri, language_id="python", version=1, text="x = \n"))
    return service


async def suggest(service: Pipeline, uri: str = URI):
    """Every request must end: wait_for turns a hang into a failure instead of a stuck test."""
    return await asyncio.wait_for(service.suggest(uri, POS), 60)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), types.MessageType.Warning),
        (RuntimeError("CUDA error: an illegal memory access was encountered"), types.MessageType.Error),
        (ValueError("a bug in an engine"), types.MessageType.Error),
    ],
)
async def test_engine_raising_mid_generation(tok, error, kind):
    shown: list = []
    engine = FakeEngine(tok, OK, mode="raise", error=error)
    service = make_service(engine, shown)
    for _ in range(3):
        assert await suggest(service) is None
    assert [k for k, _ in shown] == [kind]  # reported once, not once per keystroke
    assert type(error).__name__ in shown[0][1]
    engine.mode = "ok"
    answer = await suggest(service)
    assert answer is not None and answer.text == OK


async def test_oom_inside_the_real_decoding_loop(tiny_model):
    """torch raises OutOfMemoryError from a forward pass in the middle of LocalEngine's loop."""
    engine = LocalEngine(Settings(model=str(tiny_model), device="cpu"))
    engine.load()
    real = engine.model
    calls = {"n": 0}

    class OomOnThirdStep:
        def __getattr__(self, name):
            return getattr(real, name)

        def __call__(self, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 3:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB")
            return real(*args, **kwargs)

    engine.model = OomOnThirdStep()
    shown: list = []
    service = make_service(engine, shown, max_new_tokens=8)
    assert await suggest(service) is None
    assert calls["n"] == 3  # the fault hit mid-generation, after the prefill and one step
    assert [k for k, _ in shown] == [types.MessageType.Warning] and "out of memory" in shown[0][1]
    before = engine.generations
    await suggest(service)  # the device has memory again: the same engine generates normally
    assert engine.generations == before + 1 and engine.history[-1].stop_reason != "cancelled"
    assert len(shown) == 1


async def test_hanging_generation_times_out_once_and_serving_recovers(tok):
    shown: list = []
    engine = FakeEngine(tok, OK, mode="hang")
    service = make_service(engine, shown, generation_timeout_ms=100)
    assert await suggest(service) is None
    assert await suggest(service) is None
    assert [k for k, _ in shown] == [types.MessageType.Warning] and "longer than" in shown[0][1]
    engine.mode = "ok"
    answer = await suggest(service)
    assert answer is not None and answer.text == OK


async def test_stuck_device_call_does_not_block_other_requests_forever(tok):
    shown: list = []
    engine = FakeEngine(tok, OK, mode="stuck")
    service = make_service(engine, shown, generation_timeout_ms=100)
    try:
        assert await suggest(service) is None  # timed out while the call is still stuck
        assert await suggest(service, URI + "2") is None  # queued behind it: answered empty, in time
        assert len(shown) == 1
    finally:
        engine.release.set()
    engine.mode = "ok"
    answer = await suggest(service)
    assert answer is not None and answer.text == OK


async def test_restart_replaces_a_stuck_engine(tok, monkeypatch):
    shown: list = []
    stuck = FakeEngine(tok, OK, mode="stuck")
    service = make_service(stuck, shown, generation_timeout_ms=100)
    monkeypatch.setattr(host, "DRAIN_TIMEOUT_S", 0.2)
    fresh = FakeEngine(tok, OK)
    monkeypatch.setattr(service.session.host, "factory", lambda settings: fresh)
    try:
        assert await suggest(service) is None
        await asyncio.wait_for(service.session.load_engine(), 60)  # codellama.restartEngine
        answer = await suggest(service)  # does not wait for the stuck call of the old engine
        assert answer is not None and answer.text == OK and service.session.engine is fresh
    finally:
        stuck.release.set()


@pytest.mark.parametrize("error", [RuntimeError("driver exploded"), OSError("weights unreadable")])
async def test_engine_failing_to_load_reports_once_and_reload_recovers(tok, monkeypatch, error):
    shown: list = []
    broken = FakeEngine(tok, OK)
    broken.load_error = error
    service = make_service(FakeEngine(tok, OK), shown)
    monkeypatch.setattr(service.session.host, "factory", lambda settings: broken)
    await service.session.load_engine()
    assert service.session.engine.state is EngineState.FAILED and str(error) in (service.session.engine.error or "")
    for _ in range(3):
        assert await suggest(service) is None
    assert [k for k, _ in shown] == [types.MessageType.Error]
    broken.load_error = None  # the cause goes away; the next settings change or restart reloads
    await service.session.load_engine()
    answer = await suggest(service)
    assert answer is not None and answer.text == OK and len(shown) == 1


async def test_restart_during_a_real_generation(tiny_model):
    """A reload frees the old model only after its (cancelled) generation has stopped."""
    shown: list = []
    settings = {"model": str(tiny_model), "device": "cpu", "max_new_tokens": 3000, "generation_timeout_ms": 600_000}
    service = make_service(FakeEngine(CodeTokenizer.load(str(tiny_model)), OK), shown, **settings)
    await service.session.load_engine()
    first = service.session.engine
    assert first.ready
    running = asyncio.ensure_future(suggest(service))
    while service.session.scheduler.started < 1:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # inside the decoding loop
    await asyncio.wait_for(service.session.load_engine(), 120)
    assert await running is None  # answered (empty), not an error
    assert first.history[-1].stop_reason == "cancelled" and shown == []
    assert service.session.engine is not first and service.session.engine.ready
    service.session.configure({"maxNewTokens": 3})
    await suggest(service)
    assert service.session.engine.generations == 1 and shown == []


async def test_remote_server_that_disconnects_then_comes_back(tokenizer_dir):
    from tests.support.fake_remote import FakeServer, Stream, engine_for, tokens

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    shown: list = []
    with FakeServer(tokenizer_dir, port=port) as remote:
        service = make_service(engine_for(remote, tokenizer_dir), shown)
        remote.queue("/generate_stream", Stream(tokens(" compute", "(1)"), drop_after=1))
        assert await suggest(service) is None  # the connection drops in the middle of the answer
    for _ in range(3):  # the server is gone: connection refused, fast
        assert await suggest(service) is None
    assert len(shown) == 2  # one message per kind of failure (stream cut, unreachable), not per request
    with FakeServer(tokenizer_dir, port=port) as remote:  # back, on the same address
        remote.queue("/generate_stream", Stream(tokens(" compute", "(1)"), finish="eos_token"))
        answer = await suggest(service)
        assert answer is not None and "compute(1)" in answer.text and len(shown) == 2
    service.session.shutdown()
