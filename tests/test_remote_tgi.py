"""The `tgi` engine against a local server that speaks TGI's documented API."""

from __future__ import annotations

import json
import logging
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from codellama_ls.config import Settings
from codellama_ls.engines import create_engine
from codellama_ls.engines import remote as remote_mod
from codellama_ls.engines.base import EngineError, EngineState, GenerationRequest
from codellama_ls.engines.remote import RemoteEngine
from codellama_ls.pipeline.completion import generate_fitted
from codellama_ls.prompt.fim import Prompt, build_prompt, prompt_budget
from codellama_ls.prompt.text import fim_text
from codellama_ls.prompt.tokens import CodeTokenizer
from tests.support.fake_remote import (  # noqa: F401
    FakeServer,
    Reply,
    Stream,
    engine_for,
    reuse_tokenizers,
    spm,
    tokens,
)

EOT = 32010
from tests.support.tiny_model import VECTORS  # noqa: E402


def request(prompt: Prompt, **kw: Any) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, max_new_tokens=kw.pop("max_new_tokens", 32), **kw)


@pytest.fixture
def server(tokenizer_dir: Path):
    with FakeServer(tokenizer_dir) as srv:
        yield srv


@pytest.fixture
def engine(server: FakeServer, tokenizer_dir: Path) -> RemoteEngine:
    eng = engine_for(server, tokenizer_dir)
    yield eng
    eng.close()


# -- /info and limits ------------------------------------------------------------------------
def test_info_is_read_once_and_fits_the_prompt_budget(server: FakeServer, tokenizer_dir: Path) -> None:
    server.max_input, server.max_total = 1000, 1100
    eng = engine_for(server, tokenizer_dir, maxNewTokens=64, maxPromptTokens=4000)
    assert eng.state is EngineState.READY and eng.model_id == server.model_id
    # budget = min(setting, max_input, max_total - max_new)
    assert prompt_budget(4000, eng.context_length, 64) == 1000
    eng.settings = eng.settings.updated({"maxNewTokens": 300})[0]  # as the service hands it over
    assert prompt_budget(4000, eng.context_length, 300) == 800
    server.queue("/generate_stream", Stream(tokens(" a + b"), finish="length"))
    server.queue("/generate_stream", Stream(tokens(" a + b"), finish="length"))
    eng.generate(request(spm(eng)))
    eng.generate(request(spm(eng)))
    assert len(server.seen_on("/info")) == 1


def test_a_prompt_over_the_servers_max_input_is_trimmed(server: FakeServer, tokenizer_dir: Path) -> None:
    server.max_input, server.max_total = 64, 96
    eng = engine_for(server, tokenizer_dir, maxNewTokens=32)  # the pipeline's budget: min(64, 96 - 32)
    prefix = "".join(f"x{i} = {i}\n" for i in range(200))
    big = build_prompt(eng.tokenizer, prefix, "\n", fmt="spm", budget=2048)  # built before the limits were known
    assert len(big.ids) > 64
    server.queue("/generate_stream", Stream(tokens(" 1"), finish="length"))
    generate_fitted(eng, request(big, max_new_tokens=128), eng.settings)  # as the pipeline asks
    sent = server.seen_on("/generate_stream")[-1].body
    assert len(server.token_ids(sent["inputs"])) <= 64
    assert sent["inputs"].endswith("x199 = 199\n")  # the lines nearest the cursor are kept
    assert sent["parameters"]["max_new_tokens"] + len(server.token_ids(sent["inputs"])) <= 96


# -- request bodies --------------------------------------------------------------------------
def test_request_body_is_the_exact_text_prompt_with_eot_stop(engine: RemoteEngine, server: FakeServer) -> None:
    prompt = spm(engine)
    server.queue("/generate_stream", Stream([*tokens(" a", " +", " b", start=100), (EOT, " <EOT>")], "stop_sequence"))
    result = engine.generate(request(prompt, max_new_tokens=40))
    seen = server.seen_on("/generate_stream")[-1]
    assert seen.body["inputs"] == "<PRE> <SUF>\n <MID> def add(a, b):\n    return "
    assert server.token_ids(seen.body["inputs"]) == prompt.ids  # TGI gets the reference ids
    params = seen.body["parameters"]
    assert params["max_new_tokens"] == 40
    assert "<EOT>" in params["stop"]
    assert params["details"] is True and params["do_sample"] is False
    assert "temperature" not in params and "top_p" not in params
    assert result.text == " a + b" and result.stop_reason == "eot" and result.new_tokens == 3
    assert engine.prompts["exact"] == 1


def test_finished_streams_keep_the_connection_for_the_next_request(engine: RemoteEngine, server: FakeServer) -> None:
    for _ in range(3):
        server.queue("/generate_stream", Stream(tokens(" a", " b"), finish="length"))
        assert engine.generate(request(spm(engine))).stop_reason == "length"
    peers = {seen.peer for seen in server.seen_on("/generate_stream")}
    assert len(peers) == 1  # one TCP (and TLS) connection, not one per suggestion


def test_sampling_parameters(engine: RemoteEngine, server: FakeServer) -> None:
    server.queue("/generate_stream", Stream(tokens(" x"), finish="length"))
    engine.generate(request(spm(engine), temperature=0.4, top_p=0.9))
    params = server.seen_on("/generate_stream")[-1].body["parameters"]
    assert params["do_sample"] is True and params["temperature"] == 0.4 and params["top_p"] == 0.9


def test_psm_text_and_a_suffix_starting_with_a_paren_keeps_its_marker(server: FakeServer, tokenizer_dir: Path) -> None:
    eng = engine_for(server, tokenizer_dir)
    prompt = build_prompt(eng.tokenizer, "x = foo", "(a, b)\n", fmt="psm")
    naive = fim_text("psm", prompt.prefix, prompt.suffix)
    suf = eng.tokenizer.special.suf
    assert suf not in server.token_ids(naive)  # BPE glues ">(" and loses ▁<SUF>
    server.queue("/generate_stream", Stream(tokens(" bar"), finish="length"))
    eng.generate(request(prompt))
    sent = server.seen_on("/generate_stream")[-1].body["inputs"]
    assert sent == "<PRE> x = foo <SUF> (a, b)\n <MID>"
    ids = server.token_ids(sent)
    assert [i for i in ids if i in (32007, 32008, 32009)] == [32007, 32008, 32009]
    assert eng.prompts["adjusted"] == 1


def test_token_is_sent_but_never_logged_nor_shown(
    server: FakeServer, tokenizer_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "hf_TopSecretToken123"
    caplog.set_level(logging.DEBUG)
    eng = engine_for(server, tokenizer_dir, apiToken=secret)
    server.queue("/generate_stream", Stream(tokens(" ok"), finish="length"))
    eng.generate(request(spm(eng)))
    assert server.seen_on("/generate_stream")[-1].headers["Authorization"] == f"Bearer {secret}"
    # a proxy that echoes the request headers in its error answer
    server.queue("/generate_stream", Reply(401, {"error": f"bad token Bearer {secret}"}))
    with pytest.raises(EngineError) as err:
        eng.generate(request(spm(eng)))
    assert err.value.kind == "auth" and secret not in str(err.value) and "apiToken" in str(err.value)
    assert secret not in caplog.text and secret not in repr(eng.settings) and secret not in json.dumps(eng.status())


def test_hf_token_variable_is_used(server: FakeServer, tokenizer_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_fromEnv")
    eng = engine_for(server, tokenizer_dir)
    server.queue("/generate_stream", Stream(tokens(" ok"), finish="length"))
    eng.generate(request(spm(eng)))
    assert server.seen_on("/generate_stream")[-1].headers["Authorization"] == "Bearer hf_fromEnv"


# -- streaming: early stop and cancellation close the stream ---------------------------------
def test_early_stop_closes_the_stream(engine: RemoteEngine, server: FakeServer) -> None:
    many = tokens(*[" x"] * 60)
    server.queue("/generate_stream", Stream(many, delay=0.05))
    result = engine.generate(request(spm(engine), stop_check=lambda: lambda text: text.count("x") >= 3))
    assert result.stop_reason == "early" and result.text == " x x x"
    log = server.streams[-1]
    assert log.done.wait(10)
    assert log.disconnected and log.sent < log.total  # the server saw the hang-up and stopped sending


def test_cancel_closes_a_stream_that_is_waiting_for_tokens(engine: RemoteEngine, server: FakeServer) -> None:
    # The first token comes late: the engine is blocked waiting, not between tokens.
    server.queue("/generate_stream", Stream(tokens(*[" y"] * 20), first_delay=60.0, delay=0.05))
    cancel = threading.Event()
    threading.Thread(target=lambda: server.stream_started.wait(20) and cancel.set(), daemon=True).start()
    result = engine.generate(request(spm(engine), cancel=cancel))
    assert result.stop_reason == "cancelled" and result.text == ""
    log = server.streams[-1]
    assert log.done.wait(10)
    assert log.disconnected and log.sent == 0  # hung up before the server sent anything


def test_cancel_mid_stream(engine: RemoteEngine, server: FakeServer) -> None:
    cancel = threading.Event()
    seen: list[str] = []

    def stop_after_two(text: str) -> bool:
        seen.append(text)
        if len(seen) == 2:
            cancel.set()
        return False

    server.queue("/generate_stream", Stream(tokens(*[" z"] * 40), delay=0.05))
    result = engine.generate(request(spm(engine), cancel=cancel, stop_check=lambda: stop_after_two))
    assert result.stop_reason == "cancelled" and result.text == " z z"
    assert server.streams[-1].done.wait(10) and server.streams[-1].disconnected


def test_generation_timeout_returns_timeout(engine: RemoteEngine, server: FakeServer) -> None:
    server.queue("/generate_stream", Stream(tokens(*[" t"] * 40), delay=0.1))
    result = engine.generate(request(spm(engine), timeout_s=0.3))
    assert result.stop_reason == "timeout" and result.new_tokens < 40


# -- faults ----------------------------------------------------------------------------------
def test_503_then_429_are_retried_then_succeed(engine: RemoteEngine, server: FakeServer) -> None:
    server.queue(
        "/generate_stream",
        Reply(503, {"error": "loading", "error_type": "overloaded"}, {"Retry-After": "0"}),
        Reply(429, {"error": "Model is overloaded", "error_type": "overloaded"}, {"Retry-After": "0"}),
        Stream(tokens(" fine"), finish="length"),
    )
    result = engine.generate(request(spm(engine)))
    assert result.text == " fine"
    assert len(server.seen_on("/generate_stream")) == 3


def test_retries_are_bounded(server: FakeServer, tokenizer_dir: Path) -> None:
    eng = engine_for(server, tokenizer_dir, maxRetries=1)
    busy = Reply(429, {"error": "Model is overloaded", "error_type": "overloaded"}, {"Retry-After": "0"})
    server.queue("/generate_stream", busy, busy, busy)
    with pytest.raises(EngineError) as err:
        eng.generate(request(spm(eng)))
    assert err.value.kind == "overloaded" and "429" in str(err.value)
    assert len(server.seen_on("/generate_stream")) == 2


@pytest.mark.parametrize(
    ("status", "kind"),
    [(500, "server"), (422, "validation"), (424, "server"), (404, "not-found"), (403, "auth")],
)
def test_other_errors_are_not_retried(engine: RemoteEngine, server: FakeServer, status: int, kind: str) -> None:
    server.queue("/generate_stream", Reply(status, {"error": "Input validation error: boom", "error_type": "x"}))
    with pytest.raises(EngineError) as err:
        engine.generate(request(spm(engine)))
    assert err.value.kind == kind and str(status) in str(err.value)
    assert len(server.seen_on("/generate_stream")) == 1
    if status == 422:
        assert "Input validation error: boom" in str(err.value)


def test_no_retry_once_the_request_is_cancelled(engine: RemoteEngine, server: FakeServer) -> None:
    cancel = threading.Event()
    server.queue("/generate_stream", Reply(503, {"error": "busy"}, {"Retry-After": "5"}))
    server.request_seen.clear()
    threading.Thread(target=lambda: server.request_seen.wait(20) and cancel.set(), daemon=True).start()
    result = engine.generate(request(spm(engine), cancel=cancel))
    assert result.stop_reason == "cancelled"
    assert len(server.seen_on("/generate_stream")) == 1  # the backoff wait ended with the cancel


def test_error_event_inside_the_stream(engine: RemoteEngine, server: FakeServer) -> None:
    event = {"error": "Request failed during generation: CUDA OOM", "error_type": "generation"}
    server.queue("/generate_stream", Stream(tokens(" a"), error_event=event))
    with pytest.raises(EngineError) as err:
        engine.generate(request(spm(engine)))
    assert err.value.kind == "server" and "CUDA OOM" in str(err.value)


def test_dropped_stream(engine: RemoteEngine, server: FakeServer) -> None:
    server.queue("/generate_stream", Stream(tokens(" a", " b", " c", " d"), drop_after=2))
    with pytest.raises(EngineError) as err:
        engine.generate(request(spm(engine)))
    assert err.value.kind == "stream"


def test_stream_that_ends_without_its_final_event(engine: RemoteEngine, server: FakeServer) -> None:
    server.queue("/generate_stream", Stream(tokens(" a", " b"), final=False))
    with pytest.raises(EngineError) as err:
        engine.generate(request(spm(engine)))
    assert err.value.kind == "stream" and "ended before" in str(err.value)


def test_slow_stream_hits_the_read_timeout(server: FakeServer, tokenizer_dir: Path) -> None:
    eng = engine_for(server, tokenizer_dir, readTimeoutMs=300)
    server.queue("/generate_stream", Stream(tokens(" a", " b"), delay=3.0))
    with pytest.raises(EngineError) as err:
        eng.generate(request(spm(eng)))
    assert err.value.kind == "timeout" and "readTimeoutMs=300" in str(err.value)


def test_unreachable_server_at_start_is_not_fatal(tokenizer_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    eng = engine_for(f"http://127.0.0.1:{port}", tokenizer_dir)
    assert eng.state is EngineState.READY and eng.error and "cannot reach" in eng.error
    prompt = spm(eng)
    with pytest.raises(EngineError) as err:
        eng.generate(request(prompt))
    assert err.value.kind == "connect"
    monkeypatch.setattr(remote_mod, "INFO_RETRY_S", 0.0)
    with FakeServer(tokenizer_dir, port=port) as server:  # the server comes up later
        server.queue("/generate_stream", Stream(tokens(" back"), finish="length"))
        result = eng.generate(request(prompt))
        assert result.text == " back" and eng.error is None and eng.model_id == server.model_id
        assert len(server.seen_on("/info")) == 1


def test_missing_url_is_a_clear_load_error() -> None:
    settings, _ = Settings().updated({"engine": "tgi"})
    with pytest.raises(EngineError) as err:
        create_engine(settings)
    assert "'url'" in str(err.value)


def test_url_credentials_are_never_shown(tokenizer_dir: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    eng = engine_for(f"http://alice:pa55word@127.0.0.1:{port}/generate_stream", tokenizer_dir)
    assert "pa55word" not in (eng.error or "") and f"127.0.0.1:{port}" in (eng.error or "")
    assert "pa55word" not in json.dumps(eng.status())


def test_settings_validation() -> None:
    _, errors = Settings().updated(
        {"connectTimeoutMs": 5, "readTimeoutMs": "soon", "maxRetries": 99, "caBundle": "/no/such/ca.pem"}
    )
    assert len(errors) == 4
    assert any("caBundle" in e for e in errors)


# -- the server's /tokenize when no tokenizer.json is at hand ---------------------------------
def test_without_a_local_tokenizer_prompts_use_the_servers_tokenize(server: FakeServer, tokenizer_dir: Path) -> None:
    reference = CodeTokenizer.load(str(tokenizer_dir))
    eng = engine_for(server)  # no `tokenizer` setting, and the server's model id is not in any cache
    assert eng.status()["tokenizer"] == "server"
    cases = [json.loads(line) for line in VECTORS.read_text().splitlines()[::20]]
    for case in cases:
        for fmt in ("psm", "spm"):
            ours = build_prompt(eng.tokenizer, case["prefix"], case["suffix"], fmt=fmt, budget=4096)
            assert ours.ids == case[f"{fmt}_ids"], case["source"]
    trimmed = build_prompt(eng.tokenizer, cases[0]["prefix"], cases[0]["suffix"], budget=200)
    assert trimmed.ids == build_prompt(reference, cases[0]["prefix"], cases[0]["suffix"], budget=200).ids
    assert server.seen_on("/tokenize")
    server.queue("/generate_stream", Stream(tokens(" ok"), finish="length"))
    assert eng.generate(request(trimmed)).text == " ok"
