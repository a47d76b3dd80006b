"""The pipeline in-process with a scripted engine: placement, line endings, faults."""

from __future__ import annotations

import asyncio
import threading

import pytest
from lsprotocol import types

from codellama_ls import postprocess
from codellama_ls.config import Settings
from codellama_ls.documents import Document
from codellama_ls.engines.base import EngineError, EngineState, GenerationRequest
from codellama_ls.notify import Notifier
from codellama_ls.pipeline.completion import Pipeline, edit
from codellama_ls.prompt.tokens import CodeTokenizer
from codellama_ls.session import Session
from tests.support.fake_engine import FakeEngine


@pytest.fixture
def tok(tokenizer_dir) -> CodeTokenizer:
    return CodeTokenizer.load(str(tokenizer_dir))


def service_with(tok: CodeTokenizer, outputs: list, shown: list | None = None, max_new_tokens: int = 128) -> Pipeline:
    notifier = Notifier(lambda message, kind: shown.append((kind, message)) if shown is not None else None)
    service = Pipeline(Session(Settings(debounce_ms=0, max_new_tokens=max_new_tokens), notifier))
    service.session.host.use(FakeEngine(tok, outputs))
    return service


def open_text(service: Pipeline, text: str, uri: str = "file:///t.py") -> str:
    service.session.documents.open(types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text))
    return uri


async def test_crlf_suggestions_come_back_with_crlf(tok):
    service = service_with(tok, ["if x:\n        return 1\n    return 0"])
    uri = open_text(service, "def f(x):\r\n    \r\n")
    answer = await service.suggest(uri, types.Position(line=1, character=4))
    assert answer is not None
    assert answer.text == "if x:\r\n        return 1\r\n    return 0"
    # The model saw LF text only.
    req = service.session.engine.requests[0]
    assert "\r" not in req.prompt.prefix + req.prompt.suffix


async def test_mid_line_is_single_line_and_closing_bracket_not_doubled(tok):
    service = service_with(tok, ['"hello")\nprint(2)'])
    uri = open_text(service, "print()\n")
    answer = await service.suggest(uri, types.Position(line=0, character=6))
    # The suggestion ends with the `)` and its range covers the one already there.
    assert answer is not None and answer.text == '"hello")'
    assert (answer.line, answer.start, answer.end) == (0, 6, 7)
    # Decoding stopped at the first newline instead of running on.
    assert service.session.engine.history[-1].stop_reason == "early"


async def test_suggestion_that_closes_its_own_bracket_keeps_it(tok):
    service = service_with(tok, ["len(x)"])
    uri = open_text(service, "print()\n")
    answer = await service.suggest(uri, types.Position(line=0, character=6))
    assert answer is not None and answer.text == "len(x))" and answer.end == 7


async def test_token_limit_drops_the_half_line(tok):
    # The model echoes the code after the cursor and the token limit cuts it mid-line.
    text = "def main():\n    x = load()\n    \n    y = process(x)\n"
    out = "x = clean(x)\n    y = process(x)\n"
    limit = len("x = clean(x)\n    y = proc")
    service = service_with(tok, [out, out], max_new_tokens=limit)
    uri = open_text(service, text)
    answer = await service.suggest(uri, types.Position(line=2, character=4))
    assert service.session.engine.history[-1].stop_reason == "length"
    assert answer is not None and answer.text == "x = clean(x)"
    # The same answer, cut by the limit and placed directly (as `codellama-ls eval` and the tests do).
    cursor = service.session.documents.get(uri).cursor(types.Position(line=2, character=4), service.session.encoding)
    result = service.session.engine.history[-1]
    suggestion = postprocess.postprocess(result.text, postprocess.Context.from_cursor(cursor), truncated=True)
    placed = None if suggestion is None else edit(cursor, suggestion, result)
    assert placed is not None and placed.text == "x = clean(x)"


async def test_blank_output_is_no_suggestion(tok):
    service = service_with(tok, ["   \n  "])
    uri = open_text(service, "x = \n")
    assert await service.suggest(uri, types.Position(line=0, character=4)) is None


async def test_oom_is_reported_once_and_serving_continues(tok):
    shown: list = []
    oom = EngineError("The GPU ran out of memory while generating; the suggestion was skipped.", "oom")
    service = service_with(tok, [oom, oom, "10"], shown)
    uri = open_text(service, "x = \n")
    pos = types.Position(line=0, character=4)
    assert await service.suggest(uri, pos) is None
    assert await service.suggest(uri, pos) is None
    assert [kind for kind, _ in shown] == [types.MessageType.Warning]
    answer = await service.suggest(uri, pos)
    assert answer is not None and answer.text == "10"


async def test_disabled_makes_no_model_call(tok):
    service = service_with(tok, ["1"])
    service.session.configure({"enable": False})
    uri = open_text(service, "x = \n")
    assert await service.suggest(uri, types.Position(line=0, character=4)) is None
    assert service.session.engine.generations == 0


async def test_superseded_request_answers_empty_at_once(tok):
    release = threading.Event()

    class Slow(FakeEngine):
        def generate(self, request):
            while not request.cancel.is_set() and not release.is_set():
                release.wait(0.01)
            return super().generate(request)

    service = service_with(tok, [])
    service.session.host.use(Slow(tok, ["first", "second"]))
    uri = open_text(service, "x = \n")
    pos = types.Position(line=0, character=4)
    first = asyncio.ensure_future(service.suggest(uri, pos))
    await asyncio.sleep(0.1)
    second = asyncio.ensure_future(service.suggest(uri, pos))
    assert await asyncio.wait_for(first, 5) is None  # the old one gives way at once
    release.set()
    answer = await asyncio.wait_for(second, 5)
    assert answer is not None and answer.text == "second"


async def test_requests_while_loading_answer_empty(tok):
    service = service_with(tok, ["never"])
    service.session.engine.state = EngineState.LOADING
    uri = open_text(service, "x = \n")
    assert await service.suggest(uri, types.Position(line=0, character=4)) is None
    assert service.session.engine.generations == 0


async def test_quantization_without_cuda_is_a_clear_load_error(tiny_model):
    shown: list = []
    service = Pipeline(
        Session(
            Settings(model=str(tiny_model), quantization="4bit", device="cpu"),
            Notifier(lambda message, kind: shown.append(message)),
        )
    )
    await service.session.load_engine()
    assert service.session.engine.state is EngineState.FAILED
    assert len(shown) == 1 and "quantization" in shown[0] and "CUDA" in shown[0]


async def test_local_engine_stops_at_eot_and_counts_tokens(tiny_model):
    from codellama_ls.engines.local import LocalEngine

    engine = LocalEngine(Settings(model=str(tiny_model)))
    engine.load()
    assert engine.tokenizer is not None and engine.context_length == 4096
    cursor = Document("file:///x", "def f():\n    ").cursor(types.Position(line=1, character=4), "utf-16")
    prompt = service_with(engine.tokenizer, []).build(cursor, engine.tokenizer)
    result = engine.generate(GenerationRequest(prompt=prompt, max_new_tokens=5))
    assert result.new_tokens == 5 and result.stop_reason == "length" and result.prefill_tokens == len(prompt.ids)
    # Greedy decoding is deterministic.
    again = engine.generate(GenerationRequest(prompt=prompt, max_new_tokens=5))
    assert again.text == result.text
    # A stop check ends decoding after the first token.
    early = engine.generate(GenerationRequest(prompt=prompt, max_new_tokens=5, stop_check=lambda: lambda text: True))
    assert early.new_tokens == 1 and early.stop_reason == "early"
    # A raised cancel flag ends it before any token.
    cancel = threading.Event()
    cancel.set()
    stopped = engine.generate(GenerationRequest(prompt=prompt, max_new_tokens=5, cancel=cancel))
    assert stopped.new_tokens == 0 and stopped.stop_reason == "cancelled"


def test_load_error_names_what_a_model_folder_lacks(tmp_path):
    from codellama_ls.engines.local import missing_model_hint

    hint = missing_model_hint(str(tmp_path))
    assert "Model folder" in hint and "config.json" in hint and "weights" in hint
    assert "hf download codellama/CodeLlama-7b-hf" in missing_model_hint("codellama/CodeLlama-7b-hf")


async def test_work_after_an_answer_that_fails_is_logged_not_shown(tok):
    """A prefetch whose prompt cannot be built (a server's /tokenize gone) costs only itself: the user sees
    no message for it; the next request meets the fault and says so, once."""
    shown: list = []
    service = service_with(tok, ["value"], shown)
    engine = service.session.engine
    engine.keeps_prompts = True  # so a prefetch follows the answer

    class Gone:
        def __init__(self, inner: CodeTokenizer) -> None:
            self.inner = inner

        def __getattr__(self, name: str):
            if name.startswith("encode"):

                def fail(*args, **kwargs):
                    raise EngineError("codellama-ls: the connection to the server failed during /tokenize", "stream")

                return fail
            return getattr(self.inner, name)

    uri = open_text(service, "total = \n")
    answer = await service.suggest(uri, types.Position(line=0, character=8))
    assert answer is not None
    engine.tokenizer = Gone(tok)  # before the prefetch builds its prompt (just after the answer went out)
    await asyncio.sleep(0.1)
    assert shown == [] and service.session.counters.prefetches == 0
    assert await service.suggest(uri, types.Position(line=1, character=0)) is None  # a request needs the server
    assert [message for _, message in shown] == ["codellama-ls: the connection to the server failed during /tokenize"]
