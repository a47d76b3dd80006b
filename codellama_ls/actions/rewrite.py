"""Fix and Edit selection: the answer's code replaces the code it was asked about.

What is replaced (decided here, relied on by the prompts):

- The prompt shows a *region*: for a Fix, the function around the diagnostic when it is short
  enough to be rewritten within the answer budget, else the smallest statement around it; for an
  Edit, the selected lines.
- An answer that holds a definition with the name of the enclosing function (a whole, changed copy
  of it) replaces that function from its ``def``/``fn``/``func`` line to its end (decorators,
  attributes and doc comments above it stay); any other answer replaces the statement (Fix) or the
  selection (Edit), re-indented to it.
- Either way only changed lines are edited (a line diff), so a copy of a whole function that
  changes one statement edits one statement; and lines the model left out with ``...`` or
  ``# ... existing code ...`` are kept.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from codellama_ls.actions.answer import pick_code
from codellama_ls.actions.syntax import (
    JS_FAMILY,
    Source,
    Target,
    definitions,
    enclosing_function,
    find_definition,
    is_statement,
    make_target,
    statement_at,
)
from codellama_ls.actions.text import AnswerError, TextEdit, line_edits, reindent
from codellama_ls.lines import indent_of

# A function longer than this is not rewritten whole by Fix (the answer would not fit
# ``instructMaxNewTokens``, 512 by default, at about 10 tokens a line); its statement is.
MAX_REWRITE_LINES = 40


@dataclass(frozen=True)
class Rewrite:
    """What a Fix or Edit is about: whole lines ``[start, end)`` shown to the model, and what they replace.

    ``inner`` is the line range an answer that is not a copy of ``function`` replaces (the statement
    of a Fix); ``partial`` is an Edit of part of a line: ``(line, start_char, end_char)``.
    """

    start: int
    end: int
    inner: tuple[int, int]
    function: Target | None
    partial: tuple[int, int, int] | None = None
    outer: tuple[tuple[int, int], ...] = ()  # the statements around ``inner``, inside ``function``

    def code(self, src: Source) -> str:
        if self.partial is not None:
            line, a, b = self.partial
            return src.lines[line][a:b]
        return _dedent(src.lines[self.start : self.end])


def _dedent(lines: list[str]) -> str:
    return "\n".join(reindent(lines, "", "    ")) if any(line.strip() for line in lines) else "\n".join(lines)


def fix_region(src: Source, start: tuple[int, int], end: tuple[int, int]) -> Rewrite:
    """The code a Fix for a diagnostic at ``start``-``end`` shows and replaces."""
    statement = statement_at(src, start, end)
    inner = (statement.first_line, statement.end_line + 1)
    if statement.kind not in ("statement", "lines"):
        # On a definition's own line (its signature): an answer that is not a copy of the whole
        # definition replaces the reported lines, never the whole body.
        (a, _), (b, c) = sorted([start, end])
        inner = (a, (b if c == 0 and b > a else b + 1))
    function = enclosing_function(src, statement) if statement.kind != "lines" else None
    outer = tuple(_outer_statements(src, statement, function))
    if function is not None and function.end_line - function.first_line + 1 <= MAX_REWRITE_LINES:
        return Rewrite(function.first_line, function.end_line + 1, inner, function, outer=outer)
    return Rewrite(inner[0], inner[1], inner, function, outer=outer)


def _outer_statements(src: Source, statement: Target, function: Target | None) -> list[tuple[int, int]]:
    """Line ranges of the statements that contain ``statement``, up to the function body."""
    out: list[tuple[int, int]] = []
    node = statement.node.parent if statement.node is not None and statement.kind == "statement" else None
    stop = function.node if function is not None else None
    while node is not None and node.parent is not None and node != stop:
        if is_statement(node, src.lang):
            span = (node.start_point[0], src.last_row(node) + 1)
            if not out or out[-1] != span:
                out.append(span)
        node = node.parent
    return out


def edit_region(src: Source, start: tuple[int, int], end: tuple[int, int]) -> Rewrite:
    """The code an Edit of the selection ``start``-``end`` shows and replaces.

    A selection within one line that does not cover the line's code is edited as characters; any
    other selection as the whole lines it touches (a selection ending at the start of a line, or in
    its indentation, does not touch that line).
    """
    (l1, c1), (l2, c2) = sorted([start, end])
    l2 = min(l2, len(src.lines) - 1)
    c1, c2 = min(c1, len(src.lines[l1])), min(c2, len(src.lines[l2]))
    if l1 == l2:
        line = src.lines[l1]
        if c1 > len(indent_of(line)) or c2 < len(line.rstrip()):
            if c1 < c2:
                return Rewrite(l1, l1 + 1, (l1, l1 + 1), None, (l1, c1, c2))
    last = l2 - 1 if l2 > l1 and c2 <= len(indent_of(src.lines[l2])) else l2
    function = enclosing_function(src, statement_at(src, (l1, c1), (last, len(src.lines[last]))))
    if function is not None and not (function.start_line <= l1 and last <= function.end_line):
        function = None
    return Rewrite(l1, last + 1, (l1, last + 1), function)


def rewrite_edits(src: Source, region: Rewrite, answer: str) -> list[TextEdit]:
    """Edits that put the answer's code in place of the region."""
    fn = region.function
    code = pick_code(
        answer,
        src.lang,
        prefer=(lambda c: fn.name in c) if fn is not None and fn.name else None,
        unchanged=region.code(src),
    )
    if not code.strip():
        raise AnswerError("the answer has no code")
    if region.partial is not None:
        return [_partial_edit(src, region.partial, code)]
    new = code.split("\n")
    if fn is not None and fn.name:
        whole = region.start <= fn.start_line and region.end > fn.end_line  # the model saw all of it
        ans = Source.from_text(code, src.lang)
        copy = _function_copy(ans, fn, whole)
        if copy is None and fn.kind == "method" and src.lang in JS_FAMILY:
            # a JS/TS method on its own is no valid program: read it inside a class
            ans = Source.from_text("class Answer {\n" + code + "\n}", src.lang)
            copy = _function_copy(ans, fn, whole)
        if copy is not None:
            new = ans.lines[copy.start_line : copy.end_line + 1]
            base = indent_of(src.lines[fn.start_line])
            return line_edits(src.lines, fn.start_line, fn.end_line + 1, reindent(new, base, src.unit), src.eol)
    start, end = _best_match(src, [region.inner, *region.outer], new)
    start, end = _stretch(src, start, end, new)
    base = indent_of(src.lines[start]) if src.lines[start].strip() else _first_indent(src, start, end)
    return line_edits(src.lines, start, end, reindent(new, base, src.unit), src.eol)


def _function_copy(ans: Source, fn: Target, whole: bool) -> Target | None:
    """The answer's copy of ``fn``: a function of that name, or (when the model was shown all of
    ``fn``) the answer's only function when it is all the answer.

    A method may come back as a plain function (without its class) and the other way round.
    """
    copy = find_definition(ans, fn.name, kinds=("function", "method"))
    if copy is not None or not whole:
        return copy if copy is not None and _has_body(copy) else None
    found = [make_target(ans, node) for node in definitions(ans)]
    functions = [t for t in found if t.is_function and _has_body(t)]
    if len(found) == 1 and len(functions) == 1:
        only = functions[0]
        code = [line for line in ans.lines if line.strip()]
        inside = [line for line in ans.lines[only.first_line : only.end_line + 1] if line.strip()]
        if len(inside) == len(code):
            return only
    return None


def _has_body(target: Target) -> bool:
    """Whether a definition in an answer is whole (a lone signature line is not a copy of a function)."""
    body = target.node.child_by_field_name("body") if target.node is not None else None
    return body is not None and not body.is_missing and body.end_byte > body.start_byte


def _best_match(src: Source, spans: list[tuple[int, int]], new: list[str]) -> tuple[int, int]:
    """The statement an answer that is no copy of the function rewrites: the most similar one.

    A Fix answer may rewrite a statement around the reported one (a ``try`` around a ``close()``);
    the innermost statement wins ties.
    """
    if len(spans) == 1:
        return spans[0]
    answer = "\n".join(line.strip() for line in new if line.strip())

    def score(span: tuple[int, int]) -> float:
        text = "\n".join(line.strip() for line in src.lines[span[0] : span[1]] if line.strip())
        return difflib.SequenceMatcher(None, text, answer, autojunk=False).ratio()

    return max(spans, key=lambda span: (score(span), -(span[1] - span[0])))


def _first_indent(src: Source, start: int, end: int) -> str:
    return next((indent_of(line) for line in src.lines[start:end] if line.strip()), "")


def _stretch(src: Source, start: int, end: int, new: list[str]) -> tuple[int, int]:
    """Widen ``[start, end)`` over neighbouring lines that a longer answer repeats.

    An answer for one broken line often brings the lines around it too; those must replace their
    originals, not be inserted a second time. Only as many lines as the answer has extra are taken.
    """
    spare = len(new) - (end - start)
    if spare <= 0:
        return start, end

    def same(a: str, b: str) -> bool:
        return a.strip() == b.strip()

    def telling(lines: list[str]) -> bool:
        # a lone "}" proves nothing: the answer's "}" may close a block of its own
        return any(any(ch.isalnum() for ch in line) for line in lines)

    opened = False  # the answer starts with code above the region: its closing lines are that code's
    for k in range(min(spare, start), 0, -1):
        before = src.lines[start - k : start]
        if all(same(new[i], before[i]) for i in range(k)) and telling(before):
            start, spare, opened = start - k, spare - k, True
            break
    for k in range(min(spare, len(src.lines) - end), 0, -1):
        after = src.lines[end : end + k]
        if all(same(new[len(new) - k + i], after[i]) for i in range(k)) and (opened or telling(after)):
            end += k
            break
    return start, end


def _partial_edit(src: Source, partial: tuple[int, int, int], code: str) -> TextEdit:
    """Part of a line: the answer replaces the selected characters, or the line's code when the
    answer is the whole line (it starts with the code before the selection and ends with the code after)."""
    line, a, b = partial
    text = src.lines[line]
    lines = code.split("\n")
    before, after = text[:a].strip(), text[b:].strip()
    whole = code.strip()
    if (before or after) and whole.startswith(before) and whole.endswith(after) and len(whole) > len(before + after):
        a, b = len(indent_of(text)), len(text.rstrip())
        lines = whole.split("\n")
    if len(lines) > 1:
        base = indent_of(text)
        lines = [lines[0].strip(), *reindent(lines[1:], base, src.unit)]
    else:
        lines = [lines[0].strip()]
    return TextEdit(line, a, line, b, src.eol.join(lines))
