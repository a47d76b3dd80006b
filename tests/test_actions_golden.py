"""Golden cases for the code actions: a document, a canned Code Llama - Instruct answer, the document after.

The cases are data: ``tests/golden/actions/<language id>.json``, a list of objects with ``id``,
``kind`` (docstring, tests, fix, edit), ``lang``, ``path`` (the document's file name), ``doc``,
``answer`` (written like the model's: prose around the code, several code blocks, a changed copy,
a trailing ``</s>``), ``expected`` (the changed file after the edits: the test file, for unit
tests) and, when they apply, ``message`` (Fix: the diagnostic), ``instruction`` (Edit),
``existing`` (the test file already there), ``files`` (other files and folders that exist),
``test_path`` (where the tests must go), ``crlf`` (the documents use CRLF) and ``tabs`` (four
spaces in doc/existing/expected stand for a tab). Markers in ``doc``: ``█`` the cursor; ``«``
``»`` the diagnostic range (Fix) or the selection (Edit). This one runner reads them all.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from codellama_ls.actions import (
    ActionPlan,
    Diagnostic,
    apply_edits,
    plan_docstring,
    plan_edit,
    plan_fix,
    plan_tests,
    source,
)

CURSOR, START, END = "█", "«", "»"
GOLDEN = Path(__file__).parent / "golden" / "actions"


@dataclass
class Case:
    id: str
    kind: str  # docstring, tests, fix, edit
    lang: str  # LSP languageId
    path: str  # the document's file name (in a temporary folder)
    doc: str
    answer: str
    expected: str  # the changed file after the edits
    message: str = ""  # Fix: the diagnostic
    instruction: str = ""  # Edit
    existing: str | None = None  # tests: the test file already there
    files: tuple[str, ...] = ()  # tests: other files and folders that exist (``tests/``)
    test_path: str = ""  # tests: where the tests must go, relative to the document's folder
    crlf: bool = False  # the documents use CRLF line endings
    tabs: bool = False  # "    " in doc/existing/expected stands for a tab

    def text(self, value: str) -> str:
        value = textwrap.dedent(value).lstrip("\n")
        if self.tabs:
            value = "\n".join(_tabs(line) for line in value.split("\n"))
        return value.replace("\n", "\r\n") if self.crlf else value


def _tabs(line: str) -> str:
    stripped = line.lstrip(" ")
    return "\t" * ((len(line) - len(stripped)) // 4) + stripped


def strip_markers(text: str) -> tuple[str, tuple[int, int], tuple[int, int]]:
    """The text without markers, and the (line, index) of the cursor or of the range's ends."""
    positions: dict[str, tuple[int, int]] = {}
    clean: list[str] = []
    line, col = 0, 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in (CURSOR, START, END):
            positions[ch] = (line, col)
        else:
            clean.append(ch)
            if ch == "\n" or (ch == "\r" and text[i + 1 : i + 2] != "\n"):
                line, col = line + 1, 0
            elif ch != "\r":
                col += 1
        i += 1
    if CURSOR in positions:
        return "".join(clean), positions[CURSOR], positions[CURSOR]
    return "".join(clean), positions[START], positions[END]


def _case(data: dict[str, Any], where: str) -> Case:
    fields = {f.name for f in dataclasses.fields(Case)}
    unknown = set(data) - fields
    assert not unknown, f"{where}: unknown fields {sorted(unknown)} (known: {sorted(fields)})"
    if "files" in data:
        data = {**data, "files": tuple(data["files"])}
    return Case(**data)


def load_cases() -> list[Case]:
    """Every case of every ``tests/golden/actions/*.json`` file, in file order."""
    cases: list[Case] = []
    for path in sorted(GOLDEN.glob("*.json")):
        for index, data in enumerate(json.loads(path.read_text(encoding="utf-8"))):
            cases.append(_case(data, f"{path.name}[{index}]"))
    return cases


CASES = load_cases()


def test_case_ids_are_unique_and_files_hold_their_language() -> None:
    assert len({c.id for c in CASES}) == len(CASES)
    for path in GOLDEN.glob("*.json"):
        assert {c["lang"] for c in json.loads(path.read_text(encoding="utf-8"))} == {path.stem}, path.name


def test_an_unknown_field_is_rejected() -> None:
    with pytest.raises(AssertionError, match="unknown fields"):
        _case(
            {
                "id": "x",
                "kind": "fix",
                "lang": "python",
                "path": "a.py",
                "doc": "",
                "answer": "",
                "expected": "",
                "mesage": "",
            },
            "t",
        )


# == the harness ===================================================================================


def _plan(c: Case, tmp_path: Path) -> tuple[ActionPlan, str]:
    text, start, end = strip_markers(c.text(c.doc))
    doc_path = tmp_path / c.path
    doc_path.write_text(text, encoding="utf-8", newline="")
    for name in c.files:
        target = tmp_path / name
        target.mkdir(parents=True) if name.endswith("/") else target.write_text("")
    if c.existing is not None:
        (tmp_path / (c.test_path or c.path)).write_text(c.text(c.existing), encoding="utf-8", newline="")
    src = source(text, c.lang, doc_path)
    assert src is not None
    if c.kind == "docstring":
        plan = plan_docstring(src, *start)
    elif c.kind == "tests":
        plan = plan_tests(src, *start)
    elif c.kind == "fix":
        plan = plan_fix(src, Diagnostic(start, end, c.message))
    else:
        plan = plan_edit(src, start, end, c.instruction)
    assert plan is not None
    return plan, text


def _result(c: Case, tmp_path: Path) -> tuple[str, Path | None]:
    plan, text = _plan(c, tmp_path)
    (change,) = plan.apply(c.answer).changes
    if change.path is None:
        return apply_edits(text, change.edits), None
    assert change.create is (c.existing is None)
    before = "" if change.create else change.path.read_bytes().decode("utf-8")
    return apply_edits(before, change.edits), change.path


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_golden(c: Case, tmp_path: Path) -> None:
    result, path = _result(c, tmp_path)
    expected = c.text(c.expected)
    assert result == expected
    if c.kind == "tests" and c.lang != "rust":
        assert path == tmp_path / c.test_path
    if c.lang == "python":
        ast.parse(result)


def test_every_language_has_every_action() -> None:
    assert len(CASES) >= 40
    for lang in ("python", "javascript", "typescript", "go", "rust"):
        kinds = {c.kind for c in CASES if c.lang.removesuffix("react") == lang}
        assert kinds == {"docstring", "tests", "fix", "edit"}, lang
    assert any(c.crlf for c in CASES) and any(c.tabs for c in CASES)
