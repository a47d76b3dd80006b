"""Steps 6 and 13, ``close_line`` and ``auto_closed``: the editor auto-closed brackets and quotes
after the cursor (``print(|)``), and a model may or may not write them again.

``close_line``: the model wrote them itself, so end at that line, unless the line opens a block
(``def fib(n):``, ``) {``) whose body follows. ``auto_closed``: the suggestion replaces the
closers and ends with them, so accepting never leaves a ``)`` twice."""

from __future__ import annotations

from codellama_ls.postprocess.cursor import Context, Cutter, Suggestion, _extras
from codellama_ls.postprocess.text import (
    _CLOSE,
    _QUOTES,
    _code,
    _indent,
    _lead,
)

# A line ending like this opens a block of statements (a body follows).
_BLOCK_OPENERS = (":", "{")


def _close_line_end(text: str, ctx: Context, final: bool) -> int | None:
    need = ctx.need
    if not need:
        return None
    n = 0
    for pos, ch in _extras(text, ctx):
        if ch != need[n]:
            return None  # it closed something else: leave the end to the other steps
        n += 1
        if n == len(need):
            nl = text.find("\n", pos)
            if nl < 0 and not final:
                return None
            end = len(text) if nl < 0 else nl
            if _code(text[pos + 1 : end]).endswith(_BLOCK_OPENERS):
                return None  # a signature or `if (...) {`: its body follows, and scope ends it
            return end
    return None


close_line = Cutter(
    _close_line_end,
    "Only closers after the cursor and the model wrote them itself: end at that line, unless it opens a block.",
)


def auto_closed(s: Suggestion, ctx: Context) -> Suggestion:
    """Only closers after the cursor: the suggestion replaces them and ends with them.

    A FIM model leaves them out (they are in its suffix) and gets them appended; a model
    that wrote them itself keeps its own. Either way accepting leaves one ``)``.
    """
    if ctx.mode != "closers":
        return s
    rest = ctx.line_suffix.rstrip()
    need = ctx.need
    text = s.text
    n, last = 0, -1
    for pos, ch in _extras(text, ctx):
        if n == len(need) or ch != need[n]:
            break
        n, last = n + 1, pos
    if n == len(need):  # the model closed everything itself; `;` and the like may still be due
        tail = rest[_nth(rest, n - 1) + 1 :].strip() if n else rest.strip()
        closing = text[last + 1 :].split("\n", 1)[0] if n else text  # the line where it closed them
        done = not tail or closing.rstrip().endswith(tail)
        missing = "" if done else (tail if n else rest)
    else:
        missing = rest[_nth(rest, n) :] if n else rest
    if missing and "\n" in text and missing.lstrip()[:1] in _CLOSE:
        indent = _lead(ctx.line_prefix)
        if _indent(text.rsplit("\n", 1)[1]) > _indent(indent):
            missing = "\n" + indent + missing.lstrip()
    return Suggestion(text + missing, len(rest))


def _nth(rest: str, n: int) -> int:
    """Index in ``rest`` of the ``n``-th (0-based) bracket or quote."""
    seen = -1
    for i, c in enumerate(rest):
        if c in _CLOSE or c in _QUOTES:
            seen += 1
            if seen == n:
                return i
    return len(rest)
