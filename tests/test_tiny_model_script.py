"""tests/support/tiny_model.py runs as a script without the test extras, so the editor clients
can be tried by hand with a tiny model (README: "Try it without the 7B model")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.tiny_model import SKIP_REASON, have_tokenizer

SCRIPT = Path(__file__).resolve().parent / "support" / "tiny_model.py"
# Runs the script as `python tests/support/tiny_model.py ...` would, with pytest unimportable
# (a None entry in sys.modules makes `import pytest` raise ImportError).
WITHOUT_PYTEST = (
    "import runpy, sys; sys.modules['pytest'] = None; sys.argv = [sys.argv[0], *sys.argv[1:]]; "
    f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')"
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", WITHOUT_PYTEST, *args], capture_output=True, text=True, timeout=300)


def test_the_blocker_really_blocks_pytest():
    code = "import sys; sys.modules['pytest'] = None; import pytest"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0 and "import of pytest halted" in proc.stderr, proc.stderr


def test_help_without_pytest():
    proc = _run("--help")
    assert proc.returncode == 0, proc.stderr
    assert "OUT" in proc.stdout.upper()


@pytest.mark.skipif(not have_tokenizer(), reason=SKIP_REASON)
def test_makes_a_model_without_pytest(tmp_path):
    out = tmp_path / "tiny"
    proc = _run(str(out), "--hidden", "32", "--layers", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == str(out)
    assert (out / "config.json").is_file() and (out / "tokenizer.json").is_file()
    assert any(out.glob("*.safetensors")), sorted(p.name for p in out.iterdir())
