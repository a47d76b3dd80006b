"""Step 14, ``minimum``: what the other steps leave may not be worth showing. Drop a suggestion that
adds fewer than ``MIN_CHARS`` non-blank characters, or that only repeats the next line."""

from __future__ import annotations

from dataclasses import replace

from codellama_ls.postprocess.cursor import Context, Suggestion

MIN_CHARS = 1  # a suggestion must add at least this many non-blank characters (`0`, `*`, `}` are answers)


def minimum(s: Suggestion, ctx: Context) -> Suggestion:
    """Drop suggestions that add fewer than MIN_CHARS non-blank characters or repeat the next line."""
    replaced = ctx.line_suffix[: s.replace]
    added = sum(not c.isspace() for c in s.text) - sum(not c.isspace() for c in replaced)
    if added < MIN_CHARS:
        return replace(s, text="")
    if "\n" not in s.text and ctx.next_nonblank:
        line = (ctx.line_prefix + s.text + ctx.line_suffix[s.replace :]).strip()
        if line == ctx.next_nonblank[0].strip():
            return replace(s, text="")
    return s
