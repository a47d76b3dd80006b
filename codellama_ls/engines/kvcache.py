"""Keep the key/value cache of each document's last prompt, so the next prompt computes only what changed.

While the user types at the cursor, consecutive prompts of a document share almost all of
their tokens (with the suffix-first order, everything but the last few). The engine takes
the entry of the request's document, keeps the longest common token prefix, runs the model
on the rest only, then crops the cache back to the prompt and puts it back: generated
tokens never stay in it. Entries are bounded by a number of documents and by memory; the
least recently used document goes first.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


@dataclass
class _Entry:
    ids: list[int]  # the prompt whose keys/values the cache holds, position by position
    cache: Any
    nbytes: int


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the longest common prefix of two id lists."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo] and a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def cache_length(cache: Any) -> int:
    return int(cache.get_seq_length())


def crop(cache: Any, length: int) -> None:
    """Keep the first ``length`` positions (a negative count removes from the end in every 5.x version)."""
    extra = cache_length(cache) - length
    if extra > 0:
        cache.crop(-extra)


def cache_bytes(cache: Any) -> int:
    """Memory the cache holds, counting whole storages (a cropped tensor still holds its tail)."""
    seen: set[int] = set()
    total = 0
    for layer in getattr(cache, "layers", []):
        for name in ("keys", "values"):
            tensor = getattr(layer, name, None)
            if tensor is None or not hasattr(tensor, "untyped_storage"):
                continue
            storage = tensor.untyped_storage()
            if storage.data_ptr() not in seen:
                seen.add(storage.data_ptr())
                total += storage.nbytes()
    return total


def reusable(cache: Any) -> bool:
    """Only caches that crop back exactly (full attention) can be reused."""
    return bool(getattr(cache, "is_croppable", False)) and hasattr(cache, "layers")


class PrefixCache:
    """Per-document prompt caches, at most ``max_documents`` of them and ``max_bytes`` in all."""

    def __init__(self, max_documents: int = 4, max_bytes: int = 2 << 30) -> None:
        self.max_documents = max_documents
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self.lookups = 0
        self.hits = 0  # lookups that reused at least one position
        self.reused_tokens = 0

    @property
    def enabled(self) -> bool:
        return self.max_documents > 0 and self.max_bytes > 0

    def take(self, key: str, ids: list[int]) -> tuple[Any, int]:
        """Remove ``key``'s entry and return (cache cropped to the reusable part, its length).

        At least the last prompt token is always left to compute: its logits start decoding.
        Returns (None, 0) when nothing can be reused.
        """
        self.lookups += 1
        entry = self._entries.pop(key, None)
        if entry is None:
            return None, 0
        keep = min(common_prefix(entry.ids, ids), len(ids) - 1)
        if keep <= 0:
            return None, 0
        crop(entry.cache, keep)
        self.hits += 1
        self.reused_tokens += keep
        return entry.cache, keep

    def put(self, key: str, ids: list[int], cache: Any) -> None:
        """Store ``cache`` as holding ``ids`` (cropping off anything generated after them)."""
        self._entries.pop(key, None)
        if not self.enabled or not reusable(cache) or cache_length(cache) < len(ids):
            return
        crop(cache, len(ids))
        nbytes = cache_bytes(cache)
        if nbytes > self.max_bytes:  # too big on its own: keep the part that fits (its front is what is reused)
            fit = len(ids) * self.max_bytes // max(nbytes, 1)
            if fit < 1:
                return
            crop(cache, fit)
            _compact(cache)
            ids = ids[:fit]
            nbytes = cache_bytes(cache)
        self._entries[key] = _Entry(list(ids), cache, nbytes)
        self._evict()

    def _evict(self) -> None:
        while self._entries and (len(self._entries) > self.max_documents or self.nbytes > self.max_bytes):
            self._entries.popitem(last=False)

    def drop(self, key: str) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def status(self) -> dict[str, Any]:
        return {
            "documents": len(self._entries),
            "mb": round(self.nbytes / 2**20, 1),
            "lookups": self.lookups,
            "hits": self.hits,
            "reusedTokens": self.reused_tokens,
        }


def _compact(cache: Any) -> None:
    """Copy cropped tensors so the memory of the removed tail is really freed."""
    for layer in getattr(cache, "layers", []):
        for name in ("keys", "values"):
            tensor = getattr(layer, name, None)
            if tensor is not None and hasattr(tensor, "clone"):
                setattr(layer, name, tensor.clone())
