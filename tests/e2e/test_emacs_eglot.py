"""Emacs + eglot (batch mode) against the real server, configured with editors/emacs's
snippet: the server's suggestion is among the completion candidates and
`completion-at-point` inserts it.

Needs `emacs` with eglot (Debian: emacs-nox, elpa-eglot; built in from Emacs 29) and the
tiny model; skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.emacs import ROOT, SNIPPET, emacs_with_eglot
from tests.support.rawlsp import server_env

SCRIPT = ROOT / "tests" / "e2e" / "emacs" / "eglot_completion.el"
# name: (file text, 1-based line, 0-based column); the cursor ends line 2 in both.
CASES = {
    # after a space: nothing to filter by
    "space.py": ("def add(a, b):\n    return \n", 2, 11),
    # right after a symbol: eglot filters candidates by the symbol at point ("a")
    "word.py": ("def add(a, b):\n    return a\n", 2, 12),
}


@pytest.fixture(scope="module")
def eglot_report(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> dict:
    emacs = emacs_with_eglot()
    work = tmp_path_factory.mktemp("emacs")
    for name, (text, _, _) in CASES.items():
        (work / name).write_text(text, encoding="utf-8")
    result = work / "result.json"
    env = server_env(
        CODELLAMA_LS_TEST_SNIPPET=str(SNIPPET),
        CODELLAMA_LS_TEST_PYTHON=sys.executable,
        CODELLAMA_LS_TEST_MODEL=str(tiny_model),
        CODELLAMA_LS_TEST_DIR=str(work),
        CODELLAMA_LS_TEST_CASES=",".join(f"{name}:{line}:{col}" for name, (_, line, col) in CASES.items()),
        CODELLAMA_LS_TEST_RESULT=str(result),
        HOME=str(work),  # no user init files, no ~/.emacs.d writes
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    proc = subprocess.run(
        [emacs, "--batch", "-l", str(SCRIPT)], cwd=work, env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0 and result.is_file(), f"emacs failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    report = json.loads(result.read_text(encoding="utf-8"))
    assert report["state"] == "ready", report
    return report


def _case(report: dict, name: str) -> dict:
    (case,) = [c for c in report["cases"] if c["file"] == name]
    assert case["expected"], f"the server suggested nothing at {name}; cannot test completion: {case}"
    return case


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_server_suggestion_is_an_eglot_candidate(eglot_report, name):
    case = _case(eglot_report, name)
    first_line = case["expected"].split("\n")[0]
    full = [c for c in case["candidates"] if c["newText"] and c["newText"].endswith(case["expected"])]
    assert full, f"eglot {eglot_report['eglot']} dropped the suggestion {case['expected']!r}: {case}"
    assert any(first_line.strip() in c["label"] for c in full), case


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_completion_at_point_inserts_the_suggestion(eglot_report, name):
    case = _case(eglot_report, name)
    before, at = case["before"], case["offset"]
    assert case["completed"], case
    assert case["after"] == before[:at] + case["expected"] + before[at:]


@pytest.mark.slow
def test_point_resting_after_a_command_sends_codellama_warm(eglot_report):
    warm = eglot_report["warm"]
    assert warm["hooked"] is True and warm["idle"] is True, warm  # post-command-hook starts an idle timer
    assert warm["after"] == warm["before"] + 1, warm  # the server got one codellama/warm for point
    assert warm["again"] == warm["after"], warm  # the same place of the same text is not sent again
