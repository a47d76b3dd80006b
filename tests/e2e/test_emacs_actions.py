"""Code actions in Emacs + eglot (batch mode) with editors/emacs's snippet, against the real server
whose engine is the stand-in TGI server serving an Instruct model id with canned answers.

eglot 1.9 (Emacs 28) cannot resolve code actions and cannot create files: it gets each action with
the ``codellama.runAction`` command, which answers at once and sends the edit as ``workspace/applyEdit``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.emacs import ROOT, SNIPPET, emacs_with_eglot
from tests.support.fake_remote import FakeServer, Stream, tokens
from tests.support.rawlsp import server_env

SCRIPT = ROOT / "tests" / "e2e" / "emacs" / "eglot_actions.el"
GEOMETRY = "import math\n\n\ndef hyp(a, b):\n    return math.sqrt(a * a + b * b)\n"
DOCSTRING = '    """Return the hypotenuse of legs a and b."""\n'
EXPLAIN = "`hyp` returns the hypotenuse of a right triangle."


def answer(text: str) -> Stream:
    return Stream(tokens(*[text[i : i + 6] for i in range(0, len(text), 6)]), finish="eos_token")


@pytest.mark.slow
def test_docstring_explain_and_edit_through_eglot(tmp_path: Path, tokenizer_dir: Path) -> None:
    emacs = emacs_with_eglot()
    source = tmp_path / "geometry.py"
    source.write_text(GEOMETRY)
    result = tmp_path / "result.json"
    with FakeServer(tokenizer_dir, model_id="codellama/CodeLlama-7b-Instruct-hf") as server:
        server.queue("/generate_stream", answer(f"```python\n{DOCSTRING.strip()}\n```"))
        server.queue("/generate_stream", answer(EXPLAIN))
        hypot = f"```python\ndef hyp(a, b):\n{DOCSTRING}    return math.hypot(a, b)\n```"
        server.queue("/generate_stream", answer(hypot))
        env = server_env(
            CODELLAMA_LS_TEST_SNIPPET=str(SNIPPET),
            CODELLAMA_LS_TEST_PYTHON=sys.executable,
            CODELLAMA_LS_TEST_URL=server.url,
            CODELLAMA_LS_TEST_TOKENIZER=str(tokenizer_dir),
            CODELLAMA_LS_TEST_FILE=str(source),
            CODELLAMA_LS_TEST_RESULT=str(result),
            HOME=str(tmp_path),
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        )
        proc = subprocess.run(
            [emacs, "--batch", "-l", str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
        )
        assert proc.returncode == 0 and result.is_file(), f"emacs failed ({proc.returncode}):\n{proc.stderr[:3000]}"
        report = json.loads(result.read_text(encoding="utf-8"))
        prompts = [s.body["inputs"] for s in server.seen_on("/generate_stream")]
    assert report["titles"] == ["Write docstring for `hyp`", "Write unit tests for `hyp` (in test_geometry.py)"]
    with_doc = GEOMETRY.replace("def hyp(a, b):\n", "def hyp(a, b):\n" + DOCSTRING)
    assert report["docstring"] == with_doc
    assert report["explained"] == EXPLAIN
    assert report["edited"] == with_doc.replace("math.sqrt(a * a + b * b)", "math.hypot(a, b)")
    assert [p.split(" ", 3)[1:3] for p in prompts] == [["Write", "a"], ["Explain", "briefly"], ["Change", "the"]]
