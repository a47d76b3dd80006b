"""Text prompts for servers that tokenize themselves: exact where possible, markers always intact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codellama_ls.prompt.fim import Prompt, build_prompt
from codellama_ls.prompt.text import fim_text, harm, text_prompt, token_diff
from codellama_ls.prompt.tokens import CodeTokenizer

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "fim-vectors" / "codellama-infill.jsonl"


@pytest.fixture(scope="module")
def tok(tokenizer_dir: Path) -> CodeTokenizer:
    return CodeTokenizer.load(str(tokenizer_dir))


def markers(tok: CodeTokenizer) -> tuple[int | None, ...]:
    return (tok.special.pre, tok.special.suf, tok.special.mid)


@pytest.mark.parametrize("fmt", ["psm", "spm"])
def test_vectors_keep_every_marker_and_lose_no_exact_prompt(tok: CodeTokenizer, fmt: str) -> None:
    if not VECTORS.is_file():
        pytest.skip(f"{VECTORS} is absent")
    encode = tok.text_encoder()
    cases = [json.loads(line) for line in VECTORS.read_text(encoding="utf-8").splitlines()]
    exact_before = exact_after = 0
    for case in cases:
        ref = case[f"{fmt}_ids"]
        before = encode(fim_text(fmt, case["prefix"], case["suffix"]))
        sent = text_prompt(Prompt(fmt, case["prefix"], case["suffix"], ref, False), encode, markers(tok))
        assert sent.ids == encode(sent.text)
        assert harm(sent.ids, ref, markers(tok))[0] == 0, case["source"]  # ▁<PRE> ▁<SUF> ▁<MID> all there
        assert sent.exact == (sent.ids == ref)
        if sent.adjusted:
            assert harm(before, ref, markers(tok))[0] > 0 and token_diff(sent.ids, ref) <= 2
        exact_before += before == ref
        exact_after += sent.exact
    assert exact_after >= exact_before
    assert exact_before < len(cases)  # the vectors do contain the `<SUF>(` problem


@pytest.mark.parametrize("first", ["(", ".", ",", ")", "=", "'", '"', "["])
def test_suffix_starting_with_punctuation_gets_a_space(tok: CodeTokenizer, first: str) -> None:
    prompt = build_prompt(tok, "x = foo", first + "a)\n", fmt="spm")
    sent = text_prompt(prompt, tok.text_encoder(), markers(tok))
    assert sent.adjusted and sent.text == f"<PRE> <SUF> {first}a)\n <MID> x = foo"
    assert tok.special.suf in sent.ids


def test_plain_prompts_are_sent_unchanged(tok: CodeTokenizer) -> None:
    for prefix, suffix, fmt in [("def f():\n    ", "\n", "psm"), ("", "x\n", "spm"), ("a = 1\n", "", "spm")]:
        prompt = build_prompt(tok, prefix, suffix, fmt=fmt)
        sent = text_prompt(prompt, tok.text_encoder(), markers(tok))
        assert sent.exact and not sent.adjusted and sent.ids == prompt.ids
    prompt = build_prompt(tok, "import os\n", "", fmt="prefix")
    assert text_prompt(prompt, tok.text_encoder()).text == "import os\n"
