"""Typed-through suggestions and the completion cache, without a model."""

from __future__ import annotations

from codellama_ls.cache import CompletionCache, TypedThrough
from codellama_ls.engines.base import GenerationResult
from codellama_ls.postprocess import Context, Suggestion
from codellama_ls.prompt import Prompt

BEFORE, AFTER = "def f(x):\n    y = ", "\n    return y\n"


def _shown(text: str = "compute(x, 2)\n    z = y", replace: int = 0) -> TypedThrough:
    typed = TypedThrough()
    typed.remember("a", Context(BEFORE, AFTER), Suggestion(text, replace))
    return typed


def test_typing_the_suggestion_answers_its_rest():
    typed = _shown()
    assert typed.follow("a", Context(BEFORE + "com", AFTER)) == Suggestion("pute(x, 2)\n    z = y")
    assert typed.follow("a", Context(BEFORE, AFTER)) == Suggestion("compute(x, 2)\n    z = y")  # asked again
    # accepting the first line (and the indentation) leaves the second
    assert typed.follow("a", Context(BEFORE + "compute(x, 2)\n    ", AFTER)) == Suggestion("z = y")
    assert typed.hits == 3


def test_anything_else_falls_through():
    typed = _shown()
    assert typed.follow("a", Context(BEFORE + "cox", AFTER)) is None  # a mismatch
    assert typed.follow("a", Context(BEFORE[:-1], AFTER)) is None  # backspace
    assert typed.follow("a", Context(BEFORE + "com", AFTER + "#")) is None  # an edit after the cursor
    assert typed.follow("a", Context("#" + BEFORE[1:] + "com", AFTER)) is None  # an edit far above
    assert typed.follow("a", Context(BEFORE + "compute(x, 2)\n    z = y", AFTER)) is None  # all of it typed
    assert typed.follow("b", Context(BEFORE + "com", AFTER)) is None  # another document
    assert _shown("x  \n ").follow("a", Context(BEFORE + "x", AFTER)) is None  # only whitespace left
    assert typed.hits == 0


def test_the_replaced_range_is_kept_and_nothing_shown_forgets():
    typed = _shown("g(x))", replace=1)
    assert typed.follow("a", Context(BEFORE + "g(", AFTER)) == Suggestion("x))", 1)
    typed.remember("a", Context(BEFORE, AFTER), None)
    assert typed.follow("a", Context(BEFORE + "g(", AFTER)) is None


def test_completion_cache_is_a_bounded_lru():
    cache = CompletionCache(size=2)
    keys = [CompletionCache.key(Prompt("spm", f"p{i}", "s", [], False), 8, 0.0) for i in range(3)]
    results = [GenerationResult(f"r{i}", 1, 1, 1, "eot") for i in range(3)]
    answers = [Suggestion(f"a{i}") for i in range(3)]
    cache.put(keys[0], answers[0], results[0])
    cache.put(keys[1], None, results[1])  # "nothing worth showing" is an answer too
    assert cache.get(keys[0]) == (answers[0], results[0])  # now the most recent
    assert cache.get(keys[1]) == (None, results[1])
    cache.put(keys[2], answers[2], results[2])
    assert cache.get(keys[0]) is None  # the least recently used went
    assert cache.get(keys[1]) == (None, results[1]) and cache.get(keys[2]) == (answers[2], results[2])
    assert CompletionCache.key(Prompt("spm", "p0", "s", [], False), 16, 0.0) != keys[0]  # settings matter
    cache.put(keys[0], Suggestion("x"), GenerationResult("partial", 1, 1, 1, "cancelled"))
    assert cache.get(keys[0]) is None  # a cut-short answer is not an answer
