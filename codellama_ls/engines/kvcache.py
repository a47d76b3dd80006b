"""Keep the key/value cache of each document's last prompt, so the next prompt computes only what changed.

While the user types at the cursor, consecutive prompts of a document share almost all of
their tokens (with the suffix-first order, everything but the last few). The engine takes
the entry of the request's document that shares the longest token prefix with the new
prompt, keeps that prefix, runs the model on the rest only, then crops the cache back to
the prompt and puts it back: generated tokens never stay in it. Each document keeps the
prompts of its last ``PER_DOCUMENT`` places (typing at one place after a look at another
reuses the first); entries are bounded by a number of documents and by memory, and the
least recently used document goes first.

Besides those, each document has one spare entry, which never pushes out a prompt in use and is
the first to go when memory runs short: a look-ahead (``put(..., ahead=True)``, the
prompt after the next step of a moving cut, ``prompt.fim.next_cut_prompt``, made from a ``fork``
that leaves the entry it started from as it was), or the prompt a request went on from another
entry of the same place (the prompt before that step: a typed character that merges tokens can
move a cut back for a keystroke, and an answer prefetched past the step may not be accepted).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

PER_DOCUMENT = 2  # places kept per document, a prompt each: where the user types, and the place before that
MIN_REUSE = 16  # sharing fewer tokens (``BOS ▁<PRE> ▁<SUF>``...) means another place


@dataclass
class _Entry:
    ids: list[int]  # the prompt whose keys/values the cache holds, position by position
    cache: Any
    nbytes: int
    spare: bool = False  # the document's spare entry (see above)
    ahead: bool = False  # made by a look-ahead, not used yet


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


def expand(cache: Any, rows: int) -> Any:
    """A cache of ``rows`` copies of a one-row cache, for decoding several samples of a prompt.

    The result has layers of its own (tensors are rebound, never written in place as the cache
    grows), so ``cache`` keeps exactly the prompt and can be stored for reuse afterwards.
    """
    out = _own_layers(cache)
    out.batch_repeat_interleave(rows)
    return out


def _own_layers(cache: Any) -> Any:
    """A copy of ``cache`` with layers of its own over the same tensors: growing or cropping it (which
    rebinds its tensors) leaves ``cache`` as it was."""
    out = copy.copy(cache)
    out.layers = [copy.copy(layer) for layer in cache.layers]
    return out


def reusable(cache: Any) -> bool:
    """Only caches that crop back exactly (full attention) can be reused."""
    return bool(getattr(cache, "is_croppable", False)) and hasattr(cache, "layers")


class PrefixCache:
    """Per-document prompt caches, at most ``max_documents`` of them and ``max_bytes`` in all."""

    def __init__(self, max_documents: int = 4, max_bytes: int = 2 << 30) -> None:
        self.max_documents = max_documents
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, list[_Entry]] = OrderedDict()  # oldest entry first
        self.lookups = 0
        self.hits = 0  # lookups that reused at least one position
        self.reused_tokens = 0
        self.ahead_used = 0  # look-ahead entries a request went on from

    @property
    def enabled(self) -> bool:
        return self.max_documents > 0 and self.max_bytes > 0

    def take(self, key: str, ids: list[int]) -> tuple[Any, int]:
        """Remove ``key``'s entry and return (cache cropped to the reusable part, its length).

        At least the last prompt token is always left to compute: its logits start decoding.
        Returns (None, 0) when nothing can be reused.
        """
        self.lookups += 1
        match = self._match(key, ids)
        if match is None:
            return None, 0
        entries, shared, best, keep = match
        # The same place (typed at, or its prompt re-cut): the new prompt replaces this one, and
        # another prompt of this place becomes the spare (at most one prompt in use per place).
        entry = entries[best]
        others = [(e, n) for i, (e, n) in enumerate(zip(entries, shared, strict=True)) if i != best]
        here = [(e, n) for e, n in others if n >= MIN_REUSE]
        spare = max(here, key=lambda pair: pair[1])[0] if here else next((e for e, _ in others if e.spare), None)
        if spare is not None:
            spare.spare = True
        entries[:] = [e for e, n in others if n < MIN_REUSE and not e.spare] + ([spare] if spare else [])
        if not entries:
            del self._entries[key]
        crop(entry.cache, keep)
        self.hits += 1
        self.reused_tokens += keep
        self.ahead_used += entry.ahead
        return entry.cache, keep

    def fork(self, key: str, ids: list[int]) -> tuple[Any, int]:
        """Like :meth:`take`, but the entry stays as it is: the result is a cache of its own holding the
        shared part (views of the entry's tensors, which a cache extends by concatenation, never in place)."""
        match = self._match(key, ids)
        if match is None:
            return None, 0
        entries, _, best, keep = match
        out = _own_layers(entries[best].cache)
        crop(out, keep)
        return out, keep

    def _match(self, key: str, ids: list[int]) -> tuple[list[_Entry], list[int], int, int] | None:
        """``key``'s entries, what each shares with ``ids``, the best one and how much of it to keep;
        None when no entry is at the same place (another place's entries stay for when the user comes back).
        At least the last prompt token is always left to compute: its logits start decoding."""
        entries = self._entries.get(key)
        if not entries:
            return None
        shared = [common_prefix(entry.ids, ids) for entry in entries]
        best = max(range(len(entries)), key=shared.__getitem__)
        keep = min(shared[best], len(ids) - 1)
        return None if keep < MIN_REUSE else (entries, shared, best, keep)

    def holds(self, key: str, ids: list[int], slack: int = 0) -> bool:
        """Whether an entry of ``key`` already has all of ``ids`` but at most their last ``slack``."""
        return any(common_prefix(entry.ids, ids) >= len(ids) - slack for entry in self._entries.get(key, []))

    def room_for(self, key: str, tokens: int) -> bool:
        """Whether a spare of ``tokens`` would fit in memory beside the prompts in use (estimated from
        what the entries take per token), so that computing a look-ahead is not wasted."""
        stored = [(k, entry) for k, entries in self._entries.items() for entry in entries]
        if not stored:
            return True
        per_token = max(entry.nbytes / max(len(entry.ids), 1) for _, entry in stored)
        kept = sum(entry.nbytes for k, entry in stored if not (entry.spare and k == key))  # its old one goes
        return kept + tokens * per_token <= self.max_bytes

    def put(self, key: str, ids: list[int], cache: Any, *, ahead: bool = False) -> None:
        """Store ``cache`` as holding ``ids`` (cropping off anything generated after them); ``ahead``: a
        look-ahead, as the document's spare (replacing its previous one)."""
        if not self.enabled or not reusable(cache) or cache_length(cache) < len(ids):
            return
        crop(cache, len(ids))
        nbytes = cache_bytes(cache)
        if nbytes > self.max_bytes:  # too big on its own: keep the part that fits (its front is what is reused)
            if ahead:
                return
            fit = len(ids) * self.max_bytes // max(nbytes, 1)
            if fit < 1:
                return
            crop(cache, fit)
            _compact(cache)
            ids = ids[:fit]
            nbytes = cache_bytes(cache)
        entries = self._entries.pop(key, [])
        entry = _Entry(list(ids), cache, nbytes, spare=ahead, ahead=ahead)
        if ahead:
            entries = [e for e in entries if not e.spare]
        else:  # the places used longest ago beyond PER_DOCUMENT with this one go
            used = [e for e in entries if not e.spare]
            stale = used[: max(0, len(used) - (PER_DOCUMENT - 1))]
            entries = [e for e in entries if all(e is not old for old in stale)]
        self._entries[key] = [*entries, entry]
        self._evict(key, entry)

    def _evict(self, key: str, just: _Entry) -> None:
        """Drop least recently used documents, then spares, then old entries; never the one just
        stored, unless it is a spare that fits only by pushing out a prompt in use."""
        while len(self._entries) > self.max_documents:
            self._entries.popitem(last=False)
        while self.nbytes > self.max_bytes:
            spares = [(k, e) for k, entries in self._entries.items() for e in entries if e.spare and e is not just]
            if spares:
                self._remove(*spares[0])
                continue
            if just.spare:
                self._remove(key, just)
                break
            oldest, entries = next(iter(self._entries.items()))
            if len(self._entries) == 1 and len(entries) == 1:
                break
            self._remove(oldest, entries[0])

    def _remove(self, key: str, entry: _Entry) -> None:
        entries = self._entries[key]
        entries.remove(entry)
        if not entries:
            del self._entries[key]

    def drop(self, key: str) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for entries in self._entries.values() for e in entries)

    def entries(self, key: str) -> list[_Entry]:
        return list(self._entries.get(key, []))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return bool(self._entries.get(key))

    def status(self) -> dict[str, Any]:
        return {
            "documents": len(self._entries),
            "mb": round(self.nbytes / 2**20, 1),
            "lookups": self.lookups,
            "hits": self.hits,
            "reusedTokens": self.reused_tokens,
            "aheadUsed": self.ahead_used,
        }


def _compact(cache: Any) -> None:
    """Copy cropped tensors so the memory of the removed tail is really freed."""
    for layer in getattr(cache, "layers", []):
        for name in ("keys", "values"):
            tensor = getattr(layer, name, None)
            if tensor is not None and hasattr(tensor, "clone"):
                setattr(layer, name, tensor.clone())
