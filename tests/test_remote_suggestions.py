"""Several suggestions from a server: parallel TGI requests, OpenAI's ``n`` (fake servers)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from codellama_ls.engines.base import SAMPLE_TEMPERATURE, SAMPLE_TOP_P, GenerationRequest, StopCheck
from codellama_ls.engines.remote import RemoteEngine
from codellama_ls.prompt.fim import Prompt, build_prompt
from tests.support.fake_remote import FakeServer, Reply, Stream, engine_for, reuse_tokenizers, tokens  # noqa: F401


@pytest.fixture
def server(tokenizer_dir: Path):
    with FakeServer(tokenizer_dir, model_id="codellama/CodeLlama-13b-hf") as srv:
        yield srv


def _engine(server: FakeServer, tokenizer_dir: Path, kind: str, **settings: Any) -> RemoteEngine:
    return engine_for(server, tokenizer_dir, engine=kind, **settings)


def _prompt(engine: RemoteEngine) -> Prompt:
    assert engine.tokenizer is not None
    return build_prompt(engine.tokenizer, "def add(a, b):\n    return ", "\n", fmt="spm")


def _request(engine: RemoteEngine, **kw: Any) -> GenerationRequest:
    return GenerationRequest(prompt=_prompt(engine), max_new_tokens=16, **kw)


def test_tgi_sends_a_greedy_request_and_sampled_ones_in_parallel(server: FakeServer, tokenizer_dir: Path) -> None:
    engine = _engine(server, tokenizer_dir, "tgi")
    arrived: list[bool] = []
    all_in = threading.Event()

    def answer(body: Any) -> Stream:
        sampled = body["parameters"]["do_sample"]
        arrived.append(sampled)
        if len(arrived) == 3:
            all_in.set()
        # Nobody answers before all three requests are in: they must have been sent in parallel.
        all_in.wait(10)
        text = (" b", " * 2") if sampled else (" a", " + b")
        return Stream(tokens(*text), finish="eos_token")

    server.responders["/generate_stream"] = answer
    result = engine.generate(_request(engine, samples=3))
    assert all_in.is_set()
    assert result.texts == [" a + b", " b * 2", " b * 2"] and result.text == " a + b"
    bodies = [s.body["parameters"] for s in server.seen_on("/generate_stream")]
    greedy = [p for p in bodies if not p["do_sample"]]
    sampled = [p for p in bodies if p["do_sample"]]
    assert len(greedy) == 1 and "temperature" not in greedy[0]
    assert len(sampled) == 2
    assert all(p["temperature"] == SAMPLE_TEMPERATURE and p["top_p"] == SAMPLE_TOP_P for p in sampled)
    assert result.stop_reason == "eos" and result.new_tokens == 6
    engine.close()


def test_tgi_each_sample_stops_early_on_its_own_and_a_failed_one_is_left_out(
    server: FakeServer, tokenizer_dir: Path
) -> None:
    engine = _engine(server, tokenizer_dir, "tgi", maxRetries=0)
    sampled: list[int] = []
    lock = threading.Lock()

    def answer(body: Any) -> Reply | Stream:
        with lock:
            if body["parameters"]["do_sample"]:
                sampled.append(1)
                if len(sampled) == 2:
                    return Reply(503, {"error": "busy", "error_type": "overloaded"})
        return Stream(tokens(" x", "\n", " y", *[" z"] * 40), delay=0.02)

    server.responders["/generate_stream"] = answer
    result = engine.generate(_request(engine, samples=3, stop_check=lambda: lambda t: "\n" in t))
    assert len(result.texts) == 2  # the refused sample is left out, the others are complete
    assert all(t == " x\n" for t in result.texts) and result.stop_reason == "early"
    for log in server.streams:
        assert log.done.wait(10) and log.disconnected  # each stream was cut where its sample ended
    engine.close()


def test_tgi_cancel_stops_every_stream(server: FakeServer, tokenizer_dir: Path) -> None:
    engine = _engine(server, tokenizer_dir, "tgi")
    server.defaults["/generate_stream"] = Stream(tokens(*[" w"] * 200), delay=0.05)
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    result = engine.generate(_request(engine, samples=3, cancel=cancel))
    assert result.stop_reason == "cancelled"
    assert len(server.streams) == 3
    for log in server.streams:
        assert log.done.wait(10) and log.disconnected and log.sent < log.total
    engine.close()


def test_openai_asks_for_the_greedy_one_alone_and_n_samples_in_one_request(
    server: FakeServer, tokenizer_dir: Path
) -> None:
    engine = _engine(server, tokenizer_dir, "openai")

    def answer(body: Any) -> Stream:
        if body.get("n", 1) == 1:
            return Stream(tokens(" a", " + b"), finish="stop")
        return Stream([], finish="stop", choices=[tokens(" a", " - b"), tokens(" b", " *", " a"), tokens(" 0")])

    server.responders["/v1/completions"] = answer
    result = engine.generate(_request(engine, samples=4))
    assert result.texts == [" a + b", " a - b", " b * a", " 0"]
    bodies = [s.body for s in server.seen_on("/v1/completions")]
    assert len(bodies) == 2
    greedy = next(b for b in bodies if "n" not in b)
    sampled = next(b for b in bodies if "n" in b)
    assert greedy["temperature"] == 0.0 and "top_p" not in greedy
    assert sampled["n"] == 3 and sampled["temperature"] == SAMPLE_TEMPERATURE and sampled["top_p"] == SAMPLE_TOP_P
    engine.close()


def test_openai_with_a_temperature_is_one_request_whose_choices_interleave(
    server: FakeServer, tokenizer_dir: Path
) -> None:
    engine = _engine(server, tokenizer_dir, "openai")
    choices = [tokens(" a", "\n", " never"), tokens(" b", " c", "\n", " never"), tokens(" d", "\n")]
    server.queue("/v1/completions", Stream([], finish="stop", choices=choices, delay=0.02))
    newline: StopCheck = lambda t: "\n" in t  # noqa: E731
    result = engine.generate(_request(engine, samples=3, temperature=0.5, top_p=0.9, stop_check=lambda: newline))
    [body] = [s.body for s in server.seen_on("/v1/completions")]
    assert body["n"] == 3 and body["temperature"] == 0.5 and body["top_p"] == 0.9
    assert result.texts == [" a\n", " b c\n", " d\n"]  # each choice ends at its own newline
    assert result.stop_reason == "early"
    engine.close()
