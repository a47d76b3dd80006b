"""Turn raw model output into a suggestion that is safe to insert.

Each step is a small named function ``(Suggestion, Context) -> Suggestion``, applied in
``STEPS`` order; ``stop_check`` lets the engine end decoding as soon as the steps would
throw the rest away.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from codellama_ls.documents import Cursor

_PAIRS = {")": "(", "]": "[", "}": "{"}
_QUOTES = ('"', "'", "`")


@dataclass(frozen=True)
class Context:
    """The cursor's surroundings, LF line endings."""

    prefix: str
    suffix: str

    @classmethod
    def from_cursor(cls, cursor: Cursor) -> Context:
        return cls(cursor.prefix, cursor.suffix)

    @property
    def line_prefix(self) -> str:
        return self.prefix[self.prefix.rfind("\n") + 1 :]

    @property
    def line_suffix(self) -> str:
        nl = self.suffix.find("\n")
        return self.suffix if nl < 0 else self.suffix[:nl]

    @property
    def single_line(self) -> bool:
        """Mid-line with code after the cursor: only the rest of this line makes sense."""
        return bool(self.line_suffix.strip())


@dataclass(frozen=True)
class Suggestion:
    """Text to insert at the cursor (LF), replacing ``replace`` characters after it on its line."""

    text: str
    replace: int = 0


Step = Callable[[Suggestion, Context], Suggestion]


def single_line(s: Suggestion, ctx: Context) -> Suggestion:
    """Mid-line, keep only the first line of the output."""
    if ctx.single_line and "\n" in s.text:
        return replace(s, text=s.text[: s.text.index("\n")])
    return s


def drop_repeated_line_suffix(s: Suggestion, ctx: Context) -> Suggestion:
    """Drop a tail that repeats what already follows the cursor (a ``)`` is not inserted twice).

    Only tails whose brackets/quotes are unmatched inside the suggestion are dropped, so a
    suggestion ``f(x)`` before an existing ``)`` keeps its own closing bracket.
    """
    rest = ctx.line_suffix.strip()
    if not rest or "\n" in s.text:
        return s
    text = s.text.rstrip()
    for k in range(min(len(rest), len(text)), 0, -1):
        tail = rest[:k]
        if text.endswith(tail) and _only_extra_closers(text[:-k], text):
            return replace(s, text=text[:-k])
    return s


def _only_extra_closers(kept: str, full: str) -> bool:
    """True when dropping ``full[len(kept):]`` removes no closer that ``kept`` still needs."""
    for close, open_ in _PAIRS.items():
        if kept.count(open_) - kept.count(close) > max(full.count(open_) - full.count(close), 0):
            return False
    return all(kept.count(q) % 2 == 0 or full.count(q) % 2 == 1 for q in _QUOTES)


def drop_blank(s: Suggestion, ctx: Context) -> Suggestion:
    """Whitespace-only output is no suggestion."""
    return s if s.text.strip() else replace(s, text="")


STEPS: list[Step] = [single_line, drop_repeated_line_suffix, drop_blank]


def postprocess(raw: str, ctx: Context, steps: list[Step] | None = None) -> Suggestion | None:
    """Apply every step in order; ``None`` when nothing worth showing is left."""
    s = Suggestion(raw)
    for step in steps or STEPS:
        s = step(s, ctx)
        if not s.text:
            return None
    return s


def stop_check(ctx: Context) -> Callable[[str], bool]:
    """Tell the engine when generating more cannot change the suggestion."""
    if ctx.single_line:
        return lambda text: "\n" in text
    return lambda text: False
