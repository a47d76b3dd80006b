"""A context block before the prefix: exact ids in every format, inside the budget, KV-cache friendly."""

from __future__ import annotations

import itertools
import json

import pytest

from codellama_ls.context.block import ContextBlock, ContextEntry
from codellama_ls.prompt.fim import build_prompt
from codellama_ls.prompt.memo import MemoTokenizer
from codellama_ls.prompt.text import fim_text, text_prompt
from codellama_ls.prompt.tokens import CodeTokenizer
from tests.support.tiny_model import VECTORS

BLOCK = (
    "# Path: app/style.py\n"
    "# @dataclass\n"
    "# class Style:\n"
    '#     """How a piece of text is drawn."""\n'
    "#\n"
    '#     color: str = "black"\n'
    "#     ...\n"
    "#\tbold: bool = False  # ünïcødé, tabs and 😀\n"
    "# Path: app/render.py\n"
)
ENTRY = ContextEntry("file:///ws/app/style.py", 5, 12, "definition", 60, "Style")
CONTEXT = ContextBlock(BLOCK, (ENTRY,), 0)


@pytest.fixture(scope="module")
def tok(tokenizer_dir) -> CodeTokenizer:
    return CodeTokenizer.load(str(tokenizer_dir))


CASES = [
    ("from .style import Style\n\n\ndef render(page):\n    return draw(page, style=Style(", ")\n\n\nx = 1\n"),
    ("", "def f():\n    pass\n"),  # cursor at the very start of the file
    ("x", ""),
    ("    indented = 1\n  ", "\n"),  # the prefix starts with spaces
    ("\n\nfoo(", ")"),  # and with blank lines
    ("s = 'ü😀'\nprint(", ", sep='')\n"),
]


@pytest.mark.parametrize("fmt", ["psm", "spm", "prefix"])
@pytest.mark.parametrize(("prefix", "suffix"), CASES)
def test_ids_are_the_encoding_of_block_plus_prefix(tok, prefix, suffix, fmt):
    """Exactly what the reference gives for a file that starts with the block."""
    got = build_prompt(tok, prefix, suffix, fmt=fmt, budget=4096, context=CONTEXT)
    sp = tok.special
    whole = tok.encode(BLOCK + prefix)
    if fmt == "psm":
        want = [sp.bos, sp.pre, *whole, sp.suf, *tok.encode_infill(suffix), sp.mid]
    elif fmt == "spm":
        want = [sp.bos, sp.pre, sp.suf, *tok.encode_infill(suffix), sp.mid, *whole]
    else:
        want = [sp.bos, *whole]
    assert got.ids == want
    assert (got.prefix, got.context_text, got.context) == (prefix, BLOCK, (ENTRY,))
    assert got.ids == build_prompt(tok, BLOCK + prefix, suffix, fmt=fmt, budget=4096).ids
    memo = build_prompt(MemoTokenizer(tok), prefix, suffix, fmt=fmt, budget=4096, context=BLOCK)  # type: ignore[arg-type]
    assert memo.ids == got.ids


def _vectors() -> list[dict]:
    if not VECTORS.is_file():
        return []
    return [json.loads(line) for line in VECTORS.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("fmt", ["psm", "spm"])
def test_reference_vectors_with_a_block(tok, fmt):
    """All of Meta's reference cases stay exact when a block goes before their prefix."""
    cases = _vectors()
    if not cases:
        pytest.skip(f"needs {VECTORS}")
    for case in cases:
        got = build_prompt(tok, case["prefix"], case["suffix"], fmt=fmt, budget=100_000, context=CONTEXT)
        plain = build_prompt(tok, BLOCK + case["prefix"], case["suffix"], fmt=fmt, budget=100_000)
        assert got.ids == plain.ids
        without = build_prompt(tok, case["prefix"], case["suffix"], fmt=fmt, budget=100_000, context="")
        assert without.ids == case[f"{fmt}_ids"]


def _body(n: int) -> str:
    return "".join(f"def function_{i}(a, b):\n    return a + b * {i}\n\n" for i in range(n))


@pytest.mark.parametrize("fmt", ["psm", "spm"])
def test_block_comes_off_the_budget_and_trimming_stays_exact(tok, fmt):
    prefix, suffix = _body(60) + "def last(x):\n    ret", "urn x\n\n" + _body(30)
    block_tokens = len(tok.encode(BLOCK))
    for budget in (300, 500, 1000):
        got = build_prompt(tok, prefix, suffix, fmt=fmt, budget=budget, context=CONTEXT, stable_cut=True)
        plain = build_prompt(tok, prefix, suffix, fmt=fmt, budget=budget - block_tokens)
        assert len(got.ids) <= budget and got.truncated
        assert len(got.ids) >= budget - 40  # the rest of the budget is still used
        assert got.context_ids == tok.encode(BLOCK) and got.prefix_ids == tok.encode_infill(got.prefix)
        assert prefix.endswith(got.prefix) and prefix[len(prefix) - len(got.prefix) - 1] == "\n"  # a line start
        sp = tok.special
        whole = tok.encode(BLOCK + got.prefix)
        if fmt == "psm":
            assert got.ids == [sp.bos, sp.pre, *whole, sp.suf, *tok.encode_infill(got.suffix), sp.mid]
        else:
            assert got.ids == [sp.bos, sp.pre, sp.suf, *tok.encode_infill(got.suffix), sp.mid, *whole]
        assert abs(len(plain.prefix) - len(got.prefix)) < 2_000


def test_a_block_larger_than_half_the_budget_is_left_out(tok):
    got = build_prompt(tok, "x = 1\n", "", budget=40, context=CONTEXT)
    assert got.context_text == "" and got.context == () and got.ids == build_prompt(tok, "x = 1\n", "", budget=40).ids


def test_block_must_end_with_a_newline(tok):
    with pytest.raises(ValueError, match="newline"):
        build_prompt(tok, "x", "", context="# Path: a.py")


def test_to_json_reports_the_entries(tok):
    data = build_prompt(tok, "x = ", "\n", context=CONTEXT).to_json()
    assert data["context"] == [
        {
            "uri": "file:///ws/app/style.py",
            "startLine": 5,
            "endLine": 12,
            "reason": "definition",
            "tokens": 60,
            "symbol": "Style",
        }
    ]
    assert data["contextText"] == BLOCK and data["prefix"] == "x = "
    assert set(data) == {"format", "prefix", "suffix", "ids", "truncated", "context", "contextText"}
    assert build_prompt(tok, "x", "").to_json()["context"] == []


TYPED = "        result = compute(value, other)\n        if result:\n            return result * 2\n" * 3


def test_typing_only_appends_in_spm_with_an_unchanged_block(tok):
    """The local engine reuses the longest common token prefix: with the block fixed, a keystroke
    changes at most the last token or two (a word re-merging), and the cut on the grid moves the
    start only every grid step."""
    memo = MemoTokenizer(tok)
    prefix, suffix = _body(100) + "def typing_here(value, other):\n", "\n" + _body(30)
    budget = 900
    prompts = [
        build_prompt(memo, prefix + TYPED[:i], suffix, fmt="spm", budget=budget, stable_cut=True, context=CONTEXT)  # type: ignore[arg-type]
        for i in range(len(TYPED) + 1)
    ]
    kept = sum(1 for a, b in itertools.pairwise(prompts) if b.ids[: len(a.ids) - 2] == a.ids[: len(a.ids) - 2])
    grid = int((budget - 4 - len(tok.encode(BLOCK))) * 0.75) // 4
    assert kept >= len(prompts) - 2 - len(TYPED) // grid
    assert kept / (len(prompts) - 1) >= 0.95
    for p in prompts:
        n = len(p.context_ids)
        at = len(p.ids) - len(p.prefix_ids) - n
        assert p.ids[at : at + n] == tok.encode(BLOCK)  # the block sits right before the prefix
        assert len(p.ids) <= budget


def test_text_prompts_for_servers_carry_the_block(tok):
    """TGI gets text: the server's tokenizer turns it into the same ids."""
    prompt = build_prompt(tok, "def f(x):\n    return ", "\n", fmt="psm", budget=4096, context=CONTEXT)
    sent = text_prompt(prompt, tok.text_encoder())
    assert sent.text == fim_text("psm", BLOCK + prompt.prefix, prompt.suffix)
    assert sent.exact and sent.ids == prompt.ids
