"""Emacs + eglot for the end-to-end tests: where the project and its eglot snippet are, and an
``emacs`` that has eglot (the test skips with the reason otherwise)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]  # the project
SNIPPET = ROOT / "editors" / "emacs" / "codellama-ls-eglot.el"


def emacs_with_eglot() -> str:
    """The ``emacs`` to run, or a skip that says what to install."""
    emacs = shutil.which("emacs")
    if emacs is None:
        pytest.skip("emacs not found (Debian: apt-get install emacs-nox elpa-eglot)")
    probe = subprocess.run(
        [emacs, "--batch", "--eval", '(princ (if (require \'eglot nil t) "yes" "no"))'],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.stdout.strip() != "yes":
        pytest.skip("eglot is not available to emacs (Debian: apt-get install elpa-eglot)")
    return emacs
