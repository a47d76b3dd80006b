"""Windows of other documents that use the same identifiers as the code at the cursor.

Each document is cut into windows of ``WINDOW_LINES`` lines every ``WINDOW_STEP`` lines; a
window's score is the Jaccard similarity of its identifier set and the set of the lines before
the cursor (Copilot's measure; keywords left out, see :mod:`.names`). The index computes the
windows of open documents on its thread when it parses them; a request only intersects sets.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from codellama_ls.context.names import identifier_set

WINDOW_LINES = 20
WINDOW_STEP = 5


@dataclass(frozen=True)
class Source:
    """A document to search: its lines and, when the index made them, its windows."""

    key: str
    version: int
    lines: list[str]
    windows: list[Window] | None = None


@dataclass(frozen=True)
class Window:
    start: int  # first line, 0-based
    end: int  # last line, inclusive
    ids: frozenset[str]


@dataclass(frozen=True)
class Match:
    key: str
    start: int
    end: int
    score: float


def windows(lines: list[str], size: int, step: int) -> list[Window]:
    """Overlapping windows over ``lines``; blank-only windows are left out."""
    per_line = [identifier_set(line) for line in lines]
    found: list[Window] = []
    last_start = max(len(lines) - size, 0)
    starts = list(range(0, last_start + 1, step))
    if starts[-1] != last_start:
        starts.append(last_start)
    for start in starts:
        end = min(start + size, len(lines)) - 1
        ids = frozenset().union(*per_line[start : end + 1])
        if ids:
            found.append(Window(start, end, ids))
    return found


class SimilarCode:
    """Window sets of documents the index did not make them for, by (key, version)."""

    def __init__(self, size: int = WINDOW_LINES, step: int = WINDOW_STEP, keep: int = 32) -> None:
        self.size = size
        self.step = step
        self.keep = keep
        self._cache: OrderedDict[str, tuple[int, list[Window]]] = OrderedDict()

    def windows_of(self, source: Source) -> list[Window]:
        if source.windows is not None:
            return source.windows
        key, version = source.key, source.version
        hit = self._cache.get(key)
        if hit is not None and hit[0] == version:
            self._cache.move_to_end(key)
            return hit[1]
        found = windows(source.lines, self.size, self.step)
        self._cache[key] = (version, found)
        while len(self._cache) > self.keep:
            self._cache.popitem(last=False)
        return found

    def best(
        self, query: frozenset[str], documents: list[Source], limit: int = 3, min_score: float = 0.05
    ) -> list[Match]:
        """The best non-overlapping windows of ``documents``, best first."""
        if not query:
            return []
        scored: list[Match] = []
        n = len(query)
        for source in documents:
            for window in self.windows_of(source):
                common = len(query & window.ids)
                if common:
                    score = common / (n + len(window.ids) - common)
                    if score >= min_score:
                        scored.append(Match(source.key, window.start, window.end, score))
        scored.sort(key=lambda m: -m.score)
        chosen: list[Match] = []
        for match in scored:
            if any(c.key == match.key and c.start <= match.end and match.start <= c.end for c in chosen):
                continue
            chosen.append(match)
            if len(chosen) >= limit:
                break
        return chosen
