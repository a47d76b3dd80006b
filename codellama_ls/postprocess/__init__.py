"""Turn raw model output into a suggestion that is safe to insert.

Raw output starts right at the cursor. Each step is a small named function
``(Suggestion, Context) -> Suggestion``, applied in ``STEPS`` order (its module in brackets):

1. ``token_limit`` (``limit``): decoding stopped at ``maxNewTokens``, drop a last line cut
   mid-way (unless it is the only line, an opening fence line not counted);
2. ``fence`` (``fences``): drop an opening Markdown fence line, end before the next fence line
   (unless fences are content here: Markdown prose, a multi-line string);
3. ``single_line`` (``line_end``): mid-line with code after the cursor, keep the first line only;
4. ``line_comment`` (``line_end``): the cursor is in a line comment, end at the end of that line;
5. ``echo`` (``echoes``): a line equal to the next non-blank line after the cursor (whitespace
   normalised, closing lines left to ``scope``) ends the suggestion where it starts;
6. ``close_line`` (``brackets``): the rest of the line is auto-closed punctuation and the model
   wrote it itself, end at that line, unless that line opens a block (``def fib(n):``, ``) {``);
7. ``scope`` (``blocks``): end where the output leaves the cursor's block (dedent, or a first
   line that closes it), keeping ``else:``/``} else {`` continuations and one closing line the
   suffix does not already have; at top level, end at a blank line;
8. ``repetition`` (``repeats``): cut the model looping on a line or block; a continuation line
   twice in a row ends the suggestion before it, a key set twice in a row after the first;
9. ``line_loop`` (``loops``): drop a line that loops inside itself (``0, 0, 0, ...``,
   ``foo(foo(...``), and a last line the answer stopped in the middle of a loop in;
10. ``whitespace`` (``spacing``): no doubled space at the join, the document's indentation
    (tabs/spaces), no trailing whitespace;
11. ``suffix_overlap`` (``overlap``): drop trailing lines that repeat the lines after the cursor;
12. ``line_suffix_overlap`` (``overlap``): mid-line, drop a tail that repeats the rest of the line;
13. ``auto_closed`` (``brackets``): when the rest of the line is only closing punctuation, the
    suggestion replaces it (``Suggestion.replace``), so accepting never duplicates a ``)``;
14. ``minimum`` (``minimal``): drop suggestions that add only whitespace or just repeat the next
    line.

Steps 2 to 9 (``ENDS``) only ever cut the text (``fence`` drops an opening fence line first, and
``stop_check`` does the same), and each is backed by a *finder* (a ``Cutter``) that
decides where the suggestion ends from the text generated so far. ``stop_check`` asks the
same finders after every token, so decoding stops as soon as the cut is known, and stopping
early gives exactly the suggestion that generating to the end would have given.
``token_limit`` cuts too, but only the end of decoding knows that the limit was hit.

What every step asks about the cursor (``Context``, ``Suggestion``, ``Cutter``) is in ``cursor``;
the small text facts several steps share are in ``text``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from codellama_ls.postprocess.blocks import scope
from codellama_ls.postprocess.brackets import auto_closed, close_line
from codellama_ls.postprocess.cursor import Context, Cutter, Step, Suggestion
from codellama_ls.postprocess.echoes import echo
from codellama_ls.postprocess.fences import fence
from codellama_ls.postprocess.limit import token_limit
from codellama_ls.postprocess.line_end import line_comment, single_line
from codellama_ls.postprocess.loops import line_loop
from codellama_ls.postprocess.minimal import minimum
from codellama_ls.postprocess.overlap import line_suffix_overlap, suffix_overlap
from codellama_ls.postprocess.repeats import repetition
from codellama_ls.postprocess.spacing import whitespace

__all__ = [
    "ENDS",
    "STEPS",
    "Context",
    "Cutter",
    "Step",
    "Suggestion",
    "auto_closed",
    "close_line",
    "echo",
    "fence",
    "line_comment",
    "line_loop",
    "line_suffix_overlap",
    "minimum",
    "postprocess",
    "repetition",
    "scope",
    "single_line",
    "stop_check",
    "suffix_overlap",
    "token_limit",
    "whitespace",
]

# The cutting steps (2 to 9), in order: the pipeline runs them within STEPS, and ``stop_check``
# asks their finders after every token.
ENDS: tuple[Cutter, ...] = (fence, single_line, line_comment, echo, close_line, scope, repetition, line_loop)
# Every step, in the order the pipeline applies them.
STEPS: tuple[Step, ...] = (
    token_limit,
    *ENDS,
    whitespace,
    suffix_overlap,
    line_suffix_overlap,
    auto_closed,
    minimum,
)


def postprocess(
    raw: str, ctx: Context, steps: Sequence[Step] | None = None, *, truncated: bool = False
) -> Suggestion | None:
    """Apply every step in order; ``None`` when nothing worth showing is left.

    ``truncated``: decoding stopped at ``maxNewTokens`` (``GenerationResult.stop_reason ==
    "length"``), so the last line may be cut mid-way.
    """
    if truncated and not ctx.truncated:
        ctx = replace(ctx, truncated=True)
    s = Suggestion(raw.replace("\r\n", "\n"))
    for step in STEPS if steps is None else steps:
        s = step(s, ctx)
        if not s.text:
            return None
    return s


def stop_check(ctx: Context, steps: Sequence[Step] | None = None) -> Callable[[str], bool]:
    """Tell the engine when generating more cannot change the suggestion.

    True as soon as one of the cutting steps knows where the suggestion ends (single-line:
    the first newline; multi-line: a line leaving the block, a blank line at top level, a
    closing line, a loop). Those decisions never change with more text, so the suggestion
    is the same as if decoding had run to the end.
    """
    cutters: Sequence[Cutter] = [step for step in steps if isinstance(step, Cutter)] if steps else ENDS
    whole = [c for c in cutters if not c.partial]
    partial = [c for c in cutters if c.partial]
    heads = [c.head for c in cutters if c.head is not None]
    memo: dict[str, object] = {"head": None, "done": False}

    def check(text: str) -> bool:
        text = text.replace("\r\n", "\n")
        for rewrite in heads:
            text = rewrite(text, ctx)
        # Whole-line finders cannot change their mind until another line is complete.
        head = text[: text.rfind("\n") + 1]
        if head != memo["head"]:
            memo["head"], memo["done"] = head, any(c.find(text, ctx, False) is not None for c in whole)
        return bool(memo["done"]) or any(c.find(text, ctx, False) is not None for c in partial)

    return check
