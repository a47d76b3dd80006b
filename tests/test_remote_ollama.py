"""The `ollama` engine against a local stand-in written from Ollama's API documentation."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from codellama_ls.config import Settings
from codellama_ls.engines import create_engine
from codellama_ls.engines import remote as remote_mod
from codellama_ls.engines.base import SAMPLE_TEMPERATURE, SAMPLE_TOP_P, EngineError, EngineState, GenerationRequest
from codellama_ls.engines.ollama import OllamaEngine, hub_id
from codellama_ls.prompt.chat import Message, build_chat_prompt, server_text
from codellama_ls.prompt.fim import Prompt, build_prompt, prompt_budget
from codellama_ls.prompt.text import fim_text
from tests.support.fake_remote import (  # noqa: F401
    FakeServer,
    Reply,
    Stream,
    engine_for,
    reuse_tokenizers,
    spm,
    tokens,
)

ROUTE = "/api/generate"


def request(prompt: Prompt, **kw: Any) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, max_new_tokens=kw.pop("max_new_tokens", 32), **kw)


def ollama(server: FakeServer | str, tokenizer_dir: Path | None = None, **changes: Any) -> OllamaEngine:
    eng = engine_for(server, tokenizer_dir, engine="ollama", **changes)
    assert isinstance(eng, OllamaEngine)
    return eng


@pytest.fixture
def server(tokenizer_dir: Path):
    with FakeServer(tokenizer_dir) as srv:
        yield srv


@pytest.fixture
def engine(server: FakeServer, tokenizer_dir: Path):
    eng = ollama(server, tokenizer_dir)
    yield eng
    eng.close()


# -- the request -----------------------------------------------------------------------------
def test_request_is_the_raw_text_prompt_streamed_with_stop_and_counts(engine: OllamaEngine, server: FakeServer) -> None:
    prompt = spm(engine)
    server.queue(ROUTE, Stream(tokens(" a", " +", " b"), "stop", prompt_eval_count=7))
    result = engine.generate(request(prompt, max_new_tokens=40))
    body = server.generations()[-1].body
    assert body["model"] == "codellama:7b-code"  # 'model' left at its default
    assert body["raw"] is True and body["stream"] is True
    assert body["prompt"] == "<PRE> <SUF>\n <MID> def add(a, b):\n    return "
    assert server.token_ids(body["prompt"]) == prompt.ids  # Ollama's tokenizer gets the reference ids
    options = body["options"]
    assert options["num_predict"] == 40 and options["stop"] == ["<EOT>"]
    assert options["temperature"] == 0 and "top_p" not in options  # greedy
    assert "keep_alive" not in body  # the server's own default
    assert result.text == " a + b" and result.stop_reason == "eot"
    # Counts from the final chunk: 7 prompt tokens evaluated (a cache hit), 3 generated.
    assert (result.prefill_tokens, result.new_tokens, result.prompt_tokens) == (7, 3, len(prompt.ids))
    assert engine.history[-1] is result and engine.status()["last"]["prefillTokens"] == 7
    assert engine.prompts["exact"] == 1 and engine.status()["tokenizer"] == "setting"


def test_url_defaults_to_the_local_ollama() -> None:
    settings, errors = Settings().updated({"engine": "ollama"})
    assert not errors
    eng = create_engine(settings)
    assert isinstance(eng, OllamaEngine) and eng.http.shown == "http://127.0.0.1:11434"
    pasted, _ = settings.updated({"url": "http://gpu-box:11434/api/generate"})
    assert OllamaEngine(pasted).http.shown == "http://gpu-box:11434"


def test_model_and_context_come_from_api_show(server: FakeServer, tokenizer_dir: Path) -> None:
    server.ollama_models["codellama:13b-code"] = 3000
    eng = ollama(server, tokenizer_dir, model="codellama:13b-code", maxNewTokens=64, maxPromptTokens=4000)
    assert eng.state is EngineState.READY and eng.model_id == "codellama:13b-code"
    assert [s.body for s in server.seen_on("/api/show")] == [{"model": "codellama:13b-code"}]
    assert eng.context_length == 3000 and prompt_budget(4000, eng.context_length, 64) == 3000 - 64
    server.defaults[ROUTE] = Stream(tokens(" x"), "length")
    eng.generate(request(spm(eng)))
    eng.generate(request(spm(eng)))
    assert len(server.seen_on("/api/show")) == 1  # checked once
    assert server.generations()[-1].body["options"]["num_ctx"] == 3000  # capped at the model's context


def test_num_ctx_has_room_for_the_whole_prompt_and_stays_the_same(server: FakeServer, tokenizer_dir: Path) -> None:
    eng = ollama(server, tokenizer_dir, maxPromptTokens=3000, maxNewTokens=100)
    long_prefix = "".join(f"value_{i} = compute({i}, 'text {i}')\n" for i in range(400))
    assert eng.tokenizer is not None
    long_prompt = build_prompt(eng.tokenizer, long_prefix, "\n", fmt="spm", budget=2900)
    assert len(long_prompt.ids) > 2048  # longer than Ollama's default context
    server.defaults[ROUTE] = Stream(tokens(" x"), "length")
    eng.generate(request(long_prompt, max_new_tokens=100))
    eng.generate(request(spm(eng), max_new_tokens=100))
    sent = [s.body["options"]["num_ctx"] for s in server.generations()]
    # prompt budget + the longer of maxNewTokens / instructMaxNewTokens (512), rounded up to 256.
    assert sent == [3584, 3584]  # the same for every prompt: Ollama reloads the model when it changes
    assert server.truncated == []  # no prompt lost its start
    assert len(server.token_ids(server.generations()[0].body["prompt"])) + 100 <= 3584


def test_without_num_ctx_the_stand_in_cuts_long_prompts(server: FakeServer) -> None:
    """The stand-in does what the engine guards against (else the test above could not fail)."""
    server.defaults[ROUTE] = Stream(tokens(" x"), "length")
    eng = ollama(server)
    prompt = "x = 1\n" * 2000
    body = {"model": "codellama:7b-code", "prompt": prompt, "raw": True, "stream": False}
    eng.http.send("POST", ROUTE, body).close()
    assert server.truncated == [len(server.token_ids(prompt))]


def test_a_modelfile_num_ctx_that_is_big_enough_is_kept(server: FakeServer, tokenizer_dir: Path) -> None:
    server.ollama_parameters = 'num_ctx 8192\nstop "<EOT>"'
    eng = ollama(server, tokenizer_dir)
    server.queue(ROUTE, Stream(tokens(" x"), "length"))
    eng.generate(request(spm(eng)))
    assert server.generations()[-1].body["options"]["num_ctx"] == 8192  # no reload for a different value


@pytest.mark.parametrize(
    ("setting", "sent"), [("5m", "5m"), ("-1", -1), ("0", 0), (300, 300), ("1h30m", "1h30m"), ("2.5", 2.5)]
)
def test_keep_alive_is_sent_as_ollama_parses_it(
    server: FakeServer, tokenizer_dir: Path, setting: Any, sent: Any
) -> None:
    eng = ollama(server, tokenizer_dir, keepAlive=setting)
    server.queue(ROUTE, Stream(tokens(" x"), "length"))
    eng.generate(request(spm(eng)))
    assert server.generations()[-1].body["keep_alive"] == sent


@pytest.mark.parametrize("bad", ["5 minutes", "forever", "m5", True, "1d"])
def test_bad_keep_alive_is_rejected_by_name(bad: Any) -> None:
    settings, errors = Settings().updated({"keepAlive": bad})
    assert settings.keep_alive is None and len(errors) == 1 and "'keepAlive'" in errors[0]


def test_sampling_and_several_suggestions_are_parallel_requests(engine: OllamaEngine, server: FakeServer) -> None:
    server.defaults[ROUTE] = Stream(tokens(" y"), "stop")
    result = engine.generate(request(spm(engine), samples=3))
    assert len(result.texts) == 3 and len(server.generations()) == 3
    options = sorted((s.body["options"] for s in server.generations()), key=lambda o: o["temperature"])
    assert options[0]["temperature"] == 0 and "top_p" not in options[0]
    assert all(o["temperature"] == SAMPLE_TEMPERATURE and o["top_p"] == SAMPLE_TOP_P for o in options[1:])
    engine.generate(request(spm(engine), temperature=0.4, top_p=0.9))
    last = server.generations()[-1].body["options"]
    assert last["temperature"] == 0.4 and last["top_p"] == 0.9


def test_chat_prompt_goes_raw_in_metas_format(engine: OllamaEngine, server: FakeServer) -> None:
    assert engine.tokenizer is not None
    messages = [Message("system", "Answer with code."), Message("user", "Write add(a, b)."), Message("assistant", "ok")]
    messages.append(Message("user", "Now sub."))
    chat = build_chat_prompt(engine.tokenizer, messages, 1000)
    server.queue(ROUTE, Stream(tokens(" def", " sub"), "stop"))
    result = engine.generate(request(chat, max_new_tokens=200))
    body = server.generations()[-1].body
    assert body["raw"] is True and body["prompt"] == server_text(chat)
    assert body["prompt"].startswith("[INST] <<SYS>>\nAnswer with code.\n<</SYS>>\n\nWrite add(a, b). [/INST]")
    assert "</s><s>[INST] Now sub. [/INST]" in body["prompt"]
    assert "stop" not in body["options"] and body["options"]["num_predict"] == 200
    assert result.text == " def sub" and engine.prompts["chatExact"] == 1


# -- the model is not pulled ---------------------------------------------------------------------
def test_a_model_that_is_not_pulled_names_the_command_and_the_models_there(
    server: FakeServer, tokenizer_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.ollama_models = {"llama3.1:8b": 131072, "codellama:13b-code": 16384}
    eng = ollama(server, tokenizer_dir)
    assert eng.state is EngineState.READY  # the server keeps answering
    with pytest.raises(EngineError) as err:
        eng.generate(request(spm(eng)))
    message = str(err.value)
    assert err.value.kind == "model-missing"
    assert "`ollama pull codellama:7b-code`" in message and "codellama:13b-code, llama3.1:8b" in message
    assert eng.error == message and server.seen_on(ROUTE) == []  # not even a load of the model
    # Once pulled, suggestions start without a restart.
    monkeypatch.setattr(remote_mod, "INFO_RETRY_S", 0.0)
    server.ollama_models["codellama:7b-code"] = 16384
    server.queue(ROUTE, Stream(tokens(" ok"), "stop"))
    assert eng.generate(request(spm(eng))).text == " ok" and eng.error is None


def test_the_model_named_in_settings_is_the_one_to_pull(server: FakeServer, tokenizer_dir: Path) -> None:
    server.ollama_models = {}
    eng = ollama(server, tokenizer_dir, model="codellama:13b-code-q4_K_M")
    with pytest.raises(EngineError) as err:
        eng.generate(request(spm(eng)))
    assert "`ollama pull codellama:13b-code-q4_K_M`" in str(err.value) and "one that is there: none" in str(err.value)


def test_a_model_removed_mid_session_is_reported_and_checked_again(engine: OllamaEngine, server: FakeServer) -> None:
    server.ollama_models.pop("codellama:7b-code")
    with pytest.raises(EngineError) as err:
        engine.generate(request(spm(engine)))
    assert err.value.kind == "model-missing" and "ollama pull codellama:7b-code" in str(err.value)
    shows = len(server.seen_on("/api/show"))
    server.ollama_models["codellama:7b-code"] = 16384
    server.queue(ROUTE, Stream(tokens(" ok"), "stop"))
    assert engine.generate(request(spm(engine))).text == " ok"
    assert len(server.seen_on("/api/show")) == shows + 1


def test_a_server_that_is_not_ollama_is_named_so(tokenizer_dir: Path) -> None:
    with FakeServer(tokenizer_dir) as server:
        server.queue("/api/show", Reply(404, {"error": "not found"}))
        server.queue("/api/tags", Reply(404, {"error": "not found"}))
        eng = ollama(server, tokenizer_dir)
        with pytest.raises(EngineError) as err:
            eng.generate(request(spm(eng)))
        assert err.value.kind == "protocol" and "not an Ollama server" in str(err.value)


# -- the stand-in's error answers ----------------------------------------------------------------
def test_a_prompt_of_token_ids_is_refused(engine: OllamaEngine, server: FakeServer) -> None:
    body = {"model": "codellama:7b-code", "prompt": [1, 32007, 32008], "raw": True}
    with pytest.raises(EngineError) as err:
        engine.http.json("POST", ROUTE, body)
    assert err.value.kind == "validation" and "cannot unmarshal array" in str(err.value)
    server.queue(ROUTE, Stream(tokens(" a"), "stop"))
    engine.generate(request(spm(engine)))
    assert isinstance(server.generations()[-1].body["prompt"], str)  # the engine sends text


def test_error_line_inside_the_stream(engine: OllamaEngine, server: FakeServer) -> None:
    event = {"error": "an error was encountered while running the model: CUDA error: out of memory"}
    server.queue(ROUTE, Stream(tokens(" a"), error_event=event))
    with pytest.raises(EngineError) as err:
        engine.generate(request(spm(engine)))
    assert err.value.kind == "server" and "out of memory" in str(err.value) and "Ollama at" in str(err.value)


def test_stream_cut_off_mid_answer(engine: OllamaEngine, server: FakeServer) -> None:
    server.queue(ROUTE, Stream(tokens(" a", " b", " c", " d"), drop_after=2))
    with pytest.raises(EngineError) as err:
        engine.generate(request(spm(engine)))
    assert err.value.kind == "stream"
    server.queue(ROUTE, Stream(tokens(" a", " b"), final=False))  # ends cleanly, without done: true
    with pytest.raises(EngineError) as err:
        engine.generate(request(spm(engine)))
    assert err.value.kind == "stream" and "ended before" in str(err.value)


# -- cancellation --------------------------------------------------------------------------------
def test_early_stop_and_cancel_close_the_stream(engine: OllamaEngine, server: FakeServer) -> None:
    server.queue(ROUTE, Stream(tokens(*[" x"] * 60), delay=0.05))
    result = engine.generate(request(spm(engine), stop_check=lambda: lambda text: text.count("x") >= 3))
    assert result.stop_reason == "early" and result.text == " x x x"
    assert server.streams[-1].done.wait(10) and server.streams[-1].disconnected
    assert server.streams[-1].sent < server.streams[-1].total

    server.stream_started.clear()
    server.queue(ROUTE, Stream(tokens(*[" y"] * 20), first_delay=60.0))
    cancel = threading.Event()
    threading.Thread(target=lambda: server.stream_started.wait(20) and cancel.set(), daemon=True).start()
    result = engine.generate(request(spm(engine), cancel=cancel))
    assert result.stop_reason == "cancelled" and result.text == ""
    assert server.streams[-1].done.wait(10) and server.streams[-1].disconnected and server.streams[-1].sent == 0


# -- tokenizer -----------------------------------------------------------------------------------
def test_without_a_tokenizer_the_prompt_is_plain_text_cut_by_estimate(server: FakeServer) -> None:
    server.ollama_models["my-coder:latest"] = 16384  # a model of the user's own: no known tokenizer
    eng = ollama(server, model="my-coder:latest")
    assert eng.status()["tokenizer"] == "estimate"
    notices = [m for k, m in eng.take_notices() if k == "tokenizer-estimate"]
    assert len(notices) == 1 and "my-coder:latest" in notices[0] and "'tokenizer'" in notices[0]
    prompt = spm(eng)
    server.queue(ROUTE, Stream(tokens(" a"), "stop"))
    eng.generate(request(prompt))
    assert server.generations()[-1].body["prompt"] == fim_text("spm", prompt.prefix, prompt.suffix)


def test_a_tag_without_infilling_gets_the_prefix_only(server: FakeServer) -> None:
    server.ollama_models["codellama:7b-python"] = 16384
    eng = ollama(server, model="codellama:7b-python")  # no tokenizer at hand: the tag decides
    assert eng.status()["tokenizer"] == "estimate"
    prompt = spm(eng, "def add(a, b):\n    return ", "\n\nprint(add(1, 2))\n")
    assert prompt.format == "prefix"
    server.queue(ROUTE, Stream(tokens(" a"), "stop"))
    eng.generate(request(prompt))
    assert server.generations()[-1].body["prompt"] == "def add(a, b):\n    return "


@pytest.mark.parametrize(
    ("tag", "hub"),
    [
        ("codellama:7b-code", "codellama/CodeLlama-7b-hf"),
        ("codellama:13b-code-q4_K_M", "codellama/CodeLlama-13b-hf"),
        ("codellama:7b-instruct", "codellama/CodeLlama-7b-Instruct-hf"),
        ("codellama:34b-python", "codellama/CodeLlama-34b-Python-hf"),
        ("codellama", "codellama/CodeLlama-7b-Instruct-hf"),
        ("codellama:code", "codellama/CodeLlama-7b-hf"),
        ("registry.ollama.ai/library/codellama:13b-instruct", "codellama/CodeLlama-13b-Instruct-hf"),
        ("codellama:7b-custom", None),
        ("qwen2.5-coder:7b", None),
    ],
)
def test_hub_id_of_an_ollama_tag(tag: str, hub: str | None) -> None:
    assert hub_id(tag) == hub


# -- loading the model ahead ---------------------------------------------------------------------
def test_the_model_is_loaded_ahead_with_the_same_num_ctx(server: FakeServer, tokenizer_dir: Path) -> None:
    eng = ollama(server, tokenizer_dir, keepAlive="-1")
    server.queue(ROUTE, Stream(tokens(" x"), "length"))
    eng.generate(request(spm(eng)))
    preload, generation = (s.body for s in server.seen_on(ROUTE))
    assert "prompt" not in preload and preload["model"] == "codellama:7b-code" and preload["keep_alive"] == -1
    assert preload["options"]["num_ctx"] == generation["options"]["num_ctx"]  # Ollama does not load it twice


def test_a_suggestion_waits_for_the_load_and_a_cancel_ends_the_wait(server: FakeServer, tokenizer_dir: Path) -> None:
    server.load_delay = 1.0
    eng = ollama(server, tokenizer_dir)
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    assert eng.generate(request(spm(eng), cancel=cancel)).stop_reason == "cancelled"
    assert server.generations() == []  # nothing was sent while Ollama was loading
    server.queue(ROUTE, Stream(tokens(" x"), "length"))
    assert eng.generate(request(spm(eng))).text == " x"  # waits for the load, then generates
    assert len(server.generations()) == 1
