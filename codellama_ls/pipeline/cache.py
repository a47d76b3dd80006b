"""Answers that need no model call: the suggestion typed through, and recently computed ones.

Both sit in front of the engine, so they work for every engine (local or remote):

- :class:`TypedThrough` remembers, per document, the suggestions on screen and where they
  were shown. When the text before the cursor has since grown by the start of one of them
  (the user typed it, or accepted part of it) and nothing after the cursor changed, the rest
  of each suggestion that still matches is the answer, so the one the user cycled to and
  typed is followed too. Backspace or any other edit falls through.
- :class:`CompletionCache` is an LRU of answers keyed by the prompt text (the part of the
  document the model sees) and every setting that changes the output, so returning to a
  position (undo, moving back and forth) answers from memory. An entry keeps every
  suggestion of its answer and how many were asked for, so a request for more is not
  answered with fewer.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from codellama_ls.engines.base import GenerationResult
from codellama_ls.postprocess import Context, Suggestion
from codellama_ls.prompt.fim import Prompt


@dataclass(frozen=True)
class _Shown:
    prefix: str  # LF text before the cursor when the suggestions were shown
    suffix: str  # LF text after it
    suggestions: tuple[Suggestion, ...]  # LF text, in the order shown


class TypedThrough:
    """The suggestions last shown in each of the most recent ``max_documents`` documents."""

    def __init__(self, max_documents: int = 64) -> None:
        self.max_documents = max_documents
        self._shown: OrderedDict[str, _Shown] = OrderedDict()
        self.hits = 0

    def remember(self, uri: str, ctx: Context, suggestions: Sequence[Suggestion]) -> None:
        """Record what is on screen now (an empty list: nothing)."""
        self._shown.pop(uri, None)
        kept = tuple(s for s in suggestions if s.text)
        if not kept:
            return
        self._shown[uri] = _Shown(ctx.prefix, ctx.suffix, kept)
        while len(self._shown) > self.max_documents:
            self._shown.popitem(last=False)

    def follow(self, uri: str, ctx: Context) -> list[Suggestion]:
        """The rest of each shown suggestion whose beginning the user typed (empty: none)."""
        shown = self._shown.get(uri)
        if shown is None:
            return []
        typed = len(ctx.prefix) - len(shown.prefix)
        if typed < 0 or ctx.suffix != shown.suffix or not ctx.prefix.startswith(shown.prefix):
            return []
        rests = []
        for suggestion in shown.suggestions:
            text = suggestion.text
            if typed >= len(text) or not ctx.prefix.endswith(text[:typed]):
                continue
            rest = Suggestion(text[typed:], suggestion.replace)
            if rest.text.strip() and rest not in rests:  # only whitespace left: let the model say what comes next
                rests.append(rest)
        if rests:
            self.hits += 1
        return rests

    def forget(self, uri: str) -> None:
        self._shown.pop(uri, None)


@dataclass(frozen=True)
class Cached:
    """An answer: its suggestions (none: nothing worth showing), the result they came from and
    how many suggestions were asked for."""

    suggestions: tuple[Suggestion, ...]
    result: GenerationResult
    samples: int = 1


class CompletionCache:
    """Bounded LRU: (prompt text, generation settings) -> the answer and the result it came from."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._items: OrderedDict[tuple[Any, ...], Cached] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(prompt: Prompt, *settings: Any) -> tuple[Any, ...]:
        """What decides the output: the text the model sees (format, context, kept prefix/suffix) and ``settings``."""
        return (prompt.format, prompt.context_text, prompt.prefix, prompt.suffix, *settings)

    def get(self, key: tuple[Any, ...], samples: int = 1) -> Cached | None:
        """The answer for ``key`` if it was made with at least ``samples`` suggestions asked for."""
        item = self._items.get(key)
        if item is None or item.samples < samples:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return item

    def put(
        self, key: tuple[Any, ...], suggestions: Sequence[Suggestion], result: GenerationResult, samples: int = 1
    ) -> None:
        if result.stop_reason in ("cancelled", "timeout") or self.size <= 0:
            return
        old = self._items.get(key)
        if old is not None and old.samples > samples:
            return  # keep the answer with more suggestions: it answers both kinds of request
        self._items[key] = Cached(tuple(suggestions), result, samples)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` has an answer (without counting a hit or a miss)."""
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)


class AnswerCaches:
    """The two caches together, as the completion service uses them."""

    def __init__(self, documents: int = 64, results: int = 256) -> None:
        self.typed = TypedThrough(documents)
        self.results = CompletionCache(results)
        self.last_source: str | None = None  # "typed" | "cache" | "model", for status and benchmarks
        self.last_ms: float | None = None  # request arrival to answer, inside the server

    def answered(self, source: str, ms: float) -> None:
        self.last_source, self.last_ms = source, ms

    def status(self) -> dict[str, Any]:
        return {
            "typedThroughHits": self.typed.hits,
            "completionCache": {"hits": self.results.hits, "misses": self.results.misses, "size": len(self.results)},
            "lastSource": self.last_source,
            "lastAnswerMs": None if self.last_ms is None else round(self.last_ms, 2),
        }
