"""KV-cache prefix reuse: the same greedy output as a full prefill, fewer tokens computed, bounded memory."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from codellama_ls.config import Settings
from codellama_ls.engines.base import GenerationRequest
from codellama_ls.engines.kvcache import MIN_REUSE, PER_DOCUMENT, cache_length, common_prefix
from codellama_ls.engines.local import LocalEngine
from codellama_ls.prompt.fim import Prompt, build_prompt, next_cut_prompt

# A frozen copy of an earlier completion.py: real code whose cursor places the tests know.
SOURCE = (Path(__file__).parent / "fixtures" / "kv_reuse_sample.py.txt").read_text(encoding="utf-8")


def _engine(model: Path, **settings) -> LocalEngine:
    engine = LocalEngine(Settings(model=str(model), device="cpu", **settings))
    engine.load()
    return engine


def _prompt(engine: LocalEngine, cursor: int, typed: str = "", budget: int = 500) -> Prompt:
    assert engine.tokenizer is not None
    return build_prompt(
        engine.tokenizer, SOURCE[:cursor] + typed, SOURCE[cursor:], fmt="spm", budget=budget, stable_cut=True
    )


def _run(engine: LocalEngine, prompt: Prompt, key: str, stop_after: int | None = None):
    stop = None if stop_after is None else (lambda text, n=stop_after: len(text) >= n)
    return engine.generate(GenerationRequest(prompt=prompt, max_new_tokens=8, key=key, stop_check=lambda: stop))


@pytest.fixture(scope="module")
def loaded(tiny_model):
    return _engine(tiny_model), _engine(tiny_model, kv_cache_documents=0)


@pytest.fixture
def engines(loaded):
    """The engines with default limits and empty caches."""
    for engine in loaded:
        engine.kv.clear()
    yield loaded
    loaded[0].settings = Settings(model=loaded[0].settings.model, device="cpu")


def _limit(engine: LocalEngine, **limits) -> LocalEngine:
    engine.settings = dataclasses.replace(engine.settings, **limits)  # read at every generation
    return engine


def test_reuse_gives_the_output_of_a_full_prefill(engines):
    reuse, fresh = engines
    here, there = SOURCE.index("    async def suggest"), SOURCE.index("    def status")
    typed = "    def helper(self, uri: str) -> None:\n        return"
    steps = [("a", here, typed[:i]) for i in range(0, len(typed), 9)]  # typing at the cursor
    steps += [("a", there, ""), ("b", here, ""), ("a", there, "x"), ("a", there, "x"), ("a", here, typed)]
    previous: dict[str, list[list[int]]] = {}  # each document's last prompts
    computed = total = 0
    for number, (doc, cursor, text) in enumerate(steps):
        prompt = _prompt(reuse, cursor, text)
        stop_after = 5 if number % 3 == 0 else None  # an early stop leaves generated tokens to crop
        got, want = _run(reuse, prompt, doc, stop_after), _run(fresh, prompt, doc, stop_after)
        assert (got.text, got.stop_reason) == (want.text, want.stop_reason), f"step {number}"
        assert want.prefill_tokens == len(prompt.ids)
        # what the cache keeps (kvcache.py): the prompts of each document's last places; the one
        # sharing the most is reused and replaced by the new prompt
        kept = previous.get(doc, [])
        shared = [min(common_prefix(ids, prompt.ids), len(prompt.ids) - 1) for ids in kept]
        best = max(range(len(kept)), key=shared.__getitem__, default=None)
        reused = shared[best] if best is not None and shared[best] >= MIN_REUSE else 0
        assert got.prefill_tokens == len(prompt.ids) - reused
        if reused:
            kept.pop(best)
        previous[doc] = [*kept, prompt.ids][-PER_DOCUMENT:]
        computed, total = computed + got.prefill_tokens, total + len(prompt.ids)
    assert computed < total / 2  # steps at a new place compute in full, typing steps a few tokens
    assert reuse.status()["kvCache"]["documents"] == 2


def test_cache_holds_the_prompt_only(engines):
    reuse, _ = engines
    prompt = _prompt(reuse, SOURCE.index("    def place"))
    result = _run(reuse, prompt, "only")
    assert result.new_tokens == 8
    entry = reuse.kv.entries("only")[-1]
    assert entry.ids == prompt.ids and cache_length(entry.cache) == len(prompt.ids)


def test_cancelled_generation_leaves_a_usable_cache(engines):
    reuse, fresh = engines
    prompt = _prompt(reuse, SOURCE.index("    def edit"))
    _run(reuse, prompt, "c")
    again = _prompt(reuse, SOURCE.index("    def edit"), "    x")
    cancelled = GenerationRequest(prompt=again, max_new_tokens=8, key="c")
    cancelled.cancel.set()  # superseded before its prefill: computes nothing, and the cache it took goes back
    result = reuse.generate(cancelled)
    assert (result.stop_reason, result.new_tokens, result.prefill_tokens) == ("cancelled", 0, 0)
    got, want = _run(reuse, again, "c"), _run(fresh, again, "c")
    assert got.text == want.text and got.prefill_tokens < len(again.ids) // 10


def test_bounded_by_documents(engines):
    engine = _limit(engines[0], kv_cache_documents=2)
    prompt = _prompt(engine, SOURCE.index("    def place"))
    for doc in ("a", "b", "c"):
        _run(engine, prompt, doc)
    assert "a" not in engine.kv and "b" in engine.kv and "c" in engine.kv
    assert _run(engine, prompt, "a").prefill_tokens == len(prompt.ids)  # evicted: computed in full
    assert _run(engine, prompt, "c").prefill_tokens == 1


def test_bounded_by_memory(engines):
    engine = _limit(engines[0], kv_cache_mb=1)  # the tiny model needs 1 KiB a token: ~1000 tokens fit
    big = _prompt(engine, SOURCE.index("    def status"), budget=1400)
    assert len(big.ids) > 1100
    _run(engine, big, "a")
    assert engine.kv.nbytes <= 1 << 20 and "a" in engine.kv
    kept = len(engine.kv.entries("a")[-1].ids)
    assert 500 < kept < len(big.ids)  # its front, which is what the next prompt shares
    assert _run(engine, big, "a").prefill_tokens == len(big.ids) - kept
    _run(engine, big, "b")
    assert engine.kv.nbytes <= 1 << 20 and "a" not in engine.kv  # the older document made room


def test_settings_turn_reuse_off_live(engines):
    engine = engines[0]
    prompt = _prompt(engine, SOURCE.index("    def place"))
    _run(engine, prompt, "a")
    assert _run(engine, prompt, "a").prefill_tokens == 1
    _limit(engine, kv_cache_documents=0)
    assert _run(engine, prompt, "a").prefill_tokens == len(prompt.ids)
    assert len(engine.kv) == 0


def test_typing_again_where_the_user_was_before_a_look_elsewhere(engines):
    reuse, fresh = engines
    here, there = SOURCE.index("    def place"), SOURCE.index("    def status")
    _run(reuse, _prompt(reuse, here, "    a"), "doc")
    _run(reuse, _prompt(reuse, there), "doc")  # a look at another place of the same document
    back = _prompt(reuse, here, "    ab")
    got, want = _run(reuse, back, "doc"), _run(fresh, back, "doc")
    assert got.text == want.text and got.prefill_tokens <= 3


def test_a_re_cut_prompt_reuses_the_suffix_and_replaces_the_old_one(engines):
    """Same text after the cursor, another cut before it (SPM): the suffix part is reused."""
    reuse, fresh = engines
    assert reuse.tokenizer is not None
    suffix = SOURCE[SOURCE.index("    def status") :]
    first = build_prompt(reuse.tokenizer, SOURCE[:3000], suffix, fmt="spm", budget=500)
    other = build_prompt(reuse.tokenizer, SOURCE[3000:6000], suffix, fmt="spm", budget=500)
    shared = common_prefix(first.ids, other.ids)
    assert MIN_REUSE <= shared < len(first.ids) // 2
    _run(reuse, first, "doc")
    got, want = _run(reuse, other, "doc"), _run(fresh, other, "doc")
    assert got.text == want.text and got.prefill_tokens == len(other.ids) - shared
    assert [e.ids for e in reuse.kv.entries("doc")] == [other.ids]


TYPING = "        value = compute(first, second)\n        if value:\n            return value\n" * 6


def _ahead(engine: LocalEngine, cursor: int, budget: int = 500) -> Prompt:
    assert engine.tokenizer is not None
    ahead = next_cut_prompt(engine.tokenizer, SOURCE[:cursor], SOURCE[cursor:], fmt="spm", budget=budget)
    assert ahead is not None
    return ahead


def _warm_ahead(engine: LocalEngine, prompt: Prompt, key: str) -> int:
    return engine.warm(GenerationRequest(prompt=prompt, max_new_tokens=8, key=key), ahead=True)


def _typed_to_the_next_step(engine: LocalEngine, cursor: int) -> tuple[str, Prompt]:
    """The shortest start of TYPING after which the prompt's cut has moved on, and that prompt."""
    first = _prompt(engine, cursor)
    start = cursor - len(first.prefix)
    for i in range(1, len(TYPING) + 1):
        prompt = _prompt(engine, cursor, TYPING[:i])
        if cursor + i - len(prompt.prefix) > start or prompt.suffix != first.suffix:
            return TYPING[:i], prompt
    raise AssertionError("typing never moved the cut")


def test_a_look_ahead_makes_the_next_step_cost_what_was_typed(engines):
    """Computed while the user rests, the prompt after the next cut turns the step's prefill from the
    whole prefix into what was typed since; the output is a full prefill's, the prompt in use stays."""
    reuse, fresh = engines
    assert reuse.tokenizer is not None
    here, there = SOURCE.index("    def status"), SOURCE.index("    async def suggest")
    at_rest, ahead, elsewhere = _prompt(reuse, here), _ahead(reuse, here), _prompt(reuse, there)
    _run(reuse, elsewhere, "doc")  # the place before: kept throughout
    _run(reuse, at_rest, "doc")
    shared = common_prefix(at_rest.ids, ahead.ids)
    assert _warm_ahead(reuse, ahead, "doc") == len(ahead.ids) - shared  # from what the two share
    assert _warm_ahead(reuse, ahead, "doc") == 0  # there already
    assert _run(reuse, at_rest, "doc").prefill_tokens == 1  # the prompt in use is whole
    typed, step = _typed_to_the_next_step(reuse, here)
    got, want = _run(reuse, step, "doc"), _run(fresh, step, "doc")
    assert (got.text, got.stop_reason) == (want.text, want.stop_reason)
    assert len(step.ids) - common_prefix(at_rest.ids, step.ids) > 300  # what the step costs without it
    assert got.prefill_tokens <= len(reuse.tokenizer.encode(typed)) + 3
    assert reuse.kv.status()["aheadUsed"] == 1
    # the other place stays; the prompt before the step is the spare, for a cut that moves back
    kept = [(e.ids, e.spare) for e in reuse.kv.entries("doc")]
    assert kept == [(elsewhere.ids, False), (at_rest.ids, True), (step.ids, False)]
    assert _run(reuse, at_rest, "doc").prefill_tokens == 1
    assert _run(reuse, step, "doc").prefill_tokens == 1
    assert _run(reuse, elsewhere, "doc").prefill_tokens == 1


def test_a_look_ahead_never_pushes_out_a_prompt_in_use(engines):
    engine = _limit(engines[0], kv_cache_mb=1)  # 1 KiB a token: two prompts of ~440 tokens fit, not three
    here, there = SOURCE.index("    def status"), SOURCE.index("    async def suggest")
    in_use = [_prompt(engine, there, budget=450), _prompt(engine, here, budget=450)]
    for prompt in in_use:
        _run(engine, prompt, "doc")
    assert _warm_ahead(engine, _ahead(engine, here, budget=450), "doc") == 0  # no room: nothing computed
    assert [e.ids for e in engine.kv.entries("doc")] == [p.ids for p in in_use]
    # With room for it, a look-ahead is the first to go when a prompt in use needs the memory.
    engine.kv.clear()
    _run(engine, in_use[1], "doc")
    assert _warm_ahead(engine, _ahead(engine, here, budget=450), "doc") > 0
    assert len(engine.kv.entries("doc")) == 2
    _run(engine, in_use[0], "doc")
    assert [e.ids for e in engine.kv.entries("doc")] == [in_use[1].ids, in_use[0].ids]
