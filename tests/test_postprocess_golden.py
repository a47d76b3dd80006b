"""Golden cases: document with a cursor, raw model output → suggestion and replace range.

The cases are data: ``tests/golden/postprocess/<language id>.json``, a list of objects with
``name``, ``language``, ``step``, ``prefix``, ``suffix`` (the document around the cursor),
``raw`` (the model's output), ``expected`` (the suggestion, ``null`` for none) and, when they
apply, ``replace`` (characters after the cursor the suggestion replaces), ``stops_at`` (the
output so far when early stop fires, fed character by character) and ``truncated`` (decoding
ended at ``maxNewTokens``). This one runner reads them all.

Each case names the post-processing step it exercises, and the suite checks that the step
matters (without it the result differs), so a case cannot pass by accident. The same table
checks early stop: feeding the raw output to ``stop_check`` piece by piece and cutting where
it fires gives exactly the suggestion that decoding to the end gives.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from lsprotocol import types

from codellama_ls import postprocess
from codellama_ls.documents import Document
from codellama_ls.engines.base import GenerationResult
from codellama_ls.pipeline.completion import edit

CURSOR = "█"
GOLDEN = Path(__file__).parent / "golden" / "postprocess"
FIELDS = {"name", "language", "step", "prefix", "suffix", "raw", "expected", "replace", "stops_at", "truncated"}


@dataclass(frozen=True)
class Case:
    name: str
    lang: str
    step: str  # the step this case exercises ("none": output already clean)
    doc: str
    raw: str
    text: str | None  # expected suggestion, None for no suggestion
    replace: int = 0  # characters after the cursor the suggestion replaces
    stops_at: str | None = None  # the output so far when decoding stops (char by char)
    truncated: bool = False  # decoding ended at maxNewTokens (stop_reason "length"), not at <EOT>


def load_cases() -> list[Case]:
    """Every case of every language file, in file order; a malformed case fails loudly."""
    cases = []
    for path in sorted(GOLDEN.glob("*.json")):
        for item in json.loads(path.read_text(encoding="utf-8")):
            assert set(item) <= FIELDS, (item["name"], set(item) - FIELDS)  # a misspelt field is no silent default
            assert item["language"] == path.stem, (path.name, item["name"])
            assert CURSOR not in item["prefix"] + item["suffix"], item["name"]
            cases.append(
                Case(
                    name=item["name"],
                    lang=item["language"],
                    step=item["step"],
                    doc=item["prefix"] + CURSOR + item["suffix"],
                    raw=item["raw"],
                    text=item["expected"],
                    replace=item.get("replace", 0),
                    stops_at=item.get("stops_at"),
                    truncated=item.get("truncated", False),
                )
            )
    return cases


CASES = load_cases()

LANGUAGES = {
    "python": "python",
    "javascript": "js/ts",
    "typescript": "js/ts",
    "typescriptreact": "js/ts",
    "go": "go",
    "rust": "rust",
    "c": "c",
    "java": "java",
    "yaml": "yaml",
    "markdown": "markdown",
    "css": "css",
    "fsharp": "f#",
    "scala": "scala",
    "ruby": "ruby",
}
CORE = {"python", "js/ts", "go", "rust", "c"}


def split(doc: str) -> tuple[str, types.Position]:
    before, after = doc.split(CURSOR)
    line = before.count("\n")
    return before + after, types.Position(line=line, character=len(before) - before.rfind("\n") - 1)


def context(case: Case, truncated: bool = False) -> postprocess.Context:
    before, after = case.doc.split(CURSOR)
    return postprocess.Context(before, after, case.lang, truncated)


def result(case: Case) -> GenerationResult:
    reason = "length" if case.truncated else "eot"
    return GenerationResult(text=case.raw, new_tokens=0, prefill_tokens=0, prompt_tokens=0, stop_reason=reason)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_golden(case: Case) -> None:
    """Through the pipeline's own post-processing and `edit`: the text sent and the range it replaces."""
    text, position = split(case.doc)
    doc = Document("file:///golden", text, 0, case.lang)
    cursor = doc.cursor(position, types.PositionEncodingKind.Utf32)
    raw = result(case)
    suggestion = postprocess.postprocess(
        raw.text, postprocess.Context.from_cursor(cursor), truncated=raw.stop_reason == "length"
    )
    answer = None if suggestion is None else edit(cursor, suggestion, raw)
    if case.text is None:
        assert answer is None, answer
        return
    assert answer is not None
    assert answer.text == case.text
    assert (answer.line, answer.start, answer.end) == (
        position.line,
        position.character,
        position.character + case.replace,
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case_exercises_its_step(case: Case) -> None:
    """The step a case is about changes the suggestion when the pipeline reaches it (and only
    that kind of case leaves every step idle), so a case cannot pass by accident."""
    ctx = context(case, case.truncated)
    assert case.step == "none" or case.step in [step.__name__ for step in postprocess.STEPS]
    s = postprocess.Suggestion(case.raw)
    acted = []
    for step in postprocess.STEPS:
        after = step(s, ctx)
        if after != s:
            acted.append(step.__name__)
        s = after
        if not s.text:
            break
    if case.step == "none":
        assert acted in ([], ["auto_closed"]), acted
    else:
        assert case.step in acted, acted


def _chunks(raw: str, how: str) -> list[str]:
    if how == "chars":
        return list(raw)
    return re.findall(r"\s+|\w+|[^\w\s]+", raw)  # roughly what a tokenizer emits


@pytest.mark.parametrize("how", ["chars", "tokens"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_early_stop_gives_the_same_suggestion(case: Case, how: str) -> None:
    ctx = context(case)
    check = postprocess.stop_check(ctx)
    text = ""
    for piece in _chunks(case.raw, how):
        text += piece
        if check(text):
            break
    assert "".join(_chunks(case.raw, how)) == case.raw
    # Stopped early, decoding never reached the token limit; run to the end, it did when the case says so.
    early = postprocess.postprocess(text, ctx, truncated=case.truncated and text == case.raw)
    assert early == postprocess.postprocess(case.raw, ctx, truncated=case.truncated)
    if how == "chars" and case.stops_at is not None:
        assert text == case.stops_at


def test_table_covers_every_step_and_language() -> None:
    assert len(CASES) >= 171  # the 126 of the table before issue 18, and its 45
    assert len({c.name for c in CASES}) == len(CASES)
    per_language = Counter(LANGUAGES[c.lang] for c in CASES)
    assert CORE < set(per_language)
    assert min(per_language[lang] for lang in CORE) >= 10, per_language
    steps = {c.step for c in CASES}
    assert {step.__name__ for step in postprocess.STEPS} <= steps
    # every language sees the core filters
    for lang in ("python", "js/ts", "go", "rust", "c"):
        covered = {c.step for c in CASES if LANGUAGES[c.lang] == lang}
        assert {"scope", "auto_closed", "single_line", "repetition", "line_suffix_overlap"} <= covered, lang
    assert sum(c.stops_at is not None for c in CASES) >= 10
