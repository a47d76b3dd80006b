"""How often shown suggestions are accepted, per language and per source, in this process only.

Every answer the server sends gets an id per suggestion; the editor reports an acceptance by
running the ``codellama.accepted`` command with that id, the kind of acceptance (``full``,
``word``, ``line``, ``partial``) and how many characters it took. The counts live in memory
and are shown by ``codellama/status``: they are never written to disk nor sent anywhere, and
they end with the process.

Per language (the document's ``languageId``) and source (``model``, ``typed``: the rest of a
suggestion the user is typing, ``cache``: the completion cache), an answer counts once as
shown, and once as accepted (a full accept, or partial accepts adding up to the whole
suggestion) or else as partly accepted. ``acceptedAlternatives`` counts accepted answers
where the suggestion taken was not the first (the value of offering several), and the
latency of accepted answers (request arrival to answer, inside the server) gives
``medianAcceptedMs``.
"""

from __future__ import annotations

import statistics
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

KINDS = ("full", "word", "line", "partial")
SOURCES = ("model", "typed", "cache")


@dataclass
class _Shown:
    """One answer the editor got: its place in the counts and what was taken of it so far."""

    language: str
    source: str
    ms: float
    lengths: list[int]  # characters of each suggestion
    taken: list[int] = field(default_factory=list)  # characters accepted of each suggestion
    outcome: str | None = None  # "accepted" | "partly" once the user took something


@dataclass
class _Counts:
    shown: int = 0
    accepted: int = 0
    partly: int = 0
    alternatives: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=1000))

    def to_dict(self) -> dict[str, Any]:
        return {
            "shown": self.shown,
            "accepted": self.accepted,
            "partlyAccepted": self.partly,
            "acceptedAlternatives": self.alternatives,
            "rate": round(self.accepted / self.shown, 4) if self.shown else None,
            "medianAcceptedMs": round(statistics.median(self.latencies), 2) if self.latencies else None,
        }


class Acceptance:
    """Counts per (language, source); remembers the last ``remembered`` answers by id."""

    def __init__(self, remembered: int = 1024) -> None:
        self.remembered = remembered
        self._answers: OrderedDict[int, _Shown] = OrderedDict()
        self._counts: dict[tuple[str, str], _Counts] = {}
        self._next = 0

    def shown(self, language: str, source: str, ms: float, texts: list[str]) -> list[str]:
        """Count an answer the editor gets; returns the id of each of its suggestions."""
        self._next += 1
        answer = self._next
        shown = _Shown(language or "unknown", source, ms, [len(t) for t in texts], [0] * len(texts))
        self._answers[answer] = shown
        while len(self._answers) > self.remembered:
            self._answers.popitem(last=False)
        self._count(shown).shown += 1
        return [f"{answer}.{index}" for index in range(len(texts))]

    def accepted(self, item: str, kind: str, length: int) -> bool:
        """Record that the editor inserted ``length`` characters of suggestion ``item``.

        False when the id is unknown (malformed, or an answer too old to be remembered).
        """
        answer, _, index = item.partition(".")
        try:
            shown, row = self._answers.get(int(answer)), int(index)
        except ValueError:
            return False
        if shown is None or not 0 <= row < len(shown.lengths):
            return False
        shown.taken[row] = shown.lengths[row] if kind == "full" else shown.taken[row] + max(length, 0)
        counts = self._count(shown)
        if shown.taken[row] >= shown.lengths[row] and shown.outcome != "accepted":
            if shown.outcome == "partly":
                counts.partly -= 1
            shown.outcome = "accepted"
            counts.accepted += 1
            counts.alternatives += row > 0
            counts.latencies.append(shown.ms)
        elif shown.outcome is None:
            shown.outcome = "partly"
            counts.partly += 1
        return True

    def _count(self, shown: _Shown) -> _Counts:
        return self._counts.setdefault((shown.language, shown.source), _Counts())

    def status(self) -> dict[str, Any]:
        """``byLanguage``: language → source → counts; ``bySource``: all languages together."""
        by_language: dict[str, dict[str, Any]] = {}
        totals: dict[str, _Counts] = {}
        for (language, source), counts in sorted(self._counts.items()):
            by_language.setdefault(language, {})[source] = counts.to_dict()
            total = totals.setdefault(source, _Counts())
            total.shown += counts.shown
            total.accepted += counts.accepted
            total.partly += counts.partly
            total.alternatives += counts.alternatives
            total.latencies.extend(counts.latencies)
        return {"byLanguage": by_language, "bySource": {k: v.to_dict() for k, v in totals.items()}}
