"""Step 5, ``echo``: a FIM model often writes the code after the cursor again. A line equal to the
next non-blank line after the cursor (whitespace normalised) ends the suggestion where it starts.
Closing lines (``}``, ``end``) are left to ``scope``, which knows whether the block needs one."""

from __future__ import annotations

from codellama_ls.postprocess.cursor import Context, Cutter
from codellama_ls.postprocess.text import (
    _CLOSE,
    _CLOSER_WORDS,
    _echo_key,
)


def _echo_end(text: str, ctx: Context, final: bool) -> int | None:
    target = ctx.echo_target
    if target is None or ctx.mode == "single":
        return None
    # Lines ended by a newline only (a last line without one is the business of suffix_overlap),
    # and not a closing line like `}` (scope decides whether the block needs one).
    # The cursor line counts when the cursor is on a blank line (a new line of code).
    if _only_closes(target[1]):
        return None
    cursor_line = not ctx.line_prefix.strip()
    pos = 0
    for i, line in enumerate(text.split("\n")[:-1]):
        if (i or cursor_line) and _echo_key(ctx.line_prefix + line if i == 0 else line) == target:
            return pos
        pos += len(line) + 1
    return None


def _only_closes(line: str) -> bool:
    core = line.strip()
    return all(c in _CLOSE or c in ";,." for c in core) or core.rstrip(";,.") in _CLOSER_WORDS


echo = Cutter(_echo_end, "A line equal to the next non-blank line after the cursor: the model echoes, end there.")
