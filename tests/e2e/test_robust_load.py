"""Load: 20 open documents, rapid edits and completion requests from all of them at once.

A short version of ``bench/soak.py`` (which prints the same figures for 1,000 requests): every
request is answered (a result, an empty result, or RequestCancelled after ``$/cancelRequest``),
the asyncio tasks return to their idle count after each round, and resident memory does not
keep growing from round to round.
"""

from __future__ import annotations

import random

import pytest

from bench.soak import Soak, summary, table
from codellama_ls.health import rss_bytes
from codellama_ls.prompt.tokens import CodeTokenizer
from tests.support.rawlsp import RawServer

# Allocator noise between two rounds of the same work; a leak of per-request state (documents,
# tickets, futures, KV caches without a bound) grows by far more over a round of 40 requests.
RSS_SLACK_MB = 24


@pytest.mark.slow
def test_rounds_of_concurrent_requests(tiny_model):
    opts = {"model": str(tiny_model), "debounceMs": 30, "maxNewTokens": 4}
    with RawServer(["--log-level", "WARNING"]) as server:
        server.initialize(opts)
        assert server.wait_state({"ready", "failed"})["state"] == "ready"
        soak = Soak(server, docs=20, seed=1)
        rounds = [soak.run_round(40, cancel_every=7) for _ in range(3)]
        report = table(rounds) + "\n" + "\n".join(summary(rounds))
        for r in rounds:
            assert r.unanswered == 0 and r.errors == 0, report
            assert r.results + r.empty + r.cancelled == r.requests, report
            assert r.tasks_after <= rounds[0].tasks_idle, report
            assert r.pending_after == 0, report  # pygls kept every notification's future (1 KB a keystroke)
        assert sum(r.cancelled for r in rounds) > 0 and sum(r.results for r in rounds) > 0, report
        assert rounds[2].rss_mb - rounds[1].rss_mb < RSS_SLACK_MB, report
        assert server.status()["documents"] == 20
        assert server.shutdown() == 0


def test_tokenizing_distinct_texts_keeps_memory_flat(tokenizer_dir):
    """Every keystroke tokenizes new text; no per-text cache may keep it (one did: ~5 MB/1,000)."""
    tok = CodeTokenizer.load(str(tokenizer_dir))
    rng = random.Random(0)
    tok.encode("warm up")
    before = rss_bytes()
    for _ in range(4000):
        text = "def f(x):\n    return " + "".join(rng.choice("abcdefgh_ ()") for _ in range(rng.randint(10, 200)))
        tok.encode(text)
        tok.encode_infill(text)
    assert (rss_bytes() - before) / 2**20 < 8
