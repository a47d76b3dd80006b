"""The context a prompt carries: the rendered text and where each part of it came from.

These types are all :mod:`codellama_ls.prompt.fim` needs from the context package, so they live
apart from the index and parsers (importing them costs nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ContextEntry:
    """One snippet of the context block, as ``codellama/prompt`` reports it.

    Lines are 0-based and ``end_line`` is the last line shown (inclusive). ``tokens`` counts
    the snippet's rendered lines, its path line included.
    """

    uri: str
    start_line: int
    end_line: int
    reason: str  # "definition" (of ``symbol``, used at the cursor) or "similar" (to the code at the cursor)
    tokens: int
    symbol: str | None = None
    score: float | None = None  # "similar": Jaccard similarity of identifiers

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "uri": self.uri,
            "startLine": self.start_line,
            "endLine": self.end_line,
            "reason": self.reason,
            "tokens": self.tokens,
        }
        if self.symbol is not None:
            data["symbol"] = self.symbol
        if self.score is not None:
            data["score"] = round(self.score, 3)
        return data


@dataclass(frozen=True)
class ContextBlock:
    """Comment lines that go before the file's prefix; ``text`` is empty or ends with a newline."""

    text: str = ""
    entries: tuple[ContextEntry, ...] = ()
    tokens: int = 0  # of ``text`` encoded at the start of a prompt

    def __bool__(self) -> bool:
        return bool(self.text)


EMPTY = ContextBlock()
