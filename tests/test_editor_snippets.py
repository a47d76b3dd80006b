"""The Helix and Emacs snippets in editors/ name real settings, so copying them works.

(The Emacs snippet is also loaded and used by tests/test_emacs_eglot.py.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from codellama_ls.config import Settings

EDITORS = Path(__file__).resolve().parent.parent / "editors"


def test_helix_languages_toml_configures_the_server_with_valid_settings():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((EDITORS / "helix" / "languages.toml").read_text(encoding="utf-8"))
    server = config["language-server"]["codellama-ls"]
    assert server["command"] == "codellama-ls"
    settings, errors = Settings().updated(server["config"])
    assert errors == []
    assert settings.max_new_tokens == server["config"]["maxNewTokens"]
    (python,) = [lang for lang in config["language"] if lang["name"] == "python"]
    assert "codellama-ls" in python["language-servers"]


def test_emacs_snippet_initialization_options_are_valid_settings():
    text = (EDITORS / "emacs" / "codellama-ls-eglot.el").read_text(encoding="utf-8")
    block = re.search(r"\(defvar codellama-ls-initialization-options\s+'\((.*?)\)\s*\n", text, re.S)
    assert block, "codellama-ls-initialization-options not found"
    pairs = dict(re.findall(r':(\w+)\s+("[^"]*"|\S+)', block.group(1)))
    assert pairs, block.group(1)
    values = {k: v.strip('"') for k, v in pairs.items()}
    assert Settings().updated(values)[1] == []
