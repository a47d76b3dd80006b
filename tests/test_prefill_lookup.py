"""Chunked, interruptible prefill, warming and prompt-lookup decoding of the local engine.

Prompt lookup must give exactly the tokens of plain greedy decoding (the user sees the same
suggestion, sooner); a prefill stopped between chunks keeps what it computed; ``warm`` leaves
the next request at that place almost nothing to compute.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from codellama_ls.config import Settings
from codellama_ls.engines.base import GenerationRequest
from codellama_ls.engines.local import LocalEngine, lookup
from codellama_ls.prompt.fim import Prompt, build_prompt
from tests.support.tiny_model import VECTORS, needs_tokenizer

pytestmark = needs_tokenizer


@pytest.fixture(scope="module")
def engine(tiny_model: Path) -> LocalEngine:
    engine = LocalEngine(Settings(model=str(tiny_model), device="cpu"))
    engine.load()
    return engine


def _cases(count: int) -> list[dict[str, str]]:
    lines = VECTORS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[:: max(1, len(lines) // count)]][:count]


def _prompt(engine: LocalEngine, prefix: str, suffix: str, budget: int = 400) -> Prompt:
    assert engine.tokenizer is not None
    return build_prompt(engine.tokenizer, prefix, suffix, fmt="spm", budget=budget)


def _generate(engine: LocalEngine, prompt: Prompt, *, key: str = "", tokens: int = 24, **kw):
    engine.kv.clear()
    return engine.generate(GenerationRequest(prompt=prompt, max_new_tokens=tokens, key=key, **kw))


def test_lookup_drafts_follow_the_latest_match_of_the_longest_ngram() -> None:
    seq = [5, 6, 7, 8, 9, 1, 6, 7, 2, 3, 6, 7]
    assert lookup(seq, 3) == [2, 3, 6]  # "6 7" last seen before the end at index 6
    assert lookup([1, 2, 3, 4, 2, 3], 8) == [4, 2, 3]
    assert lookup([1, 2, 3], 4) == []  # nothing repeats
    assert lookup([5, 1, 2, 3, 1], 4) == []  # a single token is too weak a match
    assert lookup([4, 4, 4], 0) == []


def test_prompt_lookup_gives_plain_greedy_tokens_over_many_real_prompts(engine: LocalEngine) -> None:
    """60 reference FIM prompts: identical text and stop reason with and without lookup, and the
    drafts were really used (a test whose lookup never accepted a draft could not fail)."""
    drafted = accepted = 0
    cases = _cases(60)
    assert len(cases) == 60
    try:
        for case in cases:
            prompt = _prompt(engine, case["prefix"], case["suffix"])
            engine.prompt_lookup = False
            plain = _generate(engine, prompt)
            engine.prompt_lookup = True
            fast = _generate(engine, prompt)
            assert (fast.text, fast.stop_reason, fast.new_tokens) == (
                plain.text,
                plain.stop_reason,
                plain.new_tokens,
            ), case["source"]
            assert plain.drafted == 0
            drafted, accepted = drafted + fast.drafted, accepted + fast.accepted
    finally:
        engine.prompt_lookup = True
    assert accepted > 0 and drafted >= accepted


def test_prompt_lookup_keeps_the_early_stop_and_the_token_limit(engine: LocalEngine) -> None:
    case = _cases(3)[1]
    prompt = _prompt(engine, case["prefix"], case["suffix"])
    for tokens in (1, 2, 5, 13):
        engine.prompt_lookup = False
        plain = _generate(engine, prompt, tokens=tokens, stop_check=lambda: lambda text: len(text) >= 9)
        engine.prompt_lookup = True
        fast = _generate(engine, prompt, tokens=tokens, stop_check=lambda: lambda text: len(text) >= 9)
        assert (fast.text, fast.stop_reason) == (plain.text, plain.stop_reason)


def test_chunked_prefill_gives_the_one_pass_answer(engine: LocalEngine) -> None:
    case = _cases(5)[2]
    prompt = _prompt(engine, case["prefix"], case["suffix"])
    engine.prefill_chunk = 10_000
    try:
        whole = _generate(engine, prompt)
        engine.prefill_chunk = 64
        chunked = _generate(engine, prompt)
    finally:
        engine.prefill_chunk = 256
    assert whole.chunks == 1 and chunked.chunks == -(-len(prompt.ids) // 64)
    assert chunked.text == whole.text


def test_a_newer_request_stops_the_prefill_between_chunks_and_keeps_the_chunks_done(engine: LocalEngine) -> None:
    case = _cases(5)[3]
    prompt = _prompt(engine, case["prefix"], case["suffix"])
    assert len(prompt.ids) > 300, len(prompt.ids)
    engine.kv.clear()
    engine.prefill_chunk = 100
    stop = threading.Event()
    real_forward = engine.model.forward

    def forward(*args, **kwargs):  # the newer request arrives while the second chunk is computed
        out = real_forward(*args, **kwargs)
        if kwargs["input_ids"].shape[1] == 100 and forward.calls == 1:
            stop.set()
        forward.calls += 1
        return out

    forward.calls = 0
    engine.model.forward = forward
    try:
        stopped = engine.generate(GenerationRequest(prompt=prompt, max_new_tokens=8, key="a", cancel=stop))
    finally:
        engine.model.forward = real_forward
        engine.prefill_chunk = 256
    assert (stopped.stop_reason, stopped.interrupted, stopped.chunks, stopped.new_tokens) == ("cancelled", True, 2, 0)
    assert stopped.prefill_tokens == 200
    after = engine.generate(GenerationRequest(prompt=prompt, max_new_tokens=8, key="a"))
    assert after.prefill_tokens == len(prompt.ids) - 200  # started from the chunks the stopped one left
    engine.kv.clear()
    fresh = engine.generate(GenerationRequest(prompt=prompt, max_new_tokens=8, key="b"))
    assert after.text == fresh.text


def test_warm_leaves_the_next_request_one_token_to_compute(engine: LocalEngine) -> None:
    case = _cases(5)[4]
    prompt = _prompt(engine, case["prefix"], case["suffix"])
    engine.kv.clear()
    computed = engine.warm(GenerationRequest(prompt=prompt, max_new_tokens=8, key="w"))
    assert computed == len(prompt.ids)
    result = engine.generate(GenerationRequest(prompt=prompt, max_new_tokens=8, key="w"))
    assert result.prefill_tokens == 1
    stop = threading.Event()
    stop.set()
    engine.kv.clear()
    assert engine.warm(GenerationRequest(prompt=prompt, max_new_tokens=8, key="w", cancel=stop)) == 0
