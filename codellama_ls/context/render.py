"""Snippets as line comments of the edited file's language, each headed by its path.

Code Llama was not trained with repository-level markers, so context has to look like
something a source file may contain: comments. A snippet is

    # Path: pkg/style.py
    # class Style:
    #     ...

with the comment marker of the *edited* file's language, and the block ends with the edited
file's own path line, right before its code. Lines left out inside a snippet (a class shown as
the signatures of its members) become one ``...`` line at the indentation of the next line
shown. The same block goes before the prefix in both ``psm`` and ``spm``.
"""

from __future__ import annotations


def header(comment: str, relpath: str) -> str:
    return f"{comment} Path: {relpath}"


def comment_line(comment: str, line: str) -> str:
    line = line.rstrip()
    return f"{comment} {line}" if line else comment


def gap_line(comment: str, next_line: str) -> str:
    indent = next_line[: len(next_line) - len(next_line.lstrip())]
    return f"{comment} {indent}..."


def render_lines(comment: str, source: list[str], shown: list[int]) -> list[str]:
    """The commented lines ``shown`` (sorted line numbers of ``source``), gaps marked."""
    out: list[str] = []
    previous = None
    for number in shown:
        if previous is not None and number > previous + 1:
            out.append(gap_line(comment, source[number]))
        out.append(comment_line(comment, source[number]))
        previous = number
    return out
