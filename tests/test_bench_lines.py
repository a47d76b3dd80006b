"""``bench/train_model.py --lines N``: the completions it counts and trains run on past the line's
end to the end of the cursor's block, so the model it makes has multi-line answers to measure."""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from train_model import block_end, cursor

CODE = """def f(x):
    if x:
        y = 1
        z = 2
    return x

def g():
    pass
end = 1
"""


def test_a_block_ends_at_a_blank_line_a_dedent_or_n_lines() -> None:
    lines = CODE.split("\n")
    assert block_end(lines, 2, 8) == 4  # "y = 1", "z = 2": then the indentation drops
    assert block_end(lines, 1, 8) == 5  # the deeper lines belong to the "if" line's block; the blank line ends it
    assert block_end(lines, 1, 2) == 3  # at most 2 lines
    assert block_end(lines, 7, 8) == 8  # "end = 1" is indented less than "pass"
    assert block_end(lines, 4, 1) == 5  # one line: the line alone


def test_middles_run_to_the_end_of_the_block_with_lines() -> None:
    """Every cursor on a line removes the same lines with ``--lines 4``; without it, at most 2 more."""
    rng = random.Random(0)
    spans = set()
    for _ in range(300):
        prefix, middle, suffix = cursor(rng, [CODE], 4)
        assert prefix + middle + suffix == CODE
        spans.add((prefix.count("\n"), middle.count("\n")))  # (the cursor's line, lines removed after it)
    assert spans == {(0, 3), (1, 3), (2, 1), (3, 0), (4, 0), (6, 2), (7, 0), (8, 0)}
    for _ in range(100):
        prefix, middle, _ = cursor(rng, [CODE])
        assert CODE.startswith(prefix + middle) and middle.count("\n") <= 2
