"""Shared fixtures: the real tokenizer and a tiny model folder (helpers live in ``tests/support``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.llama_server import SKIP_REASON as LLAMA_SKIP_REASON
from tests.support.llama_server import convert_to_gguf, have_llama_server
from tests.support.tiny_model import SKIP_REASON, TOKENIZER_DIR, have_tokenizer, write_tiny_model


@pytest.fixture(scope="session")
def tokenizer_dir() -> Path:
    if not have_tokenizer():
        pytest.skip(SKIP_REASON)
    return TOKENIZER_DIR


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path) -> Path:
    """A random 2-layer Llama with the real tokenizer, saved with ``save_pretrained``."""
    return write_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    """``tiny_model``'s weights as an f32 GGUF for llama-server (made once per test session)."""
    if not have_llama_server():
        pytest.skip(LLAMA_SKIP_REASON)
    return convert_to_gguf(tiny_model, tmp_path_factory.mktemp("tiny-gguf") / "tiny-f32.gguf")
