"""Step 9, ``line_loop``: a model can also loop inside one line (``0, 0, 0, ...``, ``foo(foo(...``,
``densdensdens``). Drop such a line and what follows, and a last line the answer stopped in the
middle of a loop in. The constants below tell a loop from test data and the document's own style."""

from __future__ import annotations

import re
from functools import lru_cache

from codellama_ls.postprocess.cursor import Context, Cutter
from codellama_ls.postprocess.text import (
    _CLOSE,
    _OPEN,
    _QUOTES,
    _line_starts,
)

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
