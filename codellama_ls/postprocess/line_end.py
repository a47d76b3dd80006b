"""Steps 3 and 4, ``single_line`` and ``line_comment``: where only the rest of one line makes sense,
end at the first newline. Mid-line with code after the cursor, nothing but the rest of that line
fits before the code; inside a line comment, the comment ends with its line."""

from __future__ import annotations

from codellama_ls.postprocess.cursor import Context, Cutter


def _single_line_end(text: str, ctx: Context, final: bool) -> int | None:
    if ctx.mode != "single":
        return None
    nl = text.find("\n")
    return nl if nl >= 0 else None


single_line = Cutter(_single_line_end, "Mid-line with code after the cursor: keep only the first line.")


def _line_comment_end(text: str, ctx: Context, final: bool) -> int | None:
    if not ctx.in_line_comment:
        return None
    nl = text.find("\n")
    return nl if nl >= 0 else None


line_comment = Cutter(_line_comment_end, "Inside a line comment: finish the comment, end at that line.")
