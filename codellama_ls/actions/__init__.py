"""Code Llama - Instruct code actions, without LSP: what to ask the model, and its answer as edits.

The LSP layer calls, per request:

- ``textDocument/codeAction``: ``Source.from_text`` then ``code_actions(src, start, end, diagnostics)``
  (no model call: a tree-sitter parse). Put the inputs (uri, version, kind, range, diagnostic) in
  ``CodeAction.data``; a plan is cheap to make again.
- ``codeAction/resolve`` (or the fallback command): make the plan again with ``plan_*``, build the
  prompt with ``instruct.build_chat_prompt(tok, plan.messages, budget)``, generate up to
  ``instructMaxNewTokens`` ending at EOS, then ``plan.apply(answer)``: an ``ActionResult`` whose
  ``changes`` become one ``WorkspaceEdit`` (``CreateFile`` + ``TextEdit`` s; positions are Python
  indices on LF lines, to convert to the negotiated encoding) or whose ``markdown`` is the Explain
  answer. ``AnswerError`` means the answer held nothing usable: tell the user, change nothing.
- ``codellama.edit`` ``{uri, range, instruction}``: ``plan_edit``; ``codellama.explain``: ``plan_explain``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from codellama_ls.actions.answer import explain_markdown, pick_code, strip_eos
from codellama_ls.actions.docstring import docstring_edits, docstring_target
from codellama_ls.actions.prompts import (
    docstring_messages,
    edit_messages,
    explain_messages,
    fix_messages,
    target_code,
    tests_messages,
)
from codellama_ls.actions.rewrite import Rewrite, edit_region, fix_region, rewrite_edits
from codellama_ls.actions.syntax import LANGUAGES, Source, Target, definition_at, language_key
from codellama_ls.actions.text import (
    ActionResult,
    AnswerError,
    FileChange,
    TextEdit,
    apply_edits,
)
from codellama_ls.actions.unittests import (
    Exists,
    ReadFile,
    TestFile,
    import_name,
    read_text_or_none,
    test_file,
    tests_change,
    tests_target,
)
from codellama_ls.lines import detect_eol
from codellama_ls.prompt.chat import Message

__all__ = [
    "LANGUAGES",
    "ActionKind",
    "ActionPlan",
    "ActionResult",
    "AnswerError",
    "Diagnostic",
    "FileChange",
    "Source",
    "Target",
    "TextEdit",
    "apply_edits",
    "code_actions",
    "detect_eol",
    "explain_markdown",
    "language_key",
    "pick_code",
    "plan_docstring",
    "plan_edit",
    "plan_explain",
    "plan_fix",
    "plan_tests",
    "read_text_or_none",
    "source",
    "strip_eos",
]

ActionKind = Literal["docstring", "tests", "fix", "edit", "explain"]
Position = tuple[int, int]  # (line, Python index in the line)


@dataclass(frozen=True)
class Diagnostic:
    """A diagnostic from the code action context, positions as Python indices."""

    start: Position
    end: Position
    message: str


@dataclass(frozen=True)
class ActionPlan:
    """One action: its title, the chat messages to send, and how to turn the answer into edits."""

    kind: ActionKind
    title: str
    messages: tuple[Message, ...]
    src: Source = field(compare=False, repr=False)
    target: Target | None = None
    region: Rewrite | None = None
    tests: TestFile | None = None

    def apply(self, answer: str, read_file: ReadFile = read_text_or_none) -> ActionResult:
        """The model's answer (the text up to EOS; a trailing ``</s>`` is fine) as edits or markdown.

        ``read_file`` gives an existing test file's current text (the open document's, when open).
        """
        if self.kind == "explain":
            text = explain_markdown(answer)
            if not text:
                raise AnswerError("the answer is empty")
            return ActionResult(markdown=text)
        if self.kind == "docstring":
            assert self.target is not None
            edits = docstring_edits(self.src, self.target, answer)
            return ActionResult((FileChange(None, False, tuple(edits)),))
        if self.kind == "tests":
            assert self.target is not None and self.tests is not None
            return ActionResult((tests_change(self.src, self.target, self.tests, answer, read_file),))
        assert self.region is not None
        return ActionResult((FileChange(None, False, tuple(rewrite_edits(self.src, self.region, answer))),))


def source(text: str, language_id: str | None, path: str | Path | None = None) -> Source | None:
    """The document for actions, or None when its language has no actions."""
    lang = language_key(language_id, path)
    return Source.from_text(text, lang, path) if lang is not None else None


def plan_docstring(src: Source, line: int, char: int) -> ActionPlan | None:
    target = docstring_target(src, line, char)
    if target is None or not target.name:
        return None
    verb = "Rewrite" if target.doc is not None else "Write"
    title = f"{verb} {'docstring' if src.lang == 'python' else 'doc comment'} for `{target.name}`"
    return ActionPlan("docstring", title, tuple(docstring_messages(src, target)), src, target)


def plan_tests(src: Source, line: int, char: int, exists: Exists = Path.exists) -> ActionPlan | None:
    """Tests for the function at the cursor; None for unsaved documents (no file name to test) and test files."""
    target = tests_target(src, line, char)
    where = test_file(src, exists) if target is not None else None
    if target is None or where is None:
        return None
    into = where.path.name if where.path is not None else "mod tests"
    title = f"Write unit tests for `{target.name}` (in {into})"
    messages = tests_messages(src, target, where.module, import_name(target, src), where.framework)
    return ActionPlan("tests", title, tuple(messages), src, target, tests=where)


def plan_fix(src: Source, diagnostic: Diagnostic) -> ActionPlan:
    region = fix_region(src, diagnostic.start, diagnostic.end)
    line_text = src.lines[min(diagnostic.start[0], len(src.lines) - 1)]
    messages = fix_messages(src, region.code(src), diagnostic.message, line_text)
    title = f"Fix: {' '.join(diagnostic.message.split())}"
    return ActionPlan("fix", title, tuple(messages), src, region=region)


def plan_edit(src: Source, start: Position, end: Position, instruction: str) -> ActionPlan:
    if not instruction.strip():
        raise ValueError("the edit instruction is empty")
    region = edit_region(src, start, end)
    messages = edit_messages(src, region.code(src), instruction)
    return ActionPlan("edit", f"Edit: {instruction.strip()}", tuple(messages), src, region=region)


def plan_explain(src: Source, start: Position, end: Position) -> ActionPlan:
    """Explain the selection, or (for an empty one) the definition at the cursor, else the cursor's line."""
    if start != end:
        code = edit_region(src, start, end).code(src)
        target = None
    else:
        target = definition_at(src, *start)
        code = target_code(src, target) if target is not None else src.lines[min(start[0], len(src.lines) - 1)]
    title = f"Explain `{target.name}`" if target is not None and target.name else "Explain the selection"
    return ActionPlan("explain", title, tuple(explain_messages(src, code)), src, target)


def code_actions(
    src: Source, start: Position, end: Position, diagnostics: Sequence[Diagnostic] = (), exists: Exists = Path.exists
) -> list[ActionPlan]:
    """The actions to list for a range: docstring and tests at its start, one Fix per diagnostic."""
    plans = [plan_docstring(src, *start), plan_tests(src, *start, exists=exists)]
    plans += [plan_fix(src, d) for d in diagnostics]
    return [p for p in plans if p is not None]
