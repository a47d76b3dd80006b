"""Step 7, ``scope``: a suggestion belongs to the block the cursor is in. End where the output
leaves that block (a dedent, or a first line that closes it), keeping ``else:``/``} else {``
continuations and one closing line the suffix does not already have; at top level, end at a
blank line. The tables below say which lines close, continue or open a block."""

from __future__ import annotations

import re

from codellama_ls.postprocess.cursor import Context, Cutter
from codellama_ls.postprocess.text import (
    _CLOSE,
    _CLOSER_WORDS,
    _CONTINUATION,
    _code,
    _indent,
    _line_starts,
)

# A line that closes a block: `}`, `)`, `});`, `end`...
_CLOSING = re.compile(r"^(?:[)\]}]|(?:" + "|".join(_CLOSER_WORDS) + r")\b)")
_KEYWORDS = ("else", "elif", "except", "finally", "catch", *_CLOSER_WORDS)
_WORD = re.compile(r"\w+")
# A line ending like this opens a block (its body is indented deeper).
_OPENERS = ("{", "(", "[", ":")
# A line ending like this continues on the next line (no statement ends there).
_CONTINUES = (*_OPENERS, ",", "\\", "=", "+", "-", "*", "/", "|", "&", ".", "?")


def _may_be_special(partial: str) -> bool:
    """Could this start of a line still become a continuation or closing line?"""
    if partial[0] in _CLOSE:
        return True
    m = _WORD.match(partial)
    if not m:
        return False
    word = m.group()
    if m.end() < len(partial):
        return word in _KEYWORDS
    return any(k.startswith(word) for k in _KEYWORDS)


def _suffix_closes(ctx: Context, indent: int, block: int, opens: bool) -> bool:
    """Does the code after the cursor already close the block at ``indent``?"""
    for line in ctx.next_lines:
        if not line.strip():
            continue
        width = _indent(line)
        if width <= block if opens else width < block:
            return width == indent and bool(_CLOSING.match(line.strip()))
    return False


def _scope_end(text: str, ctx: Context, final: bool) -> int | None:
    if "\n" not in text:
        return None
    lines = text.split("\n")
    starts = _line_starts(lines)
    last = len(lines) - 1

    def end_of(i: int) -> int:
        return starts[i] + len(lines[i])

    # The anchor is the cursor line as it will read after accepting (or, when that stays
    # blank, the first non-blank line of the output): its indentation is the block's.
    anchor = 0
    head = ctx.line_prefix + lines[0]
    if not head.strip():
        anchor = next((i for i in range(1, len(lines)) if lines[i].strip()), -1)
        if anchor < 0 or (anchor == last and not final):
            return None
        head = lines[anchor]
    block = _indent(head)
    # On a line of its own, the output starts by closing the block the cursor is in (`}`, `end`,
    # not `} else {`): what follows is outside that block, another suggestion.
    if not ctx.line_prefix.strip() and _closes_block(head):
        return end_of(anchor) if anchor < last or final else None
    # The user typed a block opener and the output goes on the next line, or the cursor sits
    # inside brackets closed after it: the output fills that block, and ends at the first
    # line back at the cursor line's indentation.
    typed = not lines[0].strip() and _code(ctx.line_prefix).endswith(_OPENERS)
    opens = anchor == 0 and (typed or ctx.mode == "closers")
    # The output opened a block itself (a new function...): a blank line and a line back at
    # its indentation start a sibling, which belongs to another suggestion.
    sibling = not opens and _code(head).endswith(_OPENERS)
    top = block == 0 and not opens
    prev = anchor  # the last non-blank line kept
    blank_since = False
    for i in range(anchor + 1, len(lines)):
        line = lines[i]
        complete = final or i < last
        stripped = line.strip()
        if not stripped:
            if not complete:
                return None
            blank_since = True
            previous = head if prev == anchor else lines[prev]
            if top and _indent(previous) == 0 and not _code(previous).endswith(_CONTINUES):
                return end_of(prev)  # a blank line after a finished top-level statement
            continue
        width = _indent(line)
        if (top or sibling) and blank_since and width <= block:
            return end_of(prev)  # a new item (top-level statement, sibling definition) after a blank line
        blank_since = False
        if not (width <= block if opens else width < block):
            prev = i
            continue
        if not complete:
            return None if _may_be_special(stripped) else end_of(prev)
        if _CONTINUATION.match(stripped):
            prev = i
            continue
        if _CLOSING.match(stripped) and not _suffix_closes(ctx, width, block, opens):
            return end_of(i)  # keep one closing line the suffix does not have
        return end_of(prev)
    return None


def _closes_block(line: str) -> bool:
    """A line that only closes a block: `}`, `});`, `end` (not `} else {`, `}, {`, `done = True`)."""
    stripped = line.strip()
    if stripped.rstrip(";,.)") in _CLOSER_WORDS:
        return True
    return stripped[:1] in _CLOSE and not _CONTINUATION.match(stripped) and not _code(line).endswith(_OPENERS)


scope = Cutter(
    _scope_end, "End where the output leaves the cursor's block, or at a blank line at top level.", partial=True
)
