"""Turn raw model output into a suggestion that is safe to insert.

Raw output starts right at the cursor. Each step is a small named function
``(Suggestion, Context) -> Suggestion``, applied in ``STEPS`` order:

1. ``token_limit``: decoding stopped at ``maxNewTokens``, drop a last line cut mid-way
   (unless it is the only line, an opening fence line not counted);
2. ``fence``: drop an opening Markdown fence line, end before the next fence line (unless
   fences are content here: Markdown prose, a multi-line string);
3. ``single_line``: mid-line with code after the cursor, keep the first line only;
4. ``line_comment``: the cursor is in a line comment, end at the end of that line;
5. ``echo``: a line equal to the next non-blank line after the cursor (whitespace
   normalised, closing lines left to ``scope``) ends the suggestion where it starts;
6. ``close_line``: the rest of the line is auto-closed punctuation and the model wrote it
   itself, end at that line, unless that line opens a block (``def fib(n):``, ``) {``);
7. ``scope``: end where the output leaves the cursor's block (dedent, or a first line that
   closes it), keeping ``else:``/``} else {`` continuations and one closing line the suffix
   does not already have; at top level, end at a blank line;
8. ``repetition``: cut the model looping on a line or block; a continuation line twice in a
   row ends the suggestion before it, a key set twice in a row after the first;
9. ``line_loop``: drop a line that loops inside itself (``0, 0, 0, ...``, ``foo(foo(...``),
   and a last line the answer stopped in the middle of a loop in;
10. ``whitespace``: no doubled space at the join, the document's indentation (tabs/spaces),
    no trailing whitespace;
11. ``suffix_overlap``: drop trailing lines that repeat the lines after the cursor;
12. ``line_suffix_overlap``: mid-line, drop a tail that repeats the rest of the line;
13. ``auto_closed``: when the rest of the line is only closing punctuation, the suggestion
    replaces it (``Suggestion.replace``), so accepting never duplicates a ``)``;
14. ``minimum``: drop suggestions that add only whitespace or just repeat the next line.

Steps 2 to 9 only ever cut the text (``fence`` drops an opening fence line first, and
``stop_check`` does the same), and each is backed by a *finder* (a ``Cutter``) that
decides where the suggestion ends from the text generated so far. ``stop_check`` asks the
same finders after every token, so decoding stops as soon as the cut is known, and stopping
early gives exactly the suggestion that generating to the end would have given.
``token_limit`` cuts too, but only the end of decoding knows that the limit was hit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache

from codellama_ls.lines import TAB_WIDTH
from codellama_ls.postprocess.cursor import Context, Cutter, Step, Suggestion, _extras
from codellama_ls.postprocess.text import (
    _CLOSE,
    _CLOSER_WORDS,
    _CONTINUATION,
    _FENCE,
    _OPEN,
    _QUOTES,
    _code,
    _echo_key,
    _indent,
    _lead,
    _line_starts,
    _meaningful,
    _open_string,
)

__all__ = [
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

# A line that closes a block: `}`, `)`, `});`, `end`...
_CLOSING = re.compile(r"^(?:[)\]}]|(?:" + "|".join(_CLOSER_WORDS) + r")\b)")
_KEYWORDS = ("else", "elif", "except", "finally", "catch", *_CLOSER_WORDS)
_WORD = re.compile(r"\w+")
# A line ending like this opens a block (its body is indented deeper).
_OPENERS = ("{", "(", "[", ":")
# A line ending like this opens a block of statements (a body follows).
_BLOCK_OPENERS = (":", "{")
# A line ending like this continues on the next line (no statement ends there).
_CONTINUES = (*_OPENERS, ",", "\\", "=", "+", "-", "*", "/", "|", "&", ".", "?")

MIN_CHARS = 1  # a suggestion must add at least this many non-blank characters (`0`, `*`, `}` are answers)
MAX_BLOCK = 8  # longest block (in lines) the repetition filter looks for
# A loop inside one line: a unit with a letter or digit in it (rulers like `# -----` are
# legitimate), repeated back to back over LOOP_RUN characters (longer than a line of code
# should be: `0, 0, 0, ...`, `densdens...`), or LOOP_NESTED times when it opens more brackets
# than it closes (`foo(foo(foo(...`). Units up to LOOP_UNIT characters.
LOOP_RUN = 100
LOOP_NESTED = 5
LOOP_UNIT = 40
# A unit with two letters or more (`dens`, `END ro`) repeated LOOP_WORDY times over LOOP_WORDY_RUN
# characters is a loop on any line: no identifier or sentence repeats so; test strings (`ACGT` x 8)
# stay under it.
LOOP_WORDY = 12
LOOP_WORDY_RUN = 48
# The suggestion's last line ends in a unit of 3 to 9 characters repeated TAIL_SHORT times, or of
# 10 or more TAIL_LONG times: the loop decoding stopped in (Tabby drops such a last line too). A
# unit with two letters or more counts anywhere in the line when nothing after it closes a bracket,
# a quote or a statement (`niveaudensdensdens... vie vie`); a unit without letters (`0, `) only when
# it runs to the end and decoding hit the token limit in it or the line leaves a bracket open
# (`x = [0, 0, 0, 0, 0, 0`); a run the document has is no loop.
TAIL_SHORT = 5
TAIL_LONG = 3
TAIL_SAME = 24  # one character repeated this long at the very end (`1000000000000000000000000...`)
_RUNS = [re.compile(rf"(.{{{k}}})\1{{2,}}") for k in range(1, LOOP_UNIT + 1)]  # a unit three times or more


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


# -- 1. token limit ----------------------------------------------------------------------
def token_limit(s: Suggestion, ctx: Context) -> Suggestion:
    """Decoding stopped at ``maxNewTokens``: drop the last line, cut mid-way, unless it is the only one."""
    if not ctx.truncated:
        return s
    nl = s.text.rfind("\n")
    head = s.text[:nl]
    if nl < 0 or not s.text[nl + 1 :].strip() or all(not ln.strip() or _FENCE.match(ln) for ln in head.split("\n")):
        return s  # the only line of code (after an opening fence, which ``fence`` drops)
    return replace(s, text=s.text[: nl + 1])


# -- 2. fence ----------------------------------------------------------------------------
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


# -- 3. single line ---------------------------------------------------------------------
def _single_line_end(text: str, ctx: Context, final: bool) -> int | None:
    if ctx.mode != "single":
        return None
    nl = text.find("\n")
    return nl if nl >= 0 else None


single_line = Cutter(_single_line_end, "Mid-line with code after the cursor: keep only the first line.")


# -- 4. line comment --------------------------------------------------------------------
def _line_comment_end(text: str, ctx: Context, final: bool) -> int | None:
    if not ctx.in_line_comment:
        return None
    nl = text.find("\n")
    return nl if nl >= 0 else None


line_comment = Cutter(_line_comment_end, "Inside a line comment: finish the comment, end at that line.")


# -- 5. echo ----------------------------------------------------------------------------
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


# -- 6. close line ----------------------------------------------------------------------
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


# -- 7. scope ---------------------------------------------------------------------------
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


# -- 8. repetition ----------------------------------------------------------------------
# A line that sets a key or a name: `KEY: value`, `"key": 1,`, `x = 1;`, `- name: web`, `x := f()`.
_DEFINITION = re.compile(r"^\s*(?:-\s+)?([\"']?)([A-Za-z_$][\w.$-]*)\1\s*(?::=|:(?!:)|=(?!=))\s*(\S.*)$")


def _defines(row: str) -> bool:
    """Does the line set a key or name to a value that does not use it (`i = i + 1` may repeat)?"""
    m = _DEFINITION.match(row)
    return m is not None and re.search(rf"\b{re.escape(m.group(2))}\b", m.group(3)) is None


def _repetition_end(text: str, ctx: Context, final: bool) -> int | None:
    if "\n" not in text:
        return None
    lines = text.split("\n")
    complete = len(lines) if final else len(lines) - 1
    # Blank lines are skipped: a loop is the same code again, however it is spaced.
    where = [i for i in range(complete) if lines[i].strip()]
    rows = [(ctx.line_prefix + lines[0] if i == 0 else lines[i]).rstrip() for i in where]
    # Scan by the row where a repetition completes, so the first one found never moves.
    for e in range(2, len(rows) + 1):
        if rows[e - 1] == rows[e - 2] and _defines(rows[e - 1]):
            # `POSTGRES_DB: mydb` twice in a row: a key is set once; keep the first.
            return _line_starts(lines)[where[e - 2]] + len(lines[where[e - 2]])
        if rows[e - 1] == rows[e - 2] and _CONTINUATION.match(rows[e - 1].lstrip()):
            # `else:`/`} else {` twice in a row: a loop, and a body-less `else` is no use either.
            return 0 if e == 2 else _line_starts(lines)[where[e - 3]] + len(lines[where[e - 3]])
        for k in range(1, min(MAX_BLOCK, e // 2) + 1):
            copies = 3 if k == 1 else 2
            if e < copies * k or rows[e - 1] != rows[e - 1 - k]:
                continue
            block = rows[e - k : e]
            if not any(_meaningful(r) for r in block):
                continue
            if all(rows[e - j * k : e - (j - 1) * k] == block for j in range(2, copies + 1)):
                last = where[e - (copies - 1) * k - 1]  # the last line of the first copy
                return _line_starts(lines)[last] + len(lines[last])
    return None


repetition = Cutter(
    _repetition_end,
    "The model loops (a line three times, a block twice in a row): keep one copy; "
    "a continuation line (`else:`, `} else {`) twice in a row: end before it.",
)


# -- 9. line loop ------------------------------------------------------------------------
def _unit_runs(line: str, repeats: int, min_unit: int = 1) -> list[re.Match[str]]:
    """Runs of a unit of ``min_unit`` to LOOP_UNIT characters repeated ``repeats`` times or more."""
    out: list[re.Match[str]] = []
    for k in range(min_unit, min(LOOP_UNIT, len(line) // max(repeats, 1)) + 1):
        pattern = _RUNS[k - 1] if repeats == 3 else _run_pattern(k, repeats)
        out.extend(m for m in pattern.finditer(line) if any(c.isalnum() for c in m.group(1)))
    return out


@lru_cache(maxsize=256)
def _run_pattern(k: int, repeats: int) -> re.Pattern[str]:
    return re.compile(rf"(.{{{k}}})\1{{{repeats - 1},}}")


_BASE_PREFIX = re.compile(r"0[bBoOxX]$")
_ENDERS = _CLOSE + _QUOTES + ";"


def _letters(unit: str) -> int:
    """Distinct letters in the unit's shortest period (`0x00, 0x00, ` has one: data, not words)."""
    k = len(unit)
    period = next(unit[:p] for p in range(1, k + 1) if k % p == 0 and unit[:p] * (k // p) == unit)
    return len({c for c in period if c.isalpha()})


@lru_cache(maxsize=1024)
def _loops(line: str) -> bool:
    """Does ``line`` hold a loop on any line (see LOOP_RUN, LOOP_WORDY)? Once true, true for every
    longer line starting so."""
    if len(line) < LOOP_WORDY_RUN and sum(line.count(c) for c in _OPEN) < LOOP_NESTED:
        return False  # too short for a long run, too few brackets for a nested one
    for m in _unit_runs(line, 3):
        unit, run = m.group(1), m.end() - m.start()
        if run >= LOOP_RUN:
            return True
        # a word-like unit (`aaaa...` has one letter: a test string)
        if _letters(unit) >= 2 and run >= LOOP_WORDY_RUN and run >= LOOP_WORDY * len(unit):
            return True
        opens = sum(c in _OPEN for c in unit) > sum(c in _CLOSE for c in unit)
        if opens and run >= LOOP_NESTED * len(unit):
            return True
    return False


def _in_document(unit: str, ctx: Context) -> bool:
    """Does the document itself repeat ``unit`` three times (in any rotation)? Then it is its style."""
    k = len(unit)
    wheel = unit * 4
    near = ctx.prefix[-20_000:] + "\n" + ctx.suffix[:20_000]
    return any(wheel[i : i + 3 * k] in near for i in range(k))


def _tail_loops(line: str, ctx: Context, first: bool) -> bool:
    """The suggestion ends with ``line``: does it end in a loop (see TAIL_SHORT)?"""
    body = line.rstrip()
    if first and ctx.open_quote is not None:
        return False  # the user's own string: test data may repeat
    whole = (ctx.line_prefix if first else "") + body + ctx.line_suffix  # the line as accepting leaves it
    for m in [*_unit_runs(body, TAIL_SHORT, 3), *_unit_runs(body, TAIL_LONG, 10)]:
        unit, rest = m.group(1), body[m.end() :]
        to_end = unit.startswith(rest)  # nothing after the run but the start of another copy
        if len(set(unit)) == 1:
            if not to_end or m.end() - m.start() < TAIL_SAME or _BASE_PREFIX.search(body[: m.start()]):
                continue  # `0xFFFF`, `0b1111...`: a literal; `1000...000` on and on is not
        elif _letters(unit) >= 2:
            if not to_end and any(c in rest for c in _ENDERS):
                continue  # `"ACGTACGT..."`: the line closes what holds the run, a string of test data
        elif not (to_end and (ctx.truncated or _unclosed(whole))):
            continue  # `0, 0, 0, 0, 0` before `]`: data, unless decoding was cut off in it or left `[` open
        if not _in_document(unit, ctx):
            return True
    return False


def _unclosed(line: str) -> bool:
    """Does the line open more brackets than it closes (a statement the run never finished)?"""
    return sum(c in _OPEN for c in line) > sum(c in _CLOSE for c in line)


def _line_loop_end(text: str, ctx: Context, final: bool) -> int | None:
    lines = text.split("\n")
    starts = _line_starts(lines)
    cut = next((i for i, line in enumerate(lines) if len(line) >= 2 * LOOP_NESTED and _loops(line)), len(lines))
    if final:  # what is left ends with its last non-blank line: does it end in a loop?
        last = next((i for i in range(cut - 1, -1, -1) if lines[i].strip()), None)
        if last is not None and _tail_loops(lines[last], ctx, last == 0):
            return max(starts[last] - 1, 0)
    return max(starts[cut] - 1, 0) if cut < len(lines) else None


line_loop = Cutter(
    _line_loop_end,
    "A line that loops (`0, 0, 0, ...`, `foo(foo(...`, an answer ending in `densdensdens`): drop it and what follows.",
    partial=True,
)


# -- 10. whitespace ---------------------------------------------------------------------
def _reindent(line: str, tabs: bool, unit: int, own_unit: int) -> str:
    lead = _lead(line)
    if not lead:
        return line
    if tabs and " " in lead:
        width = sum(TAB_WIDTH if c == "\t" else 1 for c in lead) if "\t" in lead else len(lead)
        levels, extra = divmod(width, own_unit)
        return "\t" * levels + " " * extra + line[len(lead) :]
    if not tabs and "\t" in lead:
        return lead.replace("\t", " " * unit) + line[len(lead) :]
    return line


def whitespace(s: Suggestion, ctx: Context) -> Suggestion:
    """No doubled space at the join, the document's tabs or spaces, no trailing whitespace."""
    text = s.text
    lp = ctx.line_prefix
    if lp.strip() and lp[-1] in " \t":
        first, nl, rest = text.partition("\n")
        text = first.lstrip(" \t") + nl + rest
    lines = text.split("\n")
    tabs, unit = ctx.indent_style
    if tabs is not None:
        own = math.gcd(*(len(_lead(line)) for line in lines[1:] if line.strip() and "\t" not in _lead(line)))
        own_unit = next((u for u in (4, 2, 3) if own and own % u == 0), 4)  # the output's own space unit
        start = 0 if lp else 1  # the first line's indentation is the cursor's when it is mid-line
        lines = lines[:start] + [_reindent(line, tabs, unit, own_unit) for line in lines[start:]]
    lines = [line.rstrip() for line in lines[:-1]] + lines[-1:]
    text = "\n".join(lines)
    if ctx.mode == "single":
        if ctx.line_suffix[:1] in (" ", "\t"):
            text = text.rstrip(" \t")
    else:
        text = text.rstrip()
    return replace(s, text=text)


# -- 11. suffix overlap -----------------------------------------------------------------
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


# -- 12. line suffix overlap ------------------------------------------------------------
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


# -- 13. auto-closed characters ---------------------------------------------------------
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


# -- 14. minimum ------------------------------------------------------------------------
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


STEPS: list[Step] = [
    token_limit,
    fence,
    single_line,
    line_comment,
    echo,
    close_line,
    scope,
    repetition,
    line_loop,
    whitespace,
    suffix_overlap,
    line_suffix_overlap,
    auto_closed,
    minimum,
]


def postprocess(
    raw: str, ctx: Context, steps: list[Step] | None = None, *, truncated: bool = False
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


def stop_check(ctx: Context, steps: list[Step] | None = None) -> Callable[[str], bool]:
    """Tell the engine when generating more cannot change the suggestion.

    True as soon as one of the cutting steps knows where the suggestion ends (single-line:
    the first newline; multi-line: a line leaving the block, a blank line at top level, a
    closing line, a loop). Those decisions never change with more text, so the suggestion
    is the same as if decoding had run to the end.
    """
    cutters = [step for step in (steps or STEPS) if isinstance(step, Cutter)]
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
