"""Small text facts the steps share: brackets and quotes, continuation and closer words,
indentation widths, Markdown fences and open multi-line strings.

Several steps (and the cursor analysis) must agree on what a closing line, an indentation
width or an open string is, so each is said once, here."""

from __future__ import annotations

import re

from codellama_ls.lines import TAB_WIDTH

_OPEN = "([{"
_CLOSE = ")]}"
_QUOTES = "\"'`"
# A line that continues the statement of the block above it rather than leaving it.
_CONTINUATION = re.compile(r"^(?:[)\]}]\s*)?(?:else|elif|except|finally|catch)\b")
_CLOSER_WORDS = ("end", "fi", "done", "esac", "endif", "endfor", "endwhile", "endfunction")
_TRAILING_COMMENT = re.compile(r"\s+(?:#|//).*$")
# A Markdown code fence line: what chat-tuned models write around (or after) code.
_FENCE = re.compile(r"[ \t]*(?:```|~~~)")
_TRIPLE_QUOTES = ('"""', "'''")
_BACKTICK_STRINGS = ("javascript", "javascriptreact", "typescript", "typescriptreact", "go")


def _open_string(text: str, language_id: str) -> bool:
    """Does ``text`` leave a multi-line string open (triple quotes, a JS template, a Go raw string)?"""
    if any(text.count(q) % 2 for q in _TRIPLE_QUOTES):
        return True
    return language_id in _BACKTICK_STRINGS and text.replace("```", "").count("`") % 2 == 1


def _indent(line: str) -> int:
    width = 0
    for ch in line:
        if ch == " ":
            width += 1
        elif ch == "\t":
            width += TAB_WIDTH
        else:
            break
    return width


def _echo_key(line: str) -> tuple[int, str]:
    """A line with its whitespace normalised: indentation width and words one space apart."""
    return _indent(line), " ".join(line.split())


def _lead(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _code(line: str) -> str:
    """The line without a trailing ``#``/``//`` comment (roughly; enough to see how it ends)."""
    return _TRAILING_COMMENT.sub("", line.rstrip())


def _line_starts(lines: list[str]) -> list[int]:
    starts, pos = [], 0
    for line in lines:
        starts.append(pos)
        pos += len(line) + 1
    return starts


def _meaningful(line: str) -> bool:
    return any(c.isalpha() or c == "_" for c in line)
