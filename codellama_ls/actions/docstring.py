"""Write docstring: take only the documentation from the answer and put it where the language wants it.

Python: the string literal, as the first statement of the body, with the body's indentation.
JavaScript/TypeScript: a ``/** */`` block above the function (above decorators and ``export``).
Go: ``//`` lines above ``func``. Rust: ``///`` lines above the item (above its attributes).
A changed copy of the code in the answer is ignored; plain text is wrapped into the doc form.
"""

from __future__ import annotations

import tree_sitter

from codellama_ls.actions.answer import pick_code
from codellama_ls.actions.syntax import (
    JS_FAMILY,
    Source,
    Target,
    definition_at,
    find_definition,
)
from codellama_ls.actions.syntax import definitions as all_definitions
from codellama_ls.actions.text import AnswerError, TextEdit, line_edits, reindent
from codellama_ls.definitions import docstring as python_docstring
from codellama_ls.definitions import lone_string
from codellama_ls.lines import columns, indent_of
from codellama_ls.syntax import node_text


def docstring_target(src: Source, line: int, char: int) -> Target | None:
    """The function, class or item at the cursor whose documentation the action writes."""
    return definition_at(src, line, char)


def docstring_edits(src: Source, target: Target, answer: str) -> list[TextEdit]:
    """Edits that put the answer's documentation on ``target`` (replacing its current doc)."""
    code = pick_code(answer, src.lang, prefer=lambda c: _has_doc_syntax(c, src.lang))
    if src.lang == "python":
        return _python_edits(src, target, _python_doc(code, target.name))
    lines = [target.indent + line for line in _comment_doc(code, src.lang, target.name)]
    if src.lang == "rust":
        # Rebuild the run of attributes and doc lines above the item: new doc on top, attributes kept.
        first = target.first_line
        kept = [line for line in src.lines[first : target.start_line] if not _is_rust_doc(line)]
        return line_edits(src.lines, first, target.start_line, [*lines, *kept], src.eol)
    if target.doc is not None:
        return line_edits(src.lines, target.doc[0], target.doc[1], lines, src.eol)
    return line_edits(src.lines, target.outer_line, target.outer_line, lines, src.eol)


def _has_doc_syntax(code: str, lang: str) -> bool:
    if lang == "python":
        return '"""' in code or "'''" in code
    if lang in JS_FAMILY:
        return "/**" in code
    if lang == "rust":
        return "///" in code
    return "//" in code


def _is_rust_doc(line: str) -> bool:
    text = line.lstrip()
    return text.startswith("///") and not text.startswith("////")


# -- Python -----------------------------------------------------------------------------------------


def _python_doc(code: str, name: str) -> list[str]:
    """The docstring literal's lines; the first is given the indentation of its line in the answer.

    Taken from the answer's copy of the target, else from its first documented definition (the
    model may have renamed it), else from a string alone; an answer with no code at all is the text.
    """
    ans = Source.from_text(code, "python")
    found = find_definition(ans, name)
    if found is not None and found.node is not None:
        string = python_docstring(found.node)
    else:
        string = next((s for s in map(python_docstring, all_definitions(ans)) if s is not None), None)
    if string is None:
        string = lone_string(next((c for c in ans.root.named_children if c.type != "comment"), None))
    if string is not None:
        row = string.start_point[0]
        lines = node_text(string).split("\n")
        return [indent_of(ans.lines[row]) + lines[0], *lines[1:]]
    if found is not None or any(True for _ in all_definitions(ans)):
        raise AnswerError("the answer has no docstring")
    return _wrap_python(code)


def _wrap_python(text: str) -> list[str]:
    """Plain text from the model as a docstring literal."""
    lines = [line.rstrip() for line in text.replace('"""', '\\"\\"\\"').split("\n")]
    lines = reindent(lines, "", "    ")
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise AnswerError("the answer is empty")
    if len(lines) == 1:
        return [f'"""{lines[0]}"""']
    return [f'"""{lines[0]}', *lines[1:], '"""']


def _python_edits(src: Source, target: Target, doc: list[str]) -> list[TextEdit]:
    node = target.node
    assert node is not None
    body = node.child_by_field_name("body")
    colon = next((c for c in node.children if c.type == ":"), None)
    header_row = colon.start_point[0] if colon is not None else node.start_point[0]
    def_indent = indent_of(src.lines[node.start_point[0]])
    first = next((c for c in body.named_children if c.type != "comment"), None) if body is not None else None
    from_cols = columns(indent_of(doc[0]))
    if first is None or first.start_point[0] == header_row:
        return _python_one_liner(src, target, doc, header_row, def_indent, first, from_cols)
    body_indent = indent_of(src.lines[first.start_point[0]])
    lines = reindent(doc, body_indent, src.unit, from_cols=from_cols)
    if target.doc is not None:
        return line_edits(src.lines, target.doc[0], target.doc[1], lines, src.eol)
    if target.kind == "class" and src.lines[header_row + 1].strip():
        lines.append("")  # PEP 257: a blank line after a class docstring
    return line_edits(src.lines, header_row + 1, header_row + 1, lines, src.eol)


def _python_one_liner(
    src: Source,
    target: Target,
    doc: list[str],
    header_row: int,
    def_indent: str,
    first: tree_sitter.Node | None,
    from_cols: int,
) -> list[TextEdit]:
    """``def f(x): return x`` becomes a header, the docstring and the body on lines of their own."""
    body_indent = def_indent + src.unit
    line = src.lines[header_row]
    head, rest = line, ""
    if first is not None:
        start = src.char_col(header_row, first.start_point[1])
        head, rest = line[:start].rstrip(), line[start:]
        if target.doc is not None and target.doc[0] == header_row:  # an old docstring on the def line
            end = src.char_col(header_row, first.end_point[1]) - start if first.end_point[0] == header_row else 0
            rest = rest[end:].lstrip().removeprefix(";").lstrip()
    lines = [head, *reindent(doc, body_indent, src.unit, from_cols=from_cols)]
    if rest.strip():
        lines.append(body_indent + rest)
    return line_edits(src.lines, header_row, header_row + 1, lines, src.eol)


# -- comment languages ------------------------------------------------------------------------------


def _comment_doc(code: str, lang: str, name: str) -> list[str]:
    """The doc comment's lines (``/** */``, ``//`` or ``///``), relative indentation kept."""
    ans = Source.from_text(code, lang)
    found = find_definition(ans, name)
    lines = ans.lines[found.doc[0] : found.doc[1]] if found is not None and found.doc is not None else []
    if not lines:  # not attached to the copy (a blank line between?): the answer's first doc comment
        lines = _first_doc_comment(ans)
    if lines:
        return _normalise(lines, lang)
    if found is not None or any(True for _ in all_definitions(ans)):
        raise AnswerError("the answer has no doc comment")
    return _wrap_comment(code, lang)


def _first_doc_comment(ans: Source) -> list[str]:
    """The first doc comment anywhere in the answer (a run of lines for ``//`` and ``///``)."""
    comments: list[tree_sitter.Node] = []
    stack = [ans.root]
    while stack:
        node = stack.pop()
        if node.type in ("comment", "line_comment", "block_comment"):
            comments.append(node)
        stack.extend(reversed(node.named_children))
    comments.sort(key=lambda n: n.start_point)
    for i, node in enumerate(comments):
        text = node_text(node)
        if ans.lang in JS_FAMILY and text.startswith("/**"):
            return ans.lines[node.start_point[0] : ans.last_row(node) + 1]
        wanted = "///" if ans.lang == "rust" else "//"
        if ans.lang in ("go", "rust") and text.startswith(wanted):
            run = [node]
            for later in comments[i + 1 :]:
                if later.start_point[0] != ans.last_row(run[-1]) + 1 or not node_text(later).startswith(wanted):
                    break
                run.append(later)
            return ans.lines[node.start_point[0] : ans.last_row(run[-1]) + 1]
    return []


def _normalise(lines: list[str], lang: str) -> list[str]:
    """Doc comment lines at indentation 0, in the language's canonical shape."""
    out = [line.strip() for line in lines]
    if lang in JS_FAMILY:
        if len(out) == 1:
            return out
        body = []
        for line in out[1:]:
            body.append(" " + line if line.startswith("*") else (" * " + line if line else " *"))
        return [out[0], *body]
    if lang == "rust":
        return [line for line in out if _is_rust_doc(line)]
    return [line for line in out if line.startswith("//")]


def _wrap_comment(text: str, lang: str) -> list[str]:
    """Plain text from the model as a doc comment."""
    lines = [line.strip() for line in text.split("\n")]
    for lead in ("/**", "*/", "///", "//", "*"):
        lines = [line.removeprefix(lead).strip() if line.startswith(lead) else line for line in lines]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise AnswerError("the answer is empty")
    if lang in JS_FAMILY:
        if len(lines) == 1:
            return [f"/** {lines[0]} */"]
        return ["/**", *[f" * {line}" if line else " *" for line in lines], " */"]
    lead = "///" if lang == "rust" else "//"
    return [f"{lead} {line}" if line else lead for line in lines]
