"""Answers that need no model call: the suggestion typed through, and recently computed ones.

Both sit in front of the engine, so they work for every engine (local or remote):

- :class:`TypedThrough` remembers, per document, the suggestion on screen and where it was
  shown. When the text before the cursor has since grown by the start of that suggestion
  (the user typed it, or accepted part of it) and nothing after the cursor changed, the rest
  of the suggestion is the answer. Backspace or any other edit falls through.
- :class:`CompletionCache` is an LRU of answers keyed by the prompt text (the part of the
  document the model sees) and every setting that changes the output, so returning to a
  position (undo, moving back and forth) answers from memory.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from codellama_ls.engines.base import GenerationResult
from codellama_ls.postprocess import Context, Suggestion
from codellama_ls.prompt import Prompt


@dataclass(frozen=True)
class _Shown:
    prefix: str  # LF text before the cursor when the suggestion was shown
    suffix: str  # LF text after it
    suggestion: Suggestion  # LF text


class TypedThrough:
    """The suggestion last shown in each of the most recent ``max_documents`` documents."""

    def __init__(self, max_documents: int = 64) -> None:
        self.max_documents = max_documents
        self._shown: OrderedDict[str, _Shown] = OrderedDict()
        self.hits = 0

    def remember(self, uri: str, ctx: Context, suggestion: Suggestion | None) -> None:
        """Record what is on screen now (``None``: nothing)."""
        self._shown.pop(uri, None)
        if suggestion is None or not suggestion.text:
            return
        self._shown[uri] = _Shown(ctx.prefix, ctx.suffix, suggestion)
        while len(self._shown) > self.max_documents:
            self._shown.popitem(last=False)

    def follow(self, uri: str, ctx: Context) -> Suggestion | None:
        """The rest of the shown suggestion if the user typed its beginning, else None."""
        shown = self._shown.get(uri)
        if shown is None:
            return None
        typed = len(ctx.prefix) - len(shown.prefix)
        text = shown.suggestion.text
        if typed < 0 or typed >= len(text) or ctx.suffix != shown.suffix:
            return None
        if not (ctx.prefix.endswith(text[:typed]) and ctx.prefix.startswith(shown.prefix)):
            return None
        rest = Suggestion(text[typed:], shown.suggestion.replace)
        if not rest.text.strip():
            return None  # only whitespace left: let the model say what comes next
        self.hits += 1
        return rest

    def forget(self, uri: str) -> None:
        self._shown.pop(uri, None)


Cached = tuple[Suggestion | None, GenerationResult]  # the answer (None: nothing worth showing) and its source


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

    def get(self, key: tuple[Any, ...]) -> Cached | None:
        item = self._items.get(key)
        if item is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return item

    def put(self, key: tuple[Any, ...], suggestion: Suggestion | None, result: GenerationResult) -> None:
        if result.stop_reason in ("cancelled", "timeout") or self.size <= 0:
            return
        self._items[key] = (suggestion, result)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

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
