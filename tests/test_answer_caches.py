"""Typed-through suggestions and the completion cache, without a model."""

from __future__ import annotations

from codellama_ls.engines.base import GenerationResult
from codellama_ls.pipeline.cache import Cached, CompletionCache, TypedThrough
from codellama_ls.postprocess import Context, Suggestion
from codellama_ls.prompt.fim import Prompt

BEFORE, AFTER = "def f(x):\n    y = ", "\n    return y\n"


def _shown(text: str = "compute(x, 2)\n    z = y", replace: int = 0) -> TypedThrough:
    typed = TypedThrough()
    typed.remember("a", Context(BEFORE, AFTER), [Suggestion(text, replace)])
    return typed


def test_typing_the_suggestion_answers_its_rest():
    typed = _shown()
    assert typed.follow("a", Context(BEFORE + "com", AFTER)) == [Suggestion("pute(x, 2)\n    z = y")]
    assert typed.follow("a", Context(BEFORE, AFTER)) == [Suggestion("compute(x, 2)\n    z = y")]  # asked again
    # accepting the first line (and the indentation) leaves the second
    assert typed.follow("a", Context(BEFORE + "compute(x, 2)\n    ", AFTER)) == [Suggestion("z = y")]
    assert typed.hits == 3


def test_anything_else_falls_through():
    typed = _shown()
    assert typed.follow("a", Context(BEFORE + "cox", AFTER)) == []  # a mismatch
    assert typed.follow("a", Context(BEFORE[:-1], AFTER)) == []  # backspace
    assert typed.follow("a", Context(BEFORE + "com", AFTER + "#")) == []  # an edit after the cursor
    assert typed.follow("a", Context("#" + BEFORE[1:] + "com", AFTER)) == []  # an edit far above
    assert typed.follow("a", Context(BEFORE + "compute(x, 2)\n    z = y", AFTER)) == []  # all of it typed
    assert typed.follow("b", Context(BEFORE + "com", AFTER)) == []  # another document
    assert _shown("x  \n ").follow("a", Context(BEFORE + "x", AFTER)) == []  # only whitespace left
    assert typed.hits == 0


def test_the_replaced_range_is_kept_and_nothing_shown_forgets():
    typed = _shown("g(x))", replace=1)
    assert typed.follow("a", Context(BEFORE + "g(", AFTER)) == [Suggestion("x))", 1)]
    typed.remember("a", Context(BEFORE, AFTER), [])
    assert typed.follow("a", Context(BEFORE + "g(", AFTER)) == []


def test_typing_follows_every_shown_suggestion_it_matches():
    # Three suggestions were on screen (an explicit request); the user cycled to one and typed.
    typed = TypedThrough()
    shown = [Suggestion("total(x)"), Suggestion("count(x)"), Suggestion("total(y) + 1")]
    typed.remember("a", Context(BEFORE, AFTER), shown)
    assert typed.follow("a", Context(BEFORE + "c", AFTER)) == [Suggestion("ount(x)")]
    assert typed.follow("a", Context(BEFORE + "total(", AFTER)) == [Suggestion("x)"), Suggestion("y) + 1")]
    assert typed.follow("a", Context(BEFORE + "total(y", AFTER)) == [Suggestion(") + 1")]


def test_completion_cache_is_a_bounded_lru():
    cache = CompletionCache(size=2)
    keys = [CompletionCache.key(Prompt("spm", f"p{i}", "s", [], False), 8, 0.0) for i in range(3)]
    results = [GenerationResult(f"r{i}", 1, 1, 1, "eot") for i in range(3)]
    answers = [Suggestion(f"a{i}") for i in range(3)]
    cache.put(keys[0], [answers[0]], results[0])
    cache.put(keys[1], [], results[1])  # "nothing worth showing" is an answer too
    assert cache.get(keys[0]) == Cached((answers[0],), results[0])  # now the most recent
    assert cache.get(keys[1]) == Cached((), results[1])
    cache.put(keys[2], [answers[2]], results[2])
    assert cache.get(keys[0]) is None  # the least recently used went
    assert cache.get(keys[1]) == Cached((), results[1]) and cache.get(keys[2]) == Cached((answers[2],), results[2])
    assert CompletionCache.key(Prompt("spm", "p0", "s", [], False), 16, 0.0) != keys[0]  # settings matter
    cache.put(keys[0], [Suggestion("x")], GenerationResult("partial", 1, 1, 1, "cancelled"))
    assert cache.get(keys[0]) is None  # a cut-short answer is not an answer


def test_an_answer_for_fewer_suggestions_does_not_answer_a_request_for_more():
    cache = CompletionCache()
    key = CompletionCache.key(Prompt("spm", "p", "s", [], False), 8, 0.0)
    one, three = [Suggestion("a")], [Suggestion("a"), Suggestion("b"), Suggestion("c")]
    cache.put(key, one, GenerationResult("a", 1, 1, 1, "eot"), samples=1)
    assert cache.get(key, samples=3) is None  # an explicit request wants more than typing got
    cache.put(key, three, GenerationResult("a", 3, 1, 1, "eot", texts=["a", "b", "c"]), samples=3)
    cache.put(key, one, GenerationResult("a", 0, 0, 1, "typed"), samples=1)  # does not replace the bigger one
    got = cache.get(key, samples=1)
    assert got is not None and got.suggestions == tuple(three)  # typing gets the first of them
    assert cache.get(key, samples=3) == got
