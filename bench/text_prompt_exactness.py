"""How many text prompts re-tokenize to the reference ids, before and after the fix.

    python bench/text_prompt_exactness.py [../shared/fim-vectors/codellama-infill.jsonl] [tokenizer folder]
    python bench/text_prompt_exactness.py --quick    # every tenth case (CI)

"Before" sends the plain text form; "after" is what the `tgi` engine sends
(:func:`codellama_ls.prompt.text.text_prompt`). Each text is tokenized the way TGI does it
(the model's tokenizer.json, BOS added) and compared with the vectors' psm/spm ids.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout: use its codellama_ls

from codellama_ls.prompt.fim import Prompt  # noqa: E402
from codellama_ls.prompt.text import fim_text, harm, text_prompt  # noqa: E402
from codellama_ls.prompt.tokens import CodeTokenizer  # noqa: E402

VECTORS = HERE.parents[1] / "shared" / "fim-vectors" / "codellama-infill.jsonl"
TOKENIZER = HERE.parents[1] / "shared" / "codellama-tokenizer"


def measure(vectors: Path = VECTORS, tokenizer: Path = TOKENIZER, every: int = 1) -> dict[str, dict[str, float]]:
    tok = CodeTokenizer.load(str(tokenizer))
    encode = tok.text_encoder()
    sp = tok.special
    markers = (sp.pre, sp.suf, sp.mid)
    lines = [line for line in vectors.read_text(encoding="utf-8").splitlines() if line.strip()]
    cases = [json.loads(line) for line in lines[::every]]
    out: dict[str, dict[str, float]] = {}
    for fmt in ("psm", "spm"):
        row = {"cases": len(cases), "exact_before": 0, "exact_after": 0, "markers_before": 0, "markers_after": 0}
        diff_before = diff_after = inexact = 0
        for case in cases:
            ref = case[f"{fmt}_ids"]
            prompt = Prompt(fmt, case["prefix"], case["suffix"], ref, False)
            before = encode(fim_text(fmt, case["prefix"], case["suffix"]))
            after = text_prompt(prompt, encode, markers).ids
            lost_b, d_b = harm(before, ref, markers)
            lost_a, d_a = harm(after, ref, markers)
            row["exact_before"] += before == ref
            row["exact_after"] += after == ref
            row["markers_before"] += lost_b == 0
            row["markers_after"] += lost_a == 0
            if before != ref:
                inexact += 1
                diff_before += d_b
                diff_after += d_a
        row["mean_diff_before"] = round(diff_before / inexact, 2) if inexact else 0.0
        row["mean_diff_after"] = round(diff_after / inexact, 2) if inexact else 0.0
        out[fmt] = row
    return out


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vectors", nargs="?", type=Path, default=VECTORS)
    parser.add_argument("tokenizer", nargs="?", type=Path, default=TOKENIZER)
    parser.add_argument("--quick", action="store_true", help="every tenth case")
    args = parser.parse_args(argv)
    result = measure(args.vectors, args.tokenizer, every=10 if args.quick else 1)
    print(
        "| format | cases | exact before | exact after | all markers before | all markers after "
        "| tokens off (inexact cases) before → after |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for fmt, r in result.items():
        print(
            f"| {fmt} | {r['cases']} | {r['exact_before']} | {r['exact_after']} | {r['markers_before']} "
            f"| {r['markers_after']} | {r['mean_diff_before']} → {r['mean_diff_after']} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
