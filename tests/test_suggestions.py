"""Several suggestions for an explicit request: the local engine's batch after one prefill,
the pipeline's de-duplication, typing through the one the user picked, and the cache."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from lsprotocol import types

from codellama_ls.config import Settings
from codellama_ls.engines.base import GenerationRequest
from codellama_ls.engines.kvcache import cache_length
from codellama_ls.engines.local import LocalEngine
from codellama_ls.pipeline.completion import Pipeline
from codellama_ls.prompt.fim import Prompt, build_prompt
from codellama_ls.prompt.tokens import CodeTokenizer
from codellama_ls.session import Session
from tests.support.fake_engine import FakeEngine

SOURCE = (Path(__file__).parent / "fixtures" / "kv_reuse_sample.py.txt").read_text(encoding="utf-8")
CURSOR = SOURCE.index("    def status")


# -- the local engine ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def engine(tiny_model: Path) -> LocalEngine:
    engine = LocalEngine(Settings(model=str(tiny_model), device="cpu"))
    engine.load()
    return engine


def _prompt(engine: LocalEngine, typed: str = "") -> Prompt:
    assert engine.tokenizer is not None
    return build_prompt(engine.tokenizer, SOURCE[:CURSOR] + typed, SOURCE[CURSOR:], fmt="spm", budget=400)


def _after(calls: int):
    """An early-stop check that ends its sample at its ``calls``-th token."""
    seen: list[str] = []

    def check(text: str) -> bool:
        seen.append(text)
        return len(seen) >= calls

    return check


def test_several_samples_share_one_prefill_and_the_first_is_the_greedy_answer(engine):
    prompt = _prompt(engine)
    engine.kv.clear()
    single = engine.generate(GenerationRequest(prompt=prompt, max_new_tokens=10, key="a"))
    engine.kv.clear()
    torch.manual_seed(1)
    several = engine.generate(GenerationRequest(prompt=prompt, max_new_tokens=10, key="a", samples=4))
    assert several.text == several.texts[0] == single.text
    assert several.stop_reason == single.stop_reason
    assert len(several.texts) == 4
    assert several.prefill_tokens == len(prompt.ids)  # one prefill, not four
    # The others are sampled (the default temperature for them is not 0): they differ from the first.
    assert any(text != single.text for text in several.texts[1:]), several.texts


def test_each_sample_ends_on_its_own(engine):
    engine.kv.clear()
    counts = iter([5, 2, 3, 4])
    request = GenerationRequest(
        prompt=_prompt(engine),
        max_new_tokens=20,
        key="a",
        samples=4,
        stop_check=lambda: _after(next(counts)),
    )
    result = engine.generate(request)
    assert result.stop_reason == "early"
    assert result.new_tokens == 5 + 2 + 3 + 4  # a finished sample decodes no further


def test_the_kept_cache_is_the_prompt_alone_and_typing_on_reuses_it(engine):
    engine.kv.clear()
    prompt = _prompt(engine)
    engine.generate(GenerationRequest(prompt=prompt, max_new_tokens=6, key="doc", samples=3))
    [entry] = engine.kv.entries("doc")
    assert entry.ids == prompt.ids and cache_length(entry.cache) == len(prompt.ids)
    assert {layer.keys.shape[0] for layer in entry.cache.layers} == {1}  # one row, as a single request keeps
    longer = _prompt(engine, "    def")
    reused = engine.generate(GenerationRequest(prompt=longer, max_new_tokens=8, key="doc"))
    assert reused.prefill_tokens < len(longer.ids) - len(prompt.ids) + 8
    engine.kv.clear()
    fresh = engine.generate(GenerationRequest(prompt=longer, max_new_tokens=8, key="doc"))
    assert fresh.prefill_tokens == len(longer.ids)
    assert (reused.text, reused.stop_reason) == (fresh.text, fresh.stop_reason)


def test_cancel_stops_every_sample(engine):
    engine.kv.clear()
    cancel = threading.Event()

    def cancel_at_third(text: str, seen: list[str] = []) -> bool:  # noqa: B006 - one list for the test
        seen.append(text)
        if len(seen) == 3:
            cancel.set()
        return False

    result = engine.generate(
        GenerationRequest(
            prompt=_prompt(engine),
            max_new_tokens=200,
            key="a",
            samples=3,
            cancel=cancel,
            stop_check=lambda: cancel_at_third,
        )
    )
    assert result.stop_reason == "cancelled"
    assert result.new_tokens <= 3 * 3  # every row stopped at the next step


# -- the pipeline -------------------------------------------------------------------------------
@pytest.fixture
def tok(tokenizer_dir) -> CodeTokenizer:
    return CodeTokenizer.load(str(tokenizer_dir))


def _service(tok: CodeTokenizer, script, **settings) -> Pipeline:
    service = Pipeline(Session(Settings(debounce_ms=0, **settings)))
    service.session.host.use(FakeEngine(tok, script))
    service.session.documents.open(
        types.TextDocumentItem(uri="file:///t.py", language_id="python", version=1, text="y = \n")
    )
    return service


HERE = types.Position(line=0, character=4)


async def test_an_explicit_request_gets_distinct_suggestions_greedy_first(tok):
    outputs = ["total(x)", "total(x)  ", "count(x)", "   ", "total(x)\n", "len(x)"]
    service = _service(tok, lambda request: outputs, suggestions=5)
    answers = await service.suggestions("file:///t.py", HERE, invoked=True)
    # Trailing blanks are post-processed away, so three samples are one suggestion; a blank one is none.
    assert [a.text for a in answers] == ["total(x)", "count(x)"]
    assert service.session.engine.requests[-1].samples == 5
    assert len({a.id for a in answers}) == 2
    # Typing asks for one suggestion only, and the engine is asked for one.
    service.session.caches.results.clear()
    service.session.caches.typed.forget("file:///t.py")
    typed = await service.suggestions("file:///t.py", HERE)
    assert [a.text for a in typed] == ["total(x)"]
    assert service.session.engine.requests[-1].samples == 1


async def test_the_cache_keeps_all_suggestions_and_typing_follows_the_one_picked(tok):
    service = _service(tok, lambda request: ["total(x)", "count(x) + 1", "total(y)"][: request.samples])
    uri = "file:///t.py"
    answers = await service.suggestions(uri, HERE, invoked=True)
    assert [a.text for a in answers] == ["total(x)", "count(x) + 1", "total(y)"]
    calls = service.session.engine.generations
    # Asked again before anything was typed: what is on screen, without the model.
    again = await service.suggestions(uri, HERE)
    assert [a.text for a in again] == [a.text for a in answers] and service.session.engine.generations == calls
    # Coming back after the screen showed something else: from the cache, the first for typing, all
    # three for an explicit request.
    service.session.caches.typed.forget(uri)
    assert [a.text for a in await service.suggestions(uri, HERE)] == ["total(x)"]
    assert len(await service.suggestions(uri, HERE, invoked=True)) == 3 and service.session.engine.generations == calls
    assert service.session.status()["lastSource"] == "cache"
    # The user cycled to the second one and types its start: its rest, without the model.
    service.session.change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(HERE, HERE), text="co")],
        )
    )
    rest = await service.suggestions(uri, types.Position(line=0, character=6))
    assert [a.text for a in rest] == ["unt(x) + 1"] and service.session.engine.generations == calls
    assert service.session.status()["lastSource"] == "typed"


async def test_fewer_cached_suggestions_than_asked_for_ask_the_model(tok):
    service = _service(tok, lambda request: ["total(x)", "count(x)", "len(x)"][: request.samples])
    uri = "file:///t.py"
    assert len(await service.suggestions(uri, HERE)) == 1
    assert len(await service.suggestions(uri, HERE, invoked=True)) == 3  # not the one cached for typing
    assert service.session.engine.generations == 2
