"""Prompt ids must equal Meta's reference exactly; trimming keeps whole lines near the cursor."""

from __future__ import annotations

import json
import random

import pytest

from codellama_ls.prompt.fim import build_prompt, prompt_budget
from codellama_ls.prompt.tokens import CodeTokenizer
from tests.support.tiny_model import SKIP_REASON, TOKENIZER_DIR, VECTORS


@pytest.fixture(scope="module")
def tok() -> CodeTokenizer:
    if not (TOKENIZER_DIR / "tokenizer.json").is_file():
        pytest.skip(SKIP_REASON)
    return CodeTokenizer.load(str(TOKENIZER_DIR))


def _vectors() -> list[dict]:
    if not VECTORS.is_file():
        return []
    return [json.loads(line) for line in VECTORS.read_text(encoding="utf-8").splitlines() if line.strip()]


VECTOR_CASES = _vectors()


@pytest.mark.skipif(not VECTOR_CASES, reason=f"needs {VECTORS} (../shared beside the project)")
def test_shared_vectors_are_all_there():
    assert len(VECTOR_CASES) == 198


@pytest.mark.parametrize("fmt", ["psm", "spm"])
@pytest.mark.parametrize("case", VECTOR_CASES, ids=[f"{i}-{c['source'][:40]}" for i, c in enumerate(VECTOR_CASES)])
def test_reference_ids(tok, case, fmt):
    prompt = build_prompt(tok, case["prefix"], case["suffix"], fmt=fmt, budget=100_000)
    assert prompt.ids == case[f"{fmt}_ids"]
    assert (prompt.prefix, prompt.suffix, prompt.truncated) == (case["prefix"], case["suffix"], False)


def test_special_pieces(tok):
    sp = tok.special
    assert (sp.bos, sp.eos, sp.pre, sp.suf, sp.mid, sp.eot) == (1, 2, 32007, 32008, 32009, 32010)
    assert sp.infill


def test_literal_special_text_is_plain_text(tok):
    # "<s>" typed in code is three characters, not the BOS token.
    assert 1 not in tok.encode("x = '<s>'") and 2 not in tok.encode("</s>")


def test_decode_keeps_leading_space(tok):
    assert tok.decode(tok.encode_infill(" total += 1\n")) == " total += 1\n"


def _code(lines: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "return", "x", "(", ")", "+", "==", "'s'", "12"]
    return "".join(
        "    " * rng.randint(0, 3) + " ".join(rng.choice(words) for _ in range(rng.randint(1, 9))) + "\n"
        for _ in range(lines)
    )


@pytest.mark.parametrize("fmt", ["psm", "spm"])
@pytest.mark.parametrize("budget", [64, 200, 1000])
def test_trimming_fits_budget_and_drops_far_lines(tok, fmt, budget):
    prefix = _code(400, 1) + "def f(a):\n    return a"
    suffix = " + 1\n" + _code(300, 2)
    prompt = build_prompt(tok, prefix, suffix, fmt=fmt, budget=budget, prefix_share=0.75)
    assert prompt.truncated
    assert len(prompt.ids) <= budget
    # Kept text is contiguous with the cursor and cut at line boundaries.
    assert prefix.endswith(prompt.prefix) and suffix.startswith(prompt.suffix)
    assert prompt.prefix == prefix or prefix[: len(prefix) - len(prompt.prefix)].endswith("\n")
    assert prompt.suffix == suffix or prompt.suffix.endswith("\n") or not prompt.suffix
    # The ids are exactly the reference encoding of the kept text.
    again = build_prompt(tok, prompt.prefix, prompt.suffix, fmt=fmt, budget=100_000)
    assert again.ids == prompt.ids
    # Tight: one more line of prefix would not have fit in the prefix's share.
    dropped = prefix[: len(prefix) - len(prompt.prefix)]
    prev_line = dropped.rstrip("\n").rsplit("\n", 1)[-1] + "\n"
    assert len(tok.encode(prev_line + prompt.prefix)) > int((budget - 4) * 0.75)


def test_share_splits_budget_and_unused_share_moves(tok):
    long_prefix = _code(500, 3)
    long_suffix = _code(500, 4)
    both = build_prompt(tok, long_prefix, long_suffix, fmt="psm", budget=1000, prefix_share=0.75)
    n_prefix = len(tok.encode(both.prefix))
    n_suffix = len(tok.encode_infill(both.suffix))
    assert n_prefix > 2 * n_suffix  # 3:1 split, minus line snapping
    # A short suffix leaves its share to the prefix.
    short = build_prompt(tok, long_prefix, "\n", fmt="psm", budget=1000, prefix_share=0.75)
    assert len(tok.encode(short.prefix)) > n_prefix + 100
    assert short.suffix == "\n"


def test_untruncated_when_it_fits(tok):
    prompt = build_prompt(tok, "a = 1\n", "\nb = 2\n", fmt="spm", budget=2048)
    assert not prompt.truncated


def test_single_huge_line_keeps_text_next_to_cursor(tok):
    prefix = "x = [" + ", ".join(str(i) for i in range(3000))
    prompt = build_prompt(tok, prefix, "]\n", fmt="psm", budget=100)
    assert len(prompt.ids) <= 100 and prompt.prefix and prefix.endswith(prompt.prefix)


def test_prefix_only_model(tok):
    spec = json.loads((TOKENIZER_DIR / "tokenizer.json").read_text(encoding="utf-8"))
    # A 32000-piece vocabulary, as Code Llama 34B and the Python models have: no infill pieces.
    vocab = {k: v for k, v in spec["model"]["vocab"].items() if v < 32000}
    pairs = [m.split(" ") if isinstance(m, str) else m for m in spec["model"]["merges"]]
    spec["model"]["vocab"] = vocab
    spec["model"]["merges"] = [m for m in pairs if m[0] in vocab and m[1] in vocab and m[0] + m[1] in vocab]
    plain = CodeTokenizer(spec)
    assert not plain.special.infill
    prompt = build_prompt(plain, "def f():\n    return", "\n", fmt="spm", budget=64)
    assert prompt.format == "prefix" and prompt.suffix == ""
    assert prompt.ids == [1, *tok.encode("def f():\n    return")]


def test_budget_never_exceeds_context():
    assert prompt_budget(4096, 2048, 128) == 1920
    assert prompt_budget(1024, 16384, 128) == 1024
    assert prompt_budget(1024, None, 128) == 1024
