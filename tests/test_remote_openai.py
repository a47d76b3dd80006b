"""The `openai` engine against a local server with the OpenAI /v1/completions stream."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from codellama_ls.engines.base import EngineError, EngineState, GenerationRequest, PromptTooLong
from codellama_ls.engines.openai import OpenAIEngine
from codellama_ls.pipeline.completion import generate_fitted
from codellama_ls.prompt.fim import Prompt, build_prompt
from tests.support.fake_remote import FakeServer, Reply, Stream, engine_for, reuse_tokenizers, tokens  # noqa: F401
from tests.support.tiny_model import VECTORS


@pytest.fixture
def server(tokenizer_dir: Path):
    with FakeServer(tokenizer_dir, model_id="codellama/CodeLlama-13b-hf") as srv:
        yield srv


@pytest.fixture
def engine(server: FakeServer, tokenizer_dir: Path) -> OpenAIEngine:
    eng = engine_for(server, tokenizer_dir, engine="openai")
    assert isinstance(eng, OpenAIEngine)
    yield eng
    eng.close()


def request(prompt: Prompt, **kw: Any) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, max_new_tokens=kw.pop("max_new_tokens", 32), **kw)


def vector_prompt(engine: OpenAIEngine) -> tuple[Prompt, list[int]]:
    case = json.loads(VECTORS.read_text(encoding="utf-8").splitlines()[7])
    prompt = build_prompt(engine.tokenizer, case["prefix"], case["suffix"], fmt="spm", budget=4096)
    return prompt, case["spm_ids"]


def test_prompt_is_sent_as_the_reference_ids(engine: OpenAIEngine, server: FakeServer) -> None:
    assert engine.state is EngineState.READY and engine.model_id == "codellama/CodeLlama-13b-hf"
    prompt, reference = vector_prompt(engine)
    server.queue("/v1/completions", Stream(tokens(" a", " =", " 1"), finish="length"))
    result = engine.generate(request(prompt, max_new_tokens=24))
    body = server.seen_on("/v1/completions")[-1].body
    assert body["prompt"] == reference
    assert body["model"] == "codellama/CodeLlama-13b-hf"
    assert body["max_tokens"] == 24 and body["stream"] is True and "<EOT>" in body["stop"]
    assert body["temperature"] == 0.0 and "top_p" not in body
    assert result.text == " a = 1" and result.stop_reason == "length"
    assert engine.prompts == {"ids": 1}


def test_sampling_parameters(engine: OpenAIEngine, server: FakeServer) -> None:
    prompt, _ = vector_prompt(engine)
    server.queue("/v1/completions", Stream(tokens(" a"), finish="stop"))
    result = engine.generate(request(prompt, temperature=0.7, top_p=0.8))
    body = server.seen_on("/v1/completions")[-1].body
    assert body["temperature"] == 0.7 and body["top_p"] == 0.8
    assert result.stop_reason == "eot"


def test_a_server_that_rejects_ids_gets_text_from_then_on(engine: OpenAIEngine, server: FakeServer) -> None:
    prompt = build_prompt(engine.tokenizer, "x = foo", "(a, b)\n", fmt="spm")
    rejected = Reply(422, {"error": "Input validation error: `prompt` must be a string", "error_type": "validation"})
    server.queue("/v1/completions", rejected, Stream(tokens(" bar"), finish="length"))
    server.queue("/v1/completions", Stream(tokens(" baz"), finish="length"))
    assert engine.generate(request(prompt)).text == " bar"
    assert engine.generate(request(prompt)).text == " baz"
    bodies = [s.body for s in server.seen_on("/v1/completions")]
    assert bodies[0]["prompt"] == prompt.ids
    assert bodies[1]["prompt"] == bodies[2]["prompt"] == "<PRE> <SUF> (a, b)\n <MID> x = foo"
    assert engine.accepts_ids is False and engine.prompts == {"adjusted": 2}


def test_stop_text_streamed_by_the_server_is_cut(engine: OpenAIEngine, server: FakeServer) -> None:
    prompt, _ = vector_prompt(engine)
    server.queue("/v1/completions", Stream(tokens(" x", " +", " 1", " <", "EOT", ">", " junk"), delay=0.02))
    result = engine.generate(request(prompt))
    assert result.text == " x + 1" and result.stop_reason == "eot"
    assert server.streams[-1].done.wait(10) and server.streams[-1].disconnected


def test_early_stop_closes_the_stream(engine: OpenAIEngine, server: FakeServer) -> None:
    prompt, _ = vector_prompt(engine)
    server.queue("/v1/completions", Stream(tokens(*[" x\n"] * 50), delay=0.05))
    result = engine.generate(request(prompt, stop_check=lambda: lambda text: "\n" in text))
    assert result.stop_reason == "early" and result.text == " x\n"
    log = server.streams[-1]
    assert log.done.wait(10) and log.disconnected and log.sent < log.total


def test_cancel_closes_the_stream(engine: OpenAIEngine, server: FakeServer) -> None:
    prompt, _ = vector_prompt(engine)
    server.queue("/v1/completions", Stream(tokens(" y"), first_delay=60.0))
    cancel = threading.Event()
    threading.Thread(target=lambda: server.stream_started.wait(20) and cancel.set(), daemon=True).start()
    result = engine.generate(request(prompt, cancel=cancel))
    assert result.stop_reason == "cancelled"
    assert server.streams[-1].done.wait(10) and server.streams[-1].disconnected and server.streams[-1].sent == 0


def test_retry_on_503_but_not_on_500(engine: OpenAIEngine, server: FakeServer) -> None:
    prompt, _ = vector_prompt(engine)
    server.queue("/v1/completions", Reply(503, {"error": {"message": "busy"}}, {"Retry-After": "0"}))
    server.queue("/v1/completions", Stream(tokens(" ok"), finish="length"))
    assert engine.generate(request(prompt)).text == " ok"
    server.queue("/v1/completions", Reply(500, {"error": {"message": "engine died", "type": "server_error"}}))
    with pytest.raises(EngineError) as err:
        engine.generate(request(prompt))
    assert err.value.kind == "server" and "engine died" in str(err.value)
    assert len(server.seen_on("/v1/completions")) == 3


def test_dropped_stream(engine: OpenAIEngine, server: FakeServer) -> None:
    prompt, _ = vector_prompt(engine)
    server.queue("/v1/completions", Stream(tokens(" a", " b", " c"), drop_after=1))
    with pytest.raises(EngineError) as err:
        engine.generate(request(prompt))
    assert err.value.kind == "stream"


def test_limits_from_vllm_model_list(server: FakeServer, tokenizer_dir: Path) -> None:
    server.defaults["/v1/models"] = Reply(
        body={"object": "list", "data": [{"id": "cl13", "object": "model", "max_model_len": 2048}]}
    )
    eng = engine_for(server, tokenizer_dir, engine="openai", maxNewTokens=128)
    assert eng.model_id == "cl13" and eng.context_length == 2048


def test_limits_from_llama_cpp_model_list(server: FakeServer, tokenizer_dir: Path) -> None:
    server.defaults["/v1/models"] = Reply(
        body={"object": "list", "data": [{"id": "tiny.gguf", "owned_by": "llamacpp", "meta": {"n_ctx": 512}}]}
    )
    eng = engine_for(server, tokenizer_dir, engine="openai", maxNewTokens=64)
    assert eng.model_id == "tiny.gguf" and eng.context_length == 512


# What llama-server (HTTP 400, its own error type) and vLLM say about a prompt longer than the context.
LLAMA_CPP_TOO_LONG = {
    "error": {
        "code": 400,
        "message": "request (1913 tokens) exceeds the available context size (512 tokens), try increasing it",
        "type": "exceed_context_size_error",
        "n_prompt_tokens": 1913,
        "n_ctx": 512,
    }
}
VLLM_TOO_LONG = {
    "object": "error",
    "message": "This model's maximum context length is 512 tokens. However, you requested 1945 tokens "
    "(1913 in the messages, 32 in the completion). Please reduce the length of the messages or completion.",
    "type": "BadRequestError",
    "code": 400,
}


@pytest.mark.parametrize("answer", [LLAMA_CPP_TOO_LONG, VLLM_TOO_LONG], ids=["llama.cpp", "vllm"])
def test_a_prompt_too_long_is_fitted_and_sent_again_as_ids(
    engine: OpenAIEngine, server: FakeServer, answer: dict[str, Any]
) -> None:
    """A server whose context is smaller than it said (or did not say) refuses a long prompt: the
    engine learns the context and asks for a prompt that fits with room for the answer, which the
    pipeline builds and it sends again as ids; it does not take the refusal for "ids not accepted"
    and never falls back to text."""
    prompt, reference = vector_prompt(engine)
    assert len(prompt.ids) > 512
    server.queue("/v1/completions", Reply(400, answer), Stream(tokens(" bar"), finish="length"))
    server.queue("/v1/completions", Stream(tokens(" baz"), finish="length"))
    assert generate_fitted(engine, request(prompt), engine.settings).text == " bar"
    bodies = [s.body for s in server.seen_on("/v1/completions")]
    assert bodies[0]["prompt"] == reference
    fitted = bodies[1]["prompt"]
    assert isinstance(fitted, list) and len(fitted) + bodies[1]["max_tokens"] <= 512 and bodies[1]["max_tokens"] == 32
    assert fitted[:2] == reference[:2] and fitted[-1] == reference[-1]  # BOS ▁<PRE> ... ▁<MID>, cut in between
    assert engine.accepts_ids is True and engine.context_length == 512
    # The next prompt is built within the learnt context by the pipeline; the engine cuts no prompt
    # itself: one built before is refused before it is sent, and the pipeline builds it again.
    with pytest.raises(PromptTooLong) as raised:
        engine.generate(request(prompt))
    assert raised.value.limit == 512 - 32 and len(server.seen_on("/v1/completions")) == 2
    assert generate_fitted(engine, request(prompt), engine.settings).text == " baz"
    third = server.seen_on("/v1/completions")[2].body
    assert isinstance(third["prompt"], list) and len(third["prompt"]) + third["max_tokens"] <= 512
    assert third["max_tokens"] == 32
