"""Edits as plain data, line endings, indentation, and minimal line edits.

Positions are ``(line, Python string index in the line)``; the line numbers and indices are the
same in the LF text the actions work on and in the document with its own line endings, so the
LSP layer only converts the index to the negotiated position encoding.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from codellama_ls.lines import DEFAULT_INDENT_WIDTH, TAB_WIDTH, columns, detect_indent, indent_of


@dataclass(frozen=True)
class TextEdit:
    start_line: int
    start_char: int
    end_line: int
    end_char: int
    new_text: str  # in the target document's line endings


@dataclass(frozen=True)
class FileChange:
    """Edits to one file. ``path`` None is the document the action was asked on.

    ``create``: the file does not exist yet; the LSP layer sends a ``CreateFile`` operation and
    then the edits (which then insert at 0:0 into the empty file).
    """

    path: Path | None
    create: bool
    edits: tuple[TextEdit, ...]


@dataclass(frozen=True)
class ActionResult:
    """What an answer turns into: file changes (applied as one workspace edit) or markdown."""

    changes: tuple[FileChange, ...] = ()
    markdown: str | None = None


class AnswerError(ValueError):
    """The model's answer holds nothing usable for this action (the message says what was missing)."""


def apply_edits(text: str, edits: Sequence[TextEdit]) -> str:
    """Apply non-overlapping edits to ``text`` (any line endings), as an editor would."""
    starts = [0]
    i = text.find("\n") if "\r" not in text else -2
    if i == -2:  # some CR line endings: the slow way
        for j, ch in enumerate(text):
            if ch == "\n" or (ch == "\r" and text[j + 1 : j + 2] != "\n"):
                starts.append(j + 1)
    else:
        while i >= 0:
            starts.append(i + 1)
            i = text.find("\n", i + 1)

    def offset(line: int, char: int) -> int:
        return len(text) if line >= len(starts) else starts[line] + char

    # Inserts at one position appear in the order of the list, as LSP says.
    order = sorted(enumerate(edits), key=lambda e: (e[1].start_line, e[1].start_char, e[0]), reverse=True)
    out = text
    for _, edit in order:
        a, b = offset(edit.start_line, edit.start_char), offset(edit.end_line, edit.end_char)
        out = out[:a] + edit.new_text + out[b:]
    return out


# -- indentation --------------------------------------------------------------------------------


def detect_unit(lines: Sequence[str], default: str = "    ") -> str:
    """One indentation level of these lines (``lines.detect_indent``); ``default`` when none is indented."""
    return detect_indent(lines, DEFAULT_INDENT_WIDTH if default == "\t" else len(default)).unit(default)


def reindent(lines: Sequence[str], base: str, unit: str, *, from_cols: int | None = None) -> list[str]:
    """Move ``lines`` to indentation ``base``, keeping their relative levels in the target's ``unit``.

    The lines' own base is their smallest indentation (or ``from_cols``); each level of their own
    unit becomes one ``unit``. Blank lines become empty.
    """
    body = [line for line in lines if line.strip()]
    if not body:
        return ["" for _ in lines]
    own = detect_unit(body, "    ")
    own_width = TAB_WIDTH if own == "\t" else len(own)
    start = min(columns(indent_of(line)) for line in body) if from_cols is None else from_cols
    out = []
    for line in lines:
        if not line.strip():
            out.append("")
            continue
        extra = max(columns(indent_of(line)) - start, 0)
        levels, rest = divmod(extra, own_width)
        out.append(base + unit * levels + " " * rest + line.lstrip(" \t"))
    return out


# -- minimal line edits -------------------------------------------------------------------------

_ELISION_WORDS = ("rest", "existing", "unchanged", "same", "remaining", "omitted", "previous", "other", "before")


def is_elision(line: str) -> bool:
    """A line a model writes instead of code it left out (``# ... rest of the code ...``)."""
    text = line.strip()
    for lead in ("#", "//", "/*", "*", "--"):
        if text.startswith(lead):
            text = text[len(lead) :].strip()
            break
    text = text.removesuffix("*/").strip()
    if text in ("...", "…", "pass  # ..."):
        return True
    has_dots = "..." in text or "…" in text
    return has_dots and any(word in text.lower() for word in _ELISION_WORDS)


def replace_lines(lines: Sequence[str], start: int, end: int, new: Sequence[str], eol: str) -> TextEdit:
    """Replace whole lines ``[start, end)`` of a document (``lines`` from ``split_lines``) with ``new``."""
    if end < len(lines):
        return TextEdit(start, 0, end, 0, "".join(line + eol for line in new))
    # The range runs to the last line, which has no line ending after it.
    last = len(lines) - 1
    if start > 0:
        return TextEdit(start - 1, len(lines[start - 1]), last, len(lines[last]), "".join(eol + line for line in new))
    return TextEdit(0, 0, last, len(lines[last]), eol.join(new))


def line_edits(lines: Sequence[str], start: int, end: int, new: Sequence[str], eol: str) -> list[TextEdit]:
    """The smallest edits that turn lines ``[start, end)`` into ``new``.

    Unchanged lines are not touched (the editor keeps marks, folds and breakpoints on them), and
    where the new text only says ``...`` (or ``# ... existing code ...``) in place of old lines,
    the old lines stay.
    """
    old = list(lines[start:end])
    matcher = difflib.SequenceMatcher(None, old, list(new), autojunk=False)
    edits: list[TextEdit] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        for a, b, repl in _keep_elided(old[i1:i2], list(new[j1:j2])):
            edits.append(replace_lines(lines, start + i1 + a, start + i1 + b, repl, eol))
    return edits


def _keep_elided(old: list[str], new: list[str]) -> list[tuple[int, int, list[str]]]:
    """Split one changed hunk ``old -> new`` into replacements, keeping what an elision line stands for."""
    marks = [i for i, line in enumerate(new) if is_elision(line)]
    if not marks or not old:
        return [(0, len(old), new)] if old or new else []
    if len(marks) == len(new):
        return []  # only "..." in place of the old lines: keep them
    if len(marks) > 1:
        return [(0, len(old), new)]
    before, after = new[: marks[0]], new[marks[0] + 1 :]
    if len(before) + len(after) > len(old):
        return [(0, len(old), new)]
    out = []
    if before:
        out.append((0, len(before), before))
    if after:
        out.append((len(old) - len(after), len(old), after))
    return out
