"""The line memo must give exactly the tokenizer's ids and offsets, or step aside."""

from __future__ import annotations

import json
import random

import pytest

from codellama_ls.prompt.memo import MemoTokenizer
from codellama_ls.prompt.tokens import CodeTokenizer
from tests.support.tiny_model import VECTORS

EDGE_CASES = ["\n", "\n\n", "a\n", "\na", " \n ", "  x\n\n  y", "é\n😀\n", "\r\n\r\n", "<s>\n</s>", "\t\n\tx = 1"]


@pytest.fixture(scope="module")
def tok(tokenizer_dir) -> CodeTokenizer:
    return CodeTokenizer.load(str(tokenizer_dir))


def _texts() -> list[str]:
    texts = list(EDGE_CASES)
    rng = random.Random(0)
    for line in VECTORS.read_text(encoding="utf-8").splitlines()[::3]:
        case = json.loads(line)
        for text in (case["prefix"], case["suffix"]):
            texts.append(text)
            start = rng.randrange(len(text) + 1)
            texts.append(text[start:])  # starts mid-line, as a trimmed window does
    return texts


def test_same_ids_and_offsets_as_the_tokenizer(tok):
    memo = MemoTokenizer(tok)
    assert memo.newline is not None, "Code Llama's tokenizer never merges a newline"
    for _ in range(2):  # the second round answers from the memo
        for text in _texts():
            assert memo.encode(text) == tok.encode(text), repr(text[:80])
            assert memo.encode_infill(text) == tok.encode_infill(text), repr(text[:80])
            ids, offsets = memo.encode_with_offsets(text)
            want_ids, want_offsets = tok.encode_with_offsets(text)
            assert (ids, [tuple(o) for o in offsets]) == (want_ids, [tuple(o) for o in want_offsets])
            ids, offsets = memo.encode_infill_with_offsets(text)
            want_ids, want_offsets = tok.encode_infill_with_offsets(text)
            assert (ids, [tuple(o) for o in offsets]) == (want_ids, [tuple(o) for o in want_offsets])


def test_memo_is_bounded(tok):
    memo = MemoTokenizer(tok, max_lines=10)
    for i in range(50):
        memo.encode(f"x = {i}\ny = {i}\n")
    assert len(memo._infill) + len(memo._first) <= 12


def test_steps_aside_when_a_piece_holds_a_newline(tok):
    spec = json.loads(json.dumps(tok.spec))
    spec["model"]["vocab"]["a\nb"] = len(spec["model"]["vocab"])
    memo = MemoTokenizer(CodeTokenizer(spec))
    assert memo.newline is None
    assert memo.encode("x = 1\ny = 2") == tok.encode("x = 1\ny = 2")
