"""Typing at the cursor must not move the start of a trimmed prompt on every line's worth of tokens."""

from __future__ import annotations

import itertools

import pytest

from codellama_ls.prompt.fim import build_prompt, next_cut_prompt
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


def _steps_prepared(tok, prefix: str, suffix: str) -> tuple[int, list[int]]:
    """Type TYPED twice at the end of ``prefix``; at every step (a cut moves), how many of the step's prompt
    tokens the look-ahead made before it does not share, and how many steps there were."""
    from codellama_ls.engines.kvcache import common_prefix

    typed = TYPED * 2
    prompt = build_prompt(tok, prefix, suffix, fmt="spm", budget=BUDGET, stable_cut=True)
    seen = {(len(prefix) - len(prompt.prefix), len(prompt.suffix))}  # where each prompt's cuts were
    ahead = next_cut_prompt(tok, prefix, suffix, fmt="spm", budget=BUDGET)  # made while the user rests
    steps, missed = 0, []
    for i in range(1, len(typed) + 1):
        text = prefix + typed[:i]
        prompt = build_prompt(tok, text, suffix, fmt="spm", budget=BUDGET, stable_cut=True)
        cuts = (len(text) - len(prompt.prefix), len(prompt.suffix))
        # A step: cuts not seen before. (A typed character that merges tokens can move a cut back and
        # the next one forward again: to prompts the KV cache still holds.)
        if cuts not in seen:
            seen.add(cuts)
            steps += 1  # without the look-ahead all of the prefix is computed again
            assert ahead is not None, "a step came that no look-ahead prepared"
            missed.append(len(prompt.ids) - common_prefix(ahead.ids, prompt.ids))
        ahead = next_cut_prompt(tok, text, suffix, fmt="spm", budget=BUDGET)
    return steps, missed


@pytest.mark.parametrize(
    ("prefix", "suffix"),
    [
        (_body(100), _body(30)),  # both sides cut: the prefix's start moves on its grid
        (_body(100), "\n" + _body(2)),  # a short suffix: the prefix gets the rest of the budget
        ("import os\n", "\n" + _body(80)),  # near the top: the suffix gives back its spare in steps
    ],
    ids=["both-cut", "short-suffix", "suffix-spare"],
)
def test_the_look_ahead_is_the_prompt_after_the_next_step(tok, prefix, suffix):
    """Computed before a step, the look-ahead shares all of the step's prompt but what was typed since
    and the last line (its last tokens may re-merge): the step costs a line, not the whole prefix."""
    steps, missed = _steps_prepared(tok, prefix, suffix)
    assert steps >= 2
    line = max(len(tok.encode(line)) for line in TYPED.splitlines()) + 2
    assert all(m <= line for m in missed), missed


def test_no_look_ahead_when_nothing_moves(tok):
    small = _body(3)
    assert next_cut_prompt(tok, small, small, fmt="spm", budget=BUDGET) is None  # it all fits
    assert next_cut_prompt(tok, _body(100), "", fmt="prefix", budget=BUDGET) is None  # moves every line
