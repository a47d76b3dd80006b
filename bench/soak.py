"""Soak: many documents, rapid edits and completion requests at once, round after round.

Checks what an editor user would notice after a long session: every request is answered (a
result, an empty result, or RequestCancelled), no asyncio task is left behind, and resident
memory stops growing once the caches are warm.

    python bench/soak.py                       # 20 documents, 1,000 requests in 5 rounds, tiny model
    python bench/soak.py --model PATH --requests 5000 --rounds 10
    python bench/soak.py --quick               # 5 documents, 100 requests in 2 rounds (CI)

Without ``--model`` a tiny random Llama with the real Code Llama tokenizer is written to
``bench/.cache/tiny-llama`` (needs ``../shared/codellama-tokenizer``). ``tests/e2e/test_robust_load.py``
runs a short version of the same rounds.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `tests` importable
    sys.path.insert(0, str(ROOT))

from tests.support.rawlsp import RawServer  # noqa: E402

REQUEST_CANCELLED = -32800
TYPED = "abcdefghijklmnopqrstuvwxyz_ (),.=+1234567890"


@dataclass
class Round:
    requests: int = 0
    results: int = 0  # answered with a suggestion
    empty: int = 0  # answered with no suggestion (superseded, debounced away, nothing useful)
    cancelled: int = 0  # answered RequestCancelled after $/cancelRequest
    errors: int = 0  # any other error answer: a defect
    unanswered: int = 0  # no answer at all: a defect
    tasks_idle: int = 0
    tasks_after: int = 0
    pending_after: int = 0  # futures pygls still holds for requests and notifications
    rss_mb: float = 0.0
    generations: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return 0.0
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(q) - 1]


class Soak:
    """Drives one server: ``docs`` open documents, each being typed into at its last line."""

    def __init__(self, server: RawServer, docs: int, seed: int = 0) -> None:
        self.server = server
        self.rng = random.Random(seed)
        self.uris = [f"file:///soak/module_{i}.py" for i in range(docs)]
        self.versions: dict[str, int] = {}
        self.typed: dict[str, str] = {}
        for uri in self.uris:
            self._open(uri)

    def _open(self, uri: str) -> None:
        name = uri.rsplit("/", 1)[1].removesuffix(".py")
        text = f'"""Module {name}."""\n\n\ndef compute_{name}(values):\n    total = 0\n    return '
        self.server.open(uri, text, version=1)
        self.versions[uri], self.typed[uri] = 1, ""

    def idle_tasks(self, settle_s: float = 10.0) -> int:
        """Tasks once nothing is pending: the smallest count seen while waiting to settle."""
        deadline = time.monotonic() + settle_s
        seen = self.server.status()["tasks"]
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.server.status()["tasks"]
            if now == seen:
                return now
            seen = min(seen, now)
        return seen

    def run_round(self, requests: int, *, cancel_every: int = 10, timeout_s: float = 120) -> Round:
        server, rng = self.server, self.rng
        out = Round(requests=requests, tasks_idle=self.idle_tasks())
        sent: dict[str, float] = {}
        # Close and reopen one document per round: its pending requests must still be answered.
        churn = rng.choice(self.uris)
        for i in range(requests):
            uri = rng.choice(self.uris)
            if uri == churn and i == requests // 2:
                server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
                self._open(uri)
            # Type at the end of the line; past 40 characters, delete some again, so that every
            # round does the same amount of work and memory can be compared between rounds.
            col = 11 + len(self.typed[uri])
            self.versions[uri] += 1
            if len(self.typed[uri]) >= 40 or (self.typed[uri] and rng.random() < 0.2):
                self.typed[uri] = self.typed[uri][:-1]
                change = {"range": _range(5, col - 1, 5, col), "text": ""}
                col -= 1
            else:
                ch = rng.choice(TYPED)
                self.typed[uri] += ch
                change = {"range": _range(5, col, 5, col), "text": ch}
                col += 1
            server.change(uri, self.versions[uri], [change])
            pos = {"line": 5, "character": col}
            msg_id = f"r{len(sent)}-{rng.random():.6f}"
            if i % 2:
                params = {"textDocument": {"uri": uri}, "position": pos}
                server.send_request("textDocument/completion", params, msg_id)
            else:
                params = {"textDocument": {"uri": uri}, "position": pos, "context": {"triggerKind": 2}}
                server.send_request("textDocument/inlineCompletion", params, msg_id)
            sent[msg_id] = time.monotonic()
            if i % cancel_every == cancel_every - 1:
                server.notify("$/cancelRequest", {"id": rng.choice(list(sent)[-3:])})  # likely still pending
            if rng.random() < 0.3:
                time.sleep(rng.random() * 0.01)  # bursts and pauses, like typing
        deadline = time.monotonic() + timeout_s
        for msg_id, started in sent.items():
            try:
                answer = server.response(msg_id, max(deadline - time.monotonic(), 0.1))
            except TimeoutError:
                out.unanswered += 1
                continue
            out.latencies_ms.append((server.answered_at.get(msg_id, time.monotonic()) - started) * 1000)
            if "error" in answer:
                if answer["error"].get("code") == REQUEST_CANCELLED:
                    out.cancelled += 1
                else:
                    out.errors += 1
                    print(f"error answer: {answer['error']}", file=sys.stderr)
            elif answer.get("result") and answer["result"].get("items"):
                out.results += 1
            else:
                out.empty += 1
        out.tasks_after = self.idle_tasks()
        status = server.status()
        out.pending_after = status.get("pendingRequests", 0)
        out.rss_mb = (status.get("rssBytes") or 0) / 2**20
        out.generations = status["generations"]
        return out


def _range(sl: int, sc: int, el: int, ec: int) -> dict:
    return {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}}


def table(rounds: list[Round]) -> str:
    head = (
        f"{'round':>5} {'requests':>8} {'results':>7} {'empty':>6} {'cancelled':>9} {'errors':>6} "
        f"{'unanswered':>10} {'tasks idle→after':>16} {'pending':>7} {'RSS MB':>8} {'generations':>11} "
        f"{'p50 ms':>7} {'p95 ms':>7}"
    )
    rows = [head, "-" * len(head)]
    for n, r in enumerate(rounds, 1):
        rows.append(
            f"{n:>5} {r.requests:>8} {r.results:>7} {r.empty:>6} {r.cancelled:>9} {r.errors:>6} "
            f"{r.unanswered:>10} {f'{r.tasks_idle}→{r.tasks_after}':>16} {r.pending_after:>7} {r.rss_mb:>8.1f} "
            f"{r.generations:>11} "
            f"{r.percentile(50):>7.0f} {r.percentile(95):>7.0f}"
        )
    return "\n".join(rows)


def summary(rounds: list[Round]) -> list[str]:
    total = sum(r.requests for r in rounds)
    answered = total - sum(r.unanswered for r in rounds)
    lines = [
        f"answered: {answered}/{total} (results {sum(r.results for r in rounds)}, empty "
        f"{sum(r.empty for r in rounds)}, cancelled {sum(r.cancelled for r in rounds)}, "
        f"errors {sum(r.errors for r in rounds)})",
        f"asyncio tasks back to the first idle count ({rounds[0].tasks_idle}) after every round: "
        f"{all(r.tasks_after <= rounds[0].tasks_idle for r in rounds)}; pending futures after every round: "
        f"{max(r.pending_after for r in rounds)}",
    ]
    if len(rounds) >= 2:
        growth = rounds[-1].rss_mb - rounds[1].rss_mb
        lines.append(f"RSS: {rounds[0].rss_mb:.1f} MB after round 1, {growth:+.1f} MB from round 2 to the last")
    return lines


def tiny_model() -> Path:
    from tests.support.tiny_model import SKIP_REASON, have_tokenizer, write_tiny_model

    out = Path(os.environ.get("CODELLAMA_BENCH_CACHE") or ROOT / "bench" / ".cache") / "tiny-llama"
    if not (out / "config.json").is_file():
        if not have_tokenizer():
            raise SystemExit(SKIP_REASON)
        write_tiny_model(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model folder (default: a tiny random Llama in bench/.cache)")
    parser.add_argument("--quick", action="store_true", help="5 documents, 100 requests in 2 rounds")
    parser.add_argument("--docs", type=int, default=None, help="default 20")
    parser.add_argument("--requests", type=int, default=None, help="in total, spread over the rounds (1000)")
    parser.add_argument("--rounds", type=int, default=None, help="default 5")
    parser.add_argument("--debounce-ms", type=int, default=30)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-file", help="server log (DEBUG)")
    args = parser.parse_args(argv)
    args.docs = args.docs or (5 if args.quick else 20)
    args.requests = args.requests or (100 if args.quick else 1000)
    args.rounds = args.rounds or (2 if args.quick else 5)

    model = args.model or str(tiny_model())
    log = ["--log-level", "DEBUG", "--log-file", args.log_file] if args.log_file else ["--log-level", "WARNING"]
    opts = {"model": model, "debounceMs": args.debounce_ms, "maxNewTokens": args.max_new_tokens}
    rounds: list[Round] = []
    started = time.monotonic()
    with RawServer(log) as server:
        server.initialize(opts)
        state = server.wait_state({"ready", "failed"}, timeout=600)
        if state["state"] != "ready":
            raise SystemExit(f"model did not load: {state['error']}")
        soak = Soak(server, args.docs, args.seed)
        per_round = max(args.requests // args.rounds, 1)
        for n in range(args.rounds):
            rounds.append(soak.run_round(per_round))
            print(f"round {n + 1}/{args.rounds} done", file=sys.stderr)
        code = server.shutdown()
    print(f"codellama-ls soak: {args.docs} documents, {per_round * args.rounds} requests, model {model}")
    print(table(rounds))
    print("\n".join(summary(rounds)))
    print(f"wall time {time.monotonic() - started:.0f} s, exit code {code}")
    idle = rounds[0].tasks_idle
    ok = all(r.unanswered == 0 and r.errors == 0 and r.tasks_after <= idle and not r.pending_after for r in rounds)
    ok = ok and code == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
