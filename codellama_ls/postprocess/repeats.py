"""Step 8, ``repetition``: models loop on a line or a block. Keep one copy of a line repeated three
times or a block repeated twice in a row; a continuation line (``else:``, ``} else {``) twice in
a row ends the suggestion before it, a key set twice in a row (``KEY: value``) after the first."""

from __future__ import annotations

import re

from codellama_ls.postprocess.cursor import Context, Cutter
from codellama_ls.postprocess.text import (
    _CONTINUATION,
    _line_starts,
    _meaningful,
)

MAX_BLOCK = 8  # longest block (in lines) the repetition filter looks for


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
