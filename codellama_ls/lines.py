"""Lines, line endings and indentation: the one place that says how text is split and indented.

Lines end at ``\\r\\n``, ``\\n`` and ``\\r`` only, as LSP counts them (``str.splitlines`` also breaks
on U+2028, form feeds and others). The documents store, post-processing and code actions all read
these helpers so a document is seen the same way everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

EOL = re.compile(r"\r\n|\n|\r")
TAB_WIDTH = 4  # columns of a tab when indentation widths are compared
DEFAULT_INDENT_WIDTH = 4  # spaces per level when neither the text nor the language says


def detect_eol(text: str) -> str:
    """The text's line ending: the first one it uses (LF for a one-line text)."""
    match = EOL.search(text)
    return match.group() if match else "\n"


def split_lines(text: str) -> list[str]:
    """Lines without their endings, split on LF, CRLF and CR only."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def columns(indent: str) -> int:
    """Width of leading whitespace, a tab counting ``TAB_WIDTH``."""
    return sum(TAB_WIDTH if ch == "\t" else 1 for ch in indent)


class IndentStyle(NamedTuple):
    """How the lines indent: ``tabs`` (None when no line is indented) and spaces per level."""

    tabs: bool | None
    width: int

    def unit(self, default: str) -> str:
        """One level as text; ``default`` when the lines say nothing."""
        if self.tabs is None:
            return default
        return "\t" if self.tabs else " " * self.width


def detect_indent(lines: Iterable[str], default_width: int = DEFAULT_INDENT_WIDTH) -> IndentStyle:
    """Tabs when most indented lines start with a tab; the width is the most common change of
    indentation between space-indented lines (in and out), counting only plausible levels (2, 3, 4, 8)
    so aligned continuation lines do not vote."""
    tabs = spaced = 0
    deltas: dict[int, int] = {}
    previous = 0
    for line in lines:
        if not line.strip():
            continue
        if line.startswith("\t"):
            tabs += 1
            continue
        width = len(line) - len(line.lstrip(" "))
        spaced += width > 0
        step = abs(width - previous)
        if step in (2, 3, 4, 8):
            deltas[step] = deltas.get(step, 0) + 1
        previous = width
    width = max(deltas, key=lambda d: (deltas[d], -d)) if deltas else default_width
    return IndentStyle(tabs > spaced if tabs or spaced else None, width)
