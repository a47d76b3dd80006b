"""Typing at the cursor must not move the start of a trimmed prompt on every line's worth of tokens."""

from __future__ import annotations

import itertools

import pytest

from codellama_ls.prompt.fim import build_prompt
from codellama_ls.prompt.memo import MemoTokenizer
from codellama_ls.prompt.tokens import CodeTokenizer

TYPED = "        result = compute(value, other)\n        if result:\n            return result * 2\n" * 3


@pytest.fixture(scope="module")
def tok(tokenizer_dir) -> MemoTokenizer:
    return MemoTokenizer(CodeTokenizer.load(str(tokenizer_dir)))


BUDGET = 600
GRID = int((BUDGET - 4) * 0.75) // 4  # characters: a quarter of the prefix's token budget


def _session(tok, prefix: str, suffix: str, *, stable: bool, budget: int = BUDGET) -> list:
    """The prompt after each character of TYPED, typed at the end of ``prefix``."""
    return [
        build_prompt(tok, prefix + TYPED[:i], suffix, fmt="spm", budget=budget, stable_cut=stable)
        for i in range(len(TYPED) + 1)
    ]


def _starts(prompts, prefix: str) -> list[int]:
    """Where in the document each prompt's prefix part begins."""
    return [len(prefix) + i - len(p.prefix) for i, p in enumerate(prompts)]


def _body(n: int) -> str:
    return "".join(f"def function_{i}(a, b):\n    return a + b * {i}\n\n" for i in range(n))


def test_prompt_start_moves_in_steps_not_every_line(tok):
    prefix, suffix = _body(100) + "def typing_here(value, other):\n", "\n" + _body(30)
    plain = _session(tok, prefix, suffix, stable=False)
    stable = _session(tok, prefix, suffix, stable=True)
    moves_plain = len(set(_starts(plain, prefix)))
    moves_stable = len(set(_starts(stable, prefix)))
    assert moves_plain >= 8  # without hysteresis the cut follows every line the prefix grows
    assert moves_stable <= 2 + len(TYPED) // GRID
    for p, q in zip(plain, stable, strict=True):
        assert len(q.ids) <= BUDGET and q.suffix == p.suffix
        assert p.prefix.endswith(q.prefix)  # the same text, less of the far end
        assert len(p.prefix) - len(q.prefix) <= GRID + 60  # the price: a grid step and a line of context


def test_stable_prompts_start_at_line_starts_and_extend_each_other(tok):
    prefix, suffix = _body(100), _body(10)
    stable = _session(tok, prefix, suffix, stable=True)
    for i, p in enumerate(stable):
        text = prefix + TYPED[:i]
        start = len(text) - len(p.prefix)
        assert start == 0 or text[start - 1] == "\n"
    extended = sum(
        1 for a, b in itertools.pairwise(stable) if b.ids[: len(a.ids) - 2] == a.ids[: len(a.ids) - 2]
    )  # the last token or two of the prefix may re-merge with what was typed
    assert extended >= len(stable) - 2 - len(TYPED) // GRID


def test_suffix_keeps_its_cut_near_the_top_of_a_file(tok):
    """With a short prefix the suffix gets the spare budget: hand it over in steps too."""
    prefix, suffix = "import os\n", "\n" + _body(80)
    plain = _session(tok, prefix, suffix, stable=False)
    stable = _session(tok, prefix, suffix, stable=True)
    assert len({p.suffix for p in plain}) >= 8
    assert len({p.suffix for p in stable}) <= 3  # one step of the budget is 1/16 of it
    assert all(len(p.ids) <= BUDGET for p in stable)
