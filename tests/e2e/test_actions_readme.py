"""The code-action transcripts of docs/code-actions.md are real runs: this test makes each one again through
the real server (listing, resolving or running the command, applying the edit as an editor would) against
the stand-in TGI server with canned Instruct answers, and checks that the page shows exactly that.

``python -m tests.e2e.test_actions_readme`` prints the transcripts (to paste after a change).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from tests.support.actions import INSTRUCT_ID, applied, code_actions, options, range_, record_edits
from tests.support.fake_remote import FakeServer, Stream, tokens
from tests.support.lsp import lsp_session, open_doc
from tests.support.tiny_model import TOKENIZER_DIR, have_tokenizer

ROOT = Path(__file__).resolve().parents[2]
DOC = "docs/code-actions.md"  # where the transcripts are shown

GEOMETRY = """import math


def hyp(a, b):
    return math.sqrt(a * a + b * b)
"""
SHAPES_RS = """pub struct Rect {
    pub w: f64,
    pub h: f64,
}

pub fn area(r: &Rect) -> f64 {
    r.w * r.h
}
"""
STATS = """def mean(values):
    total = sum(values)
    return total / len(value)
"""

# (name, file, text, cursor or selection, what to do, the canned answer)
CASES: list[tuple[str, str, str, tuple[int, int, int, int], str, str]] = [
    (
        "docstring",
        "geometry.py",
        GEOMETRY,
        (3, 5, 3, 5),
        "refactor.rewrite.codellama.docstring",
        '```python\n"""Return the hypotenuse of a right triangle with legs a and b."""\n```',
    ),
    (
        "doc comment",
        "shapes.rs",
        SHAPES_RS,
        (5, 8, 5, 8),
        "refactor.rewrite.codellama.docstring",
        "```rust\n/// The area of `r`: its width times its height.\n"
        "pub fn area(r: &Rect) -> f64 {\n    r.w * r.h\n}\n```",
    ),
    (
        "tests",
        "geometry.py",
        GEOMETRY,
        (4, 8, 4, 8),
        "refactor.rewrite.codellama.tests",
        "Here are some tests:\n\n```python\nimport math\n\nfrom geometry import hyp\n\n\n"
        "def test_hyp_3_4_5():\n    assert hyp(3, 4) == 5\n\n\ndef test_hyp_zero_leg():\n"
        "    assert math.isclose(hyp(0, 2.5), 2.5)\n```",
    ),
    (
        "fix",
        "stats.py",
        STATS,
        (2, 23, 2, 28),
        "quickfix",
        "`value` is not defined; the parameter is `values`:\n\n```python\ndef mean(values):\n"
        "    total = sum(values)\n    return total / len(values)\n```",
    ),
    (
        "edit",
        "geometry.py",
        GEOMETRY,
        (3, 0, 4, 35),
        "codellama.edit:use math.hypot",
        "```python\ndef hyp(a, b):\n    return math.hypot(a, b)\n```",
    ),
    (
        "explain",
        "geometry.py",
        GEOMETRY,
        (3, 5, 3, 5),
        "codellama.explain",
        "`hyp(a, b)` returns the length of the hypotenuse of a right triangle\n"
        "whose legs are `a` and `b`: by Pythagoras, the square root of `a * a + b * b`.",
    ),
]


def numbered(text: str) -> list[str]:
    lines = text.removesuffix("\n").split("\n")
    return [f"{i + 1:>3} │ {line}".rstrip() for i, line in enumerate(lines)]


def answered(answer: str) -> list[str]:
    return ["", "the model answers (end of sequence: </s>):", *[f"    {line}".rstrip() for line in answer.split("\n")]]


async def transcripts(tokenizer_dir: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    with FakeServer(tokenizer_dir, model_id=INSTRUCT_ID) as server, tempfile.TemporaryDirectory() as tmp:
        async with lsp_session(options(server.url, tokenizer_dir)) as client:
            edits = record_edits(client)
            for version, (name, file, text, where, what, answer) in enumerate(CASES, start=1):
                uri = (Path(tmp) / file).as_uri()
                open_doc(client, uri, text, language="rust" if file.endswith(".rs") else "python", version=version)
                server.queue("/generate_stream", Stream(tokens(*_pieces(answer + "</s>")), finish="eos_token"))
                rng = range_(*where)
                lines = [f"── {file} ──", *numbered(text), ""]
                if what.startswith("codellama."):
                    command, _, instruction = what.partition(":")
                    args: dict[str, Any] = {"uri": uri, "range": _json(rng)}
                    if instruction:
                        args["instruction"] = instruction
                    shown = f"selection {where[0] + 1}:{where[1] + 1}-{where[2] + 1}:{where[3] + 1}"
                    if where[:2] == where[2:]:
                        shown = f"cursor at {where[0] + 1}:{where[1] + 1}"
                    lines.append(f"{shown}, command {command} {args.get('instruction', '')!r}".replace(" ''", ""))
                    result = await client.workspace_execute_command_async(
                        types.ExecuteCommandParams(command=command, arguments=[args])
                    )
                    lines += answered(answer)
                    if command == "codellama.explain":
                        markdown = result["markdown"] if isinstance(result, dict) else result.markdown
                        lines += ["", "shown as markdown:", *[f"    {line}" for line in markdown.split("\n")]]
                    else:
                        [change] = edits[-1].edit.document_changes
                        lines += ["", f"── {file} after ──", *numbered(applied(text, change.edits))]
                else:
                    diagnostics = []
                    if what == "quickfix":
                        message = "undefined name 'value'"
                        diagnostics = [types.Diagnostic(range=rng, message=message, source="pyflakes")]
                        lines.append(f"diagnostic at {where[0] + 1}:{where[1] + 1} (pyflakes): {message}")
                        rng = range_(where[0], where[1], where[0], where[1])
                    actions = await code_actions(client, uri, rng, diagnostics)
                    lines.append(f"code actions at {where[0] + 1}:{where[1] + 1}:")
                    chosen = next(a for a in actions if a.kind == what)
                    lines += [f"  {'▶' if a is chosen else ' '} {a.title}" for a in actions]
                    resolved = await client.code_action_resolve_async(chosen)
                    lines += answered(answer)
                    for change in resolved.edit.document_changes:
                        if isinstance(change, types.CreateFile):
                            continue
                        target = Path(types.TextDocumentIdentifier(uri=change.text_document.uri).uri).name
                        before = text if change.text_document.uri == uri else ""
                        new = " (new file)" if change.text_document.uri != uri else " after"
                        lines += ["", f"── {target}{new} ──", *numbered(applied(before, change.edits))]
                out[name] = "\n".join(lines) + "\n"
    return out


def _pieces(text: str) -> list[str]:
    return [text[i : i + 5] for i in range(0, len(text), 5)]


def _json(rng: types.Range) -> dict[str, Any]:
    return {
        "start": {"line": rng.start.line, "character": rng.start.character},
        "end": {"line": rng.end.line, "character": rng.end.character},
    }


@pytest.mark.slow
async def test_documented_transcripts_are_real_runs(tokenizer_dir: Path) -> None:
    page = (ROOT / DOC).read_text(encoding="utf-8")
    for name, transcript in (await transcripts(tokenizer_dir)).items():
        assert f"````text\n{transcript}````" in page, f"{DOC}'s {name} transcript differs; now:\n{transcript}"


if __name__ == "__main__":
    if not have_tokenizer():
        sys.exit(f"needs {TOKENIZER_DIR}")
    for name, transcript in asyncio.run(transcripts(TOKENIZER_DIR)).items():
        print(f"<!-- {name} -->\n````text\n{transcript}````\n")
