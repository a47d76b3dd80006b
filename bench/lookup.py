"""Prompt lookup on multi-line answers: plain greedy against prompt-lookup decoding, in one command.

``bench/latency.py`` measures prompt lookup on its keystroke session's model calls, but the
default model's answers are 2-3 tokens on one line, and issue 21's goal is about multi-line
answers. This needs no LSP session: it draws cursors in the held-out file (``tarfile.py``)
where the code removed after the cursor spans several lines (the rest of the line and of its
block, up to ``--lines`` lines, the rest of the file kept as the suffix: someone writing a
block in the middle of a file), the same draw as ``train_model.py --lines`` trains on, and
builds SPM prompts as the server does. The local engine decodes each greedily with prompt
lookup off and on (``latency.compare_lookup``: the prompt is warmed first, so the time is
decoding; the text must be identical, or the command fails).

The bench model is a bigram model (``train_model.py``): it cannot count lines, so its
multi-line answers repeat one line up to maxNewTokens, and lookup drafts them from its own
earlier lines. So the table also times one forward pass of 1 + k tokens against one of 1, and
replays the engine's draft loop on token ids (no model): on the model's answers, where it must
give the engine's counts and the measured speed-up, and on the code removed at each cursor,
which says what lookup would gain for a model that wrote the file's real code there.

    python bench/lookup.py          # makes bench/.cache/llama-512x8-lines4 first if missing (~6 min)
    python bench/lookup.py --quick  # a tiny model and 6 prompts: every part in seconds (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency import compare_lookup, cpu_name, lookup_report, replay_engine
from train_model import CACHE, HELD_OUT, cursor, ensure_model, lines_out

from codellama_ls.engines.local import DRAFT_START, DRAFT_TOKENS, next_draft_width
from codellama_ls.engines.local import lookup as draft
from codellama_ls.prompt.fim import build_prompt

WIDTHS = range(1, DRAFT_TOKENS + 2)  # forward-pass widths: the picked token and 0 to DRAFT_TOKENS drafts


def cursors(count: int, max_lines: int, seed: int) -> list[tuple[str, str, str]]:
    """``count`` distinct cursors (prefix, removed code, suffix) in the held-out file whose removed
    code spans at least two lines."""
    text = (Path(sysconfig.get_paths()["stdlib"]) / HELD_OUT).read_text(encoding="utf-8")
    rng = random.Random(seed)
    out: dict[str, tuple[str, str, str]] = {}
    for _ in range(count * 200):
        if len(out) >= count:
            break
        prefix, middle, suffix = cursor(rng, [text], max_lines)
        if "\n" in middle:
            out.setdefault(prefix, (prefix, middle, suffix))
    return list(out.values())


def replay_drafts(prompt: list[int], answer: list[int], ended: bool, max_new: int) -> dict[str, Any]:
    """The engine's prompt-lookup loop (``LocalEngine._decode_lookup``) on token ids, no model: the
    drafts it would propose and keep if greedy decoding wrote ``answer`` (then ``▁<EOT>`` when
    ``ended``), and the widths of its forward passes, against plain decoding's."""
    end = -1  # stands for ▁<EOT>: never in a prompt, so never drafted
    target = answer[:max_new] + ([end] if ended and len(answer) < max_new else [])
    seq, taken, widths, drafted, accepted = list(prompt), 0, [], 0, 0
    width = DRAFT_START
    while taken < len(target) and target[taken] != end:
        seq.append(target[taken])  # picked from the logits before
        taken += 1
        if taken >= max_new or taken == len(target):
            break
        proposed = draft(seq, min(width, max_new - taken))
        drafted += len(proposed)
        widths.append(1 + len(proposed))
        if not proposed:
            continue
        kept = 0
        for token in proposed:
            if taken >= len(target) or token != target[taken]:
                break
            seq.append(token)
            taken, kept = taken + 1, kept + 1
            if taken >= max_new:
                break
        accepted += kept
        width = next_draft_width(width, len(proposed), kept)
    plain = max(len(target) - 1, 0)  # the prefill picks the first token, each pass one more (or ▁<EOT>)
    return {"tokens": taken, "drafted": drafted, "accepted": accepted, "widths": widths, "plain_passes": plain}


def replayed(prompts: list[list[int]], answers: list[tuple[list[int], bool]], costs: dict, max_new: int) -> dict:
    """:func:`replay_drafts` over many answers: drafts, tokens a pass and the decoding speed-up that
    the measured pass times predict."""
    runs = [replay_drafts(p, a, ended, max_new) for p, (a, ended) in zip(prompts, answers, strict=True)]
    lookup_ms = sum(costs[w] for r in runs for w in r["widths"])
    plain_ms = sum(r["plain_passes"] for r in runs) * costs[1]
    return {
        "count": len(runs),
        "tokens": sum(r["tokens"] for r in runs),
        "drafted": sum(r["drafted"] for r in runs),
        "accepted": sum(r["accepted"] for r in runs),
        "passes_plain": sum(r["plain_passes"] for r in runs),
        "passes_lookup": sum(len(r["widths"]) for r in runs),
        "speedup": plain_ms / lookup_ms if lookup_ms else float("nan"),
        "runs": runs,
    }


def pass_costs(engine: Any, ids: list[int], repeats: int) -> dict[int, float]:
    """Median milliseconds of one forward pass of each of ``WIDTHS`` tokens after the prompt ``ids``."""
    import statistics

    import torch

    from codellama_ls.engines.kvcache import cache_length, crop

    with torch.inference_mode():
        cache = engine.model(input_ids=torch.tensor([ids]), use_cache=True, logits_to_keep=1)[engine._cache_kw]
        done = cache_length(cache)
        costs: dict[int, float] = {}
        for width in WIDTHS:
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                engine.model(input_ids=torch.tensor([ids[-width:]]), use_cache=True, **{engine._cache_kw: cache})
                times.append((time.perf_counter() - start) * 1000)
                crop(cache, done)
            costs[width] = statistics.median(times)
    return costs


def report(info: dict, lookup: dict, costs: dict[int, float], replays: dict[str, dict], settings: dict) -> str:
    rows: list[dict[str, Any]] = lookup["rows"]
    model, removed = replays["model"], replays["removed"]
    agree = sum(
        (r["lookup"]["drafted"], r["lookup"]["accepted"]) == (run["drafted"], run["accepted"])
        for r, run in zip(rows, model["runs"], strict=True)
    )
    multi = [r for r in rows if r["lines"] > 1]
    plain_tokens = sum(r["plain"]["tokens"] for r in multi)
    plain_s = sum(r["plain"]["seconds"] for r in multi)
    lookup_s = sum(r["lookup"]["seconds"] for r in multi)
    lookup_all = sum(r["lookup"]["seconds"] for r in rows)
    measured = f"{sum(r['plain']['seconds'] for r in rows) / lookup_all:.2f} ×" if lookup_all else "–"

    def replay_row(name: str, run: dict, measured: str) -> str:
        return (
            f"| {name} | {run['count']} | {run['tokens'] / max(run['count'], 1):.1f} | {run['accepted']} / "
            f"{run['drafted']} | {run['passes_plain']} / {run['passes_lookup']} | {run['speedup']:.2f} × | {measured} |"
        )

    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores ({cpu_name()}), torch threads "
        f"{settings['threads']}, Python {platform.python_version()}; load average at the start {info['load']}.",
        f"Weights: {info['weights']}.",
        f"Prompts: {len(rows)} cursors in {HELD_OUT} whose removed code spans 2-{info['lines']} lines "
        f"(the rest of the line and of its block), SPM, prompt budget {info['budget']} tokens, no context "
        f"from other files; maxNewTokens {settings['maxNewTokens']}; {plain_tokens} tokens "
        f"of multi-line answers, {plain_s:.1f} s plain, {lookup_s:.1f} s lookup.",
        *lookup_report(lookup, "the prompts above"),
        "",
        "One forward pass after the prompt (median), by the tokens it feeds: the picked one and the drafts.",
        "",
        "| tokens | " + " | ".join(str(w) for w in costs) + " |",
        "| --- |" + " ---: |" * len(costs),
        "| time | " + " | ".join(f"{ms:.1f} ms" for ms in costs.values()) + " |",
        "| × a pass of 1 token | " + " | ".join(f"{ms / costs[1]:.2f}" for ms in costs.values()) + " |",
        "",
        "The engine's draft loop replayed on token ids, no model (`engines/local.lookup`, drafts of "
        f"{DRAFT_START} doubling to {DRAFT_TOKENS}): on the model's answers (re-tokenized) it proposes and keeps "
        f"the drafts the engine counted for {agree} of {len(rows)}; on the removed code, what a model that "
        "wrote the file's own code there would get. Predicted speed-up: decode passes timed as above.",
        "",
        "| answers replayed | count | tokens (mean) | draft tokens accepted / proposed | decode passes, plain / "
        "lookup | predicted speed-up | measured |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        replay_row("the model's answers", model, measured),
        replay_row("the removed code", removed, "–"),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="default: bench/.cache/llama-512x8-lines4 (made)")
    parser.add_argument("--quick", action="store_true", help="tiny model, 6 prompts: checks every part runs")
    parser.add_argument("--prompts", type=int, default=None, help="cursors drawn (default 40; 6 with --quick)")
    parser.add_argument("--lines", type=int, default=4, help="removed code spans up to this many lines; the model's")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default 128 (16 with --quick)")
    parser.add_argument("--seed", type=int, default=21)
    args = parser.parse_args()
    model = args.model or lines_out(args.lines, quick=args.quick)
    settings = {
        "threads": args.threads,
        "maxNewTokens": args.max_new_tokens or (16 if args.quick else 128),
        "maxPromptTokens": 2048,
    }
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    model_info = ensure_model(model, quick=args.quick, lines=None if args.model else args.lines)
    picked = cursors(args.prompts or (6 if args.quick else 40), args.lines, args.seed)
    print(f"{len(picked)} prompts, plain greedy and prompt lookup: {model}", flush=True)
    lookup = compare_lookup(model, [(prefix, suffix, "") for prefix, _, suffix in picked], settings)
    engine, tok, budget = replay_engine(model, settings)
    prompts = [build_prompt(tok, prefix, suffix, fmt="spm", budget=budget).ids for prefix, _, suffix in picked]
    costs = pass_costs(engine, prompts[0], repeats=5 if args.quick else 20)
    max_new = settings["maxNewTokens"]
    answers = [(tok.encode_infill(r["plain"]["text"]), r["plain"]["stop"] == "eot") for r in lookup["rows"]]
    replays = {
        "model": replayed(prompts, answers, costs, max_new),
        "removed": replayed(prompts, [(tok.encode_infill(middle), True) for _, middle, _ in picked], costs, max_new),
    }
    info = {"weights": model_info["weights"], "load": load, "lines": args.lines, "budget": budget}
    table = report(info, lookup, costs, replays, settings)
    print()
    print(table)
    stem = "quick-lookup" if args.quick else "lookup"
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / f"{stem}-table.md").write_text(table + "\n")
    raw = {"info": info, "settings": settings, "lookup": lookup, "pass_ms": costs, "replays": replays}
    (CACHE / f"{stem}-results.json").write_text(json.dumps(raw, indent=1))
    differ = [r for r in lookup["rows"] if r["plain"]["text"] != r["lookup"]["text"]]
    if differ:
        raise SystemExit(
            f"prompt lookup changed {len(differ)} of {len(lookup['rows'])} answers: greedy must be identical"
        )


if __name__ == "__main__":
    main()
