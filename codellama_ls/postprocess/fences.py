"""Step 2, ``fence``: chat-tuned models wrap code in Markdown fences (```` ```python ````) or write
one after it. In code, drop an opening fence line and end before the next fence line; where
fences are content (Markdown prose, a multi-line string) leave them be; inside a fenced block of
a Markdown document, end after the fence line that closes the block."""

from __future__ import annotations

from codellama_ls.postprocess.cursor import Context, Cutter
from codellama_ls.postprocess.text import (
    _FENCE,
    _open_string,
)


def _open_fence(text: str, ctx: Context) -> str:
    """The output without the opening fence line (```` ```python ````) a chat-tuned model starts with."""
    if ctx.fences != "code":
        return text
    body = text.lstrip(" \t\n")
    if "\n" in text[: len(text) - len(body)] and (ctx.mode != "multi" or ctx.in_line_comment):
        return text  # the first line ended the answer already (single line, a comment)
    if body in ("`", "``", "~", "~~"):
        return ""  # may still become a fence: nothing to judge yet
    if not body.startswith(("```", "~~~")):
        return text
    nl = body.find("\n")
    if nl < 0:
        return ""  # the fence line itself, so far
    rest = body[nl + 1 :]
    if ctx.mode == "multi" and ctx.line_prefix.strip():
        return "\n" + rest  # after `def f():` the code goes on the next line
    return rest.lstrip(" \t")  # the cursor line has the indentation already


def _fence_end(text: str, ctx: Context, final: bool) -> int | None:
    mode = ctx.fences
    if mode == "text" or ("```" not in text and "~~~" not in text):
        return None
    pos = 0
    for line in text.split("\n"):
        if _FENCE.match(line) and not _open_string(text[:pos], ctx.language_id):
            if mode == "code" or any(_FENCE.match(after) for after in ctx.next_lines):
                return max(pos - 1, 0)  # not code (or the document closes the block already): end before it
            end = pos + len(line)
            return end if end < len(text) or final else None  # the fence closes the block: end after it
        pos += len(line) + 1
    return None


fence = Cutter(
    _fence_end,
    "Markdown fences in code: drop an opening fence line, end before the closing one.",
    partial=True,
    head=_open_fence,
)
