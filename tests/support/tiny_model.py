"""Write a tiny randomly initialised Llama with the real Code Llama tokenizer to a folder.

Tests, editor tests and benchmarks load it through ``from_pretrained`` exactly like the real
7B model. Usage: ``python tests/support/tiny_model.py OUT_DIR [--hidden N --layers N]``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]  # the project
SHARED = ROOT.parent / "shared"
TOKENIZER_DIR = SHARED / "codellama-tokenizer"
VECTORS = SHARED / "fim-vectors" / "codellama-infill.jsonl"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
SKIP_REASON = f"needs the real Code Llama tokenizer in {TOKENIZER_DIR} (../shared beside the project)"


def have_tokenizer() -> bool:
    return (TOKENIZER_DIR / "tokenizer.json").is_file()


def __getattr__(name: str) -> Any:
    """``needs_tokenizer``: a pytest skip mark for tests that need ../shared's tokenizer.

    Made on first use (PEP 562) so that running this file as a script needs no pytest.
    """
    if name == "needs_tokenizer":
        import pytest

        return pytest.mark.skipif(not have_tokenizer(), reason=SKIP_REASON)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def write_tiny_model(
    out: Path, *, hidden: int = 64, layers: int = 2, heads: int = 4, seed: int = 0, max_positions: int = 4096
) -> Path:
    """Save a random LlamaForCausalLM (vocab 32016) plus the tokenizer files into ``out``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=32016,
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_positions,
        rope_theta=1_000_000.0,
        bos_token_id=1,
        eos_token_id=2,
    )
    model = LlamaForCausalLM(config)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    for name in TOKENIZER_FILES:
        shutil.copy(TOKENIZER_DIR / name, out / name)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    args = parser.parse_args()
    print(write_tiny_model(args.out, hidden=args.hidden, layers=args.layers))
