"""Step 10, ``whitespace``: the model's whitespace rarely matches the document's. No doubled space
at the join with the cursor line, the document's indentation (tabs or spaces), no trailing
whitespace."""

from __future__ import annotations

import math
from dataclasses import replace

from codellama_ls.lines import TAB_WIDTH
from codellama_ls.postprocess.cursor import Context, Suggestion
from codellama_ls.postprocess.text import (
    _lead,
)


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
