"""Make the benchmark's model: a Llama (hidden 512, 8 layers, Code Llama's tokenizer) that ends lines.

Random weights never end a line or emit ``▁<EOT>``, so a benchmark with them would never
see a suggestion end. Plain SGD cannot fix that in the few CPU minutes a shared laptop-class
machine allows (5 minutes of Adam reach only about 10,000 tokens and a model that answers
every prompt with newlines), so the model is made in two steps, both on infilling examples
from the Python standard library (the benchmark's file held out):

1. count: for ~50,000 cursor positions inside a line, count which token follows which in
   "last token before the cursor, the rest of the line (sometimes one or two more lines),
   ``▁<EOT>``". The residual branches of the 8 blocks start at zero and the output layer
   (untied) is set to the log of those smoothed bigram counts, so the model starts as a
   bigram model of completions: it writes a few tokens and ends the line with ``▁<EOT>``.
2. train: Adam on the output layer, over prompts built by ``codellama_ls.prompt.fim`` (PSM and
   SPM, so the formats are exactly what the server sends), loss on the middle and
   ``▁<EOT>``, for a fixed number of steps (288). (Adam on all weights swamps the counted
   start with noise within a dozen steps.)

So the model is a bigram model of completions in a Llama's body: 58M parameters (42M with
the head tied, which counting needs untied), whose compute per token is that of any Llama
of this shape, which is all a latency benchmark needs; its suggestions are short and end
like real ones, though they do not read the context. The checkpoint is cached under
``bench/.cache/`` (git-ignored) with ``train.json``, which says how it was made; the
benchmark prints it.

    python bench/train_model.py [--steps 288] [--threads 1] [--out bench/.cache/llama-512x8-stdlib]
    python bench/train_model.py --quick    # hidden 64, 2 layers, seconds: what CI runs
    python bench/train_model.py --lines 4  # bench/.cache/llama-512x8-lines4: see below

``--lines N`` counts and trains completions that run on past the line's end to the end of the
cursor's block (a blank line or a line indented less), up to N lines, so that prompt lookup
(``bench/lookup.py``) has multi-line answers to measure; without it the draws, and so the
weights, are exactly those of the default model. A bigram model cannot count lines, though:
once it writes a newline, the next line is always the same one, so its multi-line answers
repeat that line up to maxNewTokens rather than end with ``▁<EOT>``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import sys
import sysconfig
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codellama_ls.prompt.fim import build_prompt  # noqa: E402
from codellama_ls.prompt.memo import MemoTokenizer  # noqa: E402
from codellama_ls.prompt.tokens import CodeTokenizer  # noqa: E402

# Where made models and results go; CODELLAMA_BENCH_CACHE moves it (the bench tests use an empty one,
# so that a cached model can never hide a broken step of making it).
CACHE = Path(os.environ.get("CODELLAMA_BENCH_CACHE") or Path(__file__).resolve().parent / ".cache")
DEFAULT_OUT = CACHE / "llama-512x8-stdlib"
QUICK_OUT = CACHE / "llama-quick"
TOKENIZER_DIR = ROOT.parent / "shared" / "codellama-tokenizer"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
HELD_OUT = "tarfile.py"  # the benchmark types into this file: never trained on
ONE_HOT = 8.0  # scale of the count-initialised embedding rows


# How the benchmark's model is made; --quick makes a small one in seconds (same steps).
# A number of steps, not minutes: the same model on a quiet machine and a loaded one (288 steps
# took 5 minutes on a quiet 2-core machine; the earlier 5-minute budget gave 54 on a loaded one).
FULL = {"hidden": 512, "layers": 8, "steps": 288, "examples": 50_000}
QUICK = {"hidden": 64, "layers": 2, "steps": 6, "examples": 2_000}


def model_config(hidden: int = 512, layers: int = 8):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=32016,
        hidden_size=hidden,
        intermediate_size=hidden * 43 // 16,
        num_hidden_layers=layers,
        num_attention_heads=max(hidden // 64, 1),
        num_key_value_heads=max(hidden // 64, 1),
        max_position_embeddings=4096,
        rope_theta=1_000_000.0,
        tie_word_embeddings=False,  # the output layer is set from counts (see the module docstring)
        bos_token_id=1,
        eos_token_id=2,
    )


def corpus() -> list[str]:
    """The top-level modules of this Python's standard library, minus the benchmark's file."""
    root = Path(sysconfig.get_paths()["stdlib"])
    texts = []
    for path in sorted(root.glob("*.py")):
        if path.name != HELD_OUT:
            text = path.read_text(encoding="utf-8", errors="replace")
            if text.count("\n") > 20:
                texts.append(text)
    return texts


def cursor(rng: random.Random, texts: list[str], max_lines: int | None = None) -> tuple[str, str, str]:
    """A cursor inside a non-blank line: (prefix, middle, suffix); the middle runs to a line end,
    sometimes one or two lines further. With ``max_lines`` it runs on to the end of the cursor's
    block (see ``block_end``), up to that many lines in all: the model learns to go on past a newline."""
    lines = rng.choice(texts).split("\n")
    while True:
        i = rng.randrange(len(lines) - 1)
        line = lines[i]
        if line.strip():
            break
    indent = len(line) - len(line.lstrip())
    cut = rng.randint(indent, len(line) - 1)
    if max_lines is None:  # the default model's draws, unchanged: the same weights as before --lines
        extra = rng.choices((0, 1, 2), weights=(6, 3, 1))[0]
    else:
        extra = block_end(lines, i, max_lines) - i - 1
    middle = line[cut:] + "".join("\n" + more for more in lines[i + 1 : i + 1 + extra])
    prefix = "".join(more + "\n" for more in lines[:i]) + line[:cut]
    suffix = "\n" + "\n".join(lines[i + 1 + extra :])
    return prefix, middle, suffix


def block_end(lines: list[str], i: int, max_lines: int) -> int:
    """Where the block holding line ``i`` ends below it: the first blank line, or line indented less
    than ``i``, or the end of the text, but at most ``max_lines`` lines from ``i``."""
    indent = len(lines[i]) - len(lines[i].lstrip())
    end = i + 1
    while end < min(len(lines), i + max_lines):
        line = lines[end]
        if not line.strip() or len(line) - len(line.lstrip()) < indent:
            break
        end += 1
    return end


def example(
    rng: random.Random, texts: list[str], tok: MemoTokenizer, seq_len: int, max_lines: int | None = None
) -> tuple[list[int], int]:
    """(prompt ids + middle ids + ▁<EOT>, where the middle starts)."""
    prefix, middle, suffix = cursor(rng, texts, max_lines)
    mid_ids = tok.encode_infill(middle)
    ended = len(mid_ids) <= seq_len // 3
    mid_ids = mid_ids[: seq_len // 3]
    fmt = rng.choice(("psm", "spm"))
    budget = seq_len - len(mid_ids) - 1
    prompt = build_prompt(tok, prefix, suffix, fmt=fmt, budget=budget, prefix_share=0.7)  # type: ignore[arg-type]
    assert tok.special.eot is not None
    return prompt.ids + mid_ids + ([tok.special.eot] if ended else []), len(prompt.ids)


def count_init(
    model, tok: MemoTokenizer, texts: list[str], rng: random.Random, examples: int, max_lines: int | None = None
) -> int:
    """Start as a bigram model of completions (step 1 of the module docstring); returns pairs counted."""
    import torch

    eot = tok.special.eot
    newline = tok.newline
    assert eot is not None and newline is not None
    pairs: Counter[tuple[int, int]] = Counter()
    for _ in range(examples):
        prefix, middle, _ = cursor(rng, texts, max_lines)
        line = prefix[prefix.rfind("\n") + 1 :]
        before = tok.encode_infill(line)[-1:] or [newline]
        chain = before + tok.encode_infill(middle) + [eot]
        pairs.update(itertools.pairwise(chain))
    hidden, vocab = model.config.hidden_size, model.config.vocab_size
    contexts: Counter[int] = Counter()
    for (x, _), n in pairs.items():
        contexts[x] += n
    rows = {x: i for i, (x, _) in enumerate(contexts.most_common(hidden - 1))}
    other = hidden - 1  # every rarer context shares the last row
    counts = torch.zeros(hidden, vocab)
    for (x, y), n in pairs.items():
        # a token after itself counts a fifth: greedy decoding of a bigram model loops on "9" or "_"
        counts[rows.get(x, other), y] += n if x != y else n / 5
    unigram = (counts.sum(0) + 1e-3) / (counts.sum() + 1e-3 * vocab)
    probs = (counts + 2.0 * unigram) / (counts.sum(1, keepdim=True) + 2.0)
    with torch.no_grad():
        # one-hot rows, large next to what a few training steps add to the residual stream
        embed = torch.zeros(vocab, hidden)
        embed[:, other] = ONE_HOT
        for x, i in rows.items():
            embed[x].zero_()
            embed[x, i] = ONE_HOT
        model.model.embed_tokens.weight.copy_(embed)
        # RMSNorm turns a one-hot row into sqrt(hidden) times a unit vector
        model.lm_head.weight.copy_(probs.log().T / hidden**0.5)
        for layer in model.model.layers:  # blocks start as the identity
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
    return sum(pairs.values())


def train(
    out: Path,
    steps: int = FULL["steps"],
    threads: int = 1,
    seq_len: int = 96,
    batch: int = 8,
    lr: float = 1e-4,
    seed: int = 0,
    hidden: int = FULL["hidden"],
    layers: int = FULL["layers"],
    examples: int = FULL["examples"],
    lines: int | None = None,
) -> dict:
    import torch
    from transformers import LlamaForCausalLM

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    tok = MemoTokenizer(CodeTokenizer.load(str(TOKENIZER_DIR)))
    texts = corpus()
    shape = f"hidden {hidden}, {layers} layers"
    model = LlamaForCausalLM(model_config(hidden, layers))
    params = sum(p.numel() for p in model.parameters())
    start = time.monotonic()
    counted = count_init(model, tok, texts, rng, examples=examples, max_lines=lines)
    counting = time.monotonic() - start
    print(f"{params / 1e6:.1f}M parameters; counted {counted} token pairs in {counting:.0f}s", flush=True)
    # Only the output layer trains: a few minutes of Adam on the whole model would swamp the
    # counted start with noise before it could learn anything from context.
    model.requires_grad_(False)
    model.lm_head.requires_grad_(True)
    optimizer = torch.optim.AdamW(model.lm_head.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    total_steps, steps, tokens = steps, 0, 0
    losses: list[float] = []
    while steps < total_steps:
        rows = [example(rng, texts, tok, seq_len, lines) for _ in range(batch)]
        width = max(len(r) for r, _ in rows)
        ids = torch.full((batch, width), 2, dtype=torch.long)
        labels = torch.full((batch, width), -100, dtype=torch.long)
        for n, (row, middle) in enumerate(rows):
            ids[n, : len(row)] = torch.tensor(row)
            labels[n, middle : len(row)] = torch.tensor(row[middle:])  # the completion and its ▁<EOT>
        for group in optimizer.param_groups:
            group["lr"] = lr * min(1.0, (steps + 1) / 5)
        with torch.no_grad():
            hidden = model.model(input_ids=ids).last_hidden_state[:, :-1]
        targets = labels[:, 1:]
        keep = targets != -100
        loss = torch.nn.functional.cross_entropy(model.lm_head(hidden[keep]), targets[keep])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        steps += 1
        tokens += sum(len(r) for r, _ in rows)
        losses.append(loss.item())
        print(f"step {steps:4d}  loss {losses[-1]:.3f}  {time.monotonic() - start:6.0f}s", flush=True)
    elapsed = (time.monotonic() - start) / 60
    span = f", completions to the end of the block, up to {lines} lines" if lines else ""
    info = {
        "weights": f"Llama {params / 1e6:.0f}M ({shape}, untied head): stdlib infilling bigram counts "
        f"({counted} pairs{span}), then {steps} Adam steps of its output layer on {tokens} tokens of PSM+SPM infilling "
        f"({elapsed:.1f} min, {threads} thread(s))",
        "parameters": params,
        "counted_pairs": counted,
        "steps": steps,
        "tokens": tokens,
        "minutes": round(elapsed, 2),
        "threads": threads,
        "final_loss": round(sum(losses[-10:]) / max(len(losses[-10:]), 1), 3),
        "held_out": HELD_OUT,
        **({"lines": lines} if lines else {}),
        "python": sys.version.split()[0],
    }
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    for name in TOKENIZER_FILES:
        shutil.copy(TOKENIZER_DIR / name, out / name)
    (out / "train.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def lines_out(lines: int, *, quick: bool = False) -> Path:
    """Where the model made with ``--lines`` goes: named by how it is made, beside the default one."""
    return CACHE / f"llama-{'quick' if quick else '512x8'}-lines{lines}"


def ensure_model(out: Path = DEFAULT_OUT, *, quick: bool = False, lines: int | None = None) -> dict:
    """The cached checkpoint's train.json, training it first (with the defaults) when it is missing."""
    info = out / "train.json"
    if info.is_file() and (out / "config.json").is_file():
        return json.loads(info.read_text())
    how = (" --quick" if quick else "") + (f" --lines {lines}" if lines else "")
    print(f"no model in {out}: making it first (bench/train_model.py{how})", flush=True)
    return train(out, **(QUICK if quick else FULL), lines=lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="default: bench/.cache/llama-512x8-stdlib")
    parser.add_argument("--quick", action="store_true", help="a small model in seconds (hidden 64, 2 layers)")
    parser.add_argument("--steps", type=int, default=None, help="Adam steps of the output layer (default 288; 6 quick)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seq-len", type=int, default=96)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--lines",
        type=int,
        default=None,
        help="completions run on to the end of the block, up to N lines (default: the line's end, "
        "sometimes 1-2 lines more); out: bench/.cache/llama-512x8-linesN",
    )
    args = parser.parse_args()
    shape = dict(QUICK if args.quick else FULL)
    if args.steps is not None:
        shape["steps"] = args.steps
    if args.lines is not None and args.lines < 1:
        parser.error("--lines must be at least 1")
    out = args.out or (
        lines_out(args.lines, quick=args.quick) if args.lines else QUICK_OUT if args.quick else DEFAULT_OUT
    )
    info = train(
        out,
        threads=args.threads,
        seq_len=args.seq_len,
        batch=args.batch,
        lr=args.lr,
        seed=args.seed,
        lines=args.lines,
        **shape,
    )
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
