"""Steps 11 and 12, ``suffix_overlap`` and ``line_suffix_overlap``: a FIM model may end by writing
what already follows the cursor. Drop trailing lines that repeat the lines after the cursor and,
mid-line, a tail that repeats the rest of the line, so accepting never doubles them."""

from __future__ import annotations

from dataclasses import replace

from codellama_ls.postprocess.cursor import Context, Suggestion, _extras
from codellama_ls.postprocess.text import (
    _CLOSE,
    _meaningful,
)


def suffix_overlap(s: Suggestion, ctx: Context) -> Suggestion:
    """Drop trailing lines that repeat the next non-blank lines after the cursor (two lines or
    more of code in any indentation, one line with its indentation)."""
    if ctx.mode == "single" or not ctx.next_nonblank:
        return s
    lines = s.text.split("\n")
    first = 0 if not ctx.line_prefix.strip() else 1  # the cursor line counts when it is new
    rows = [ctx.line_prefix + lines[0], *lines[1:]]
    kept = [i for i in range(first, len(rows)) if rows[i].strip()]
    nxt = ctx.next_nonblank
    for m in range(min(len(kept), len(nxt)), 0, -1):
        tail = [rows[i].rstrip() for i in kept[-m:]]
        # Two lines of code or more in the same order are the same code, however indented;
        # one line (a `}`, a `return x`) must match its indentation too.
        same_code = [r.strip() for r in tail] == [n.strip() for n in nxt[:m]]
        loose = m >= 2 and same_code and any(_meaningful(r) for r in tail)
        if tail == nxt[:m] or loose:
            cut = kept[-m]
            return replace(s, text="\n".join(lines[:cut]).rstrip() if cut else "")
    return s


def line_suffix_overlap(s: Suggestion, ctx: Context) -> Suggestion:
    """Mid-line: drop a tail that repeats what already follows the cursor on its line.

    A tail's brackets and quotes must close something opened before the suggestion, so
    ``f(x)`` before an existing ``)`` keeps its own closing bracket.
    """
    if ctx.mode != "single":
        return s
    rest = ctx.line_suffix.strip()
    text = s.text.rstrip()
    extra = {pos for pos, _ in _extras(text, ctx)}
    for k in range(min(len(rest), len(text)), 0, -1):
        if not text.endswith(rest[:k]):
            continue
        tail = range(len(text) - k, len(text))
        if all(p in extra for p in tail if text[p] in _CLOSE):
            kept = text[:-k]
            return replace(s, text=kept.rstrip(" \t") if ctx.line_suffix[:1] in (" ", "\t") else kept)
    return s
