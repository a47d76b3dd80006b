"""Run llama.cpp's ``convert_hf_to_gguf.py`` on a folder that has ``tokenizer.json`` but no ``tokenizer.model``.

Code Llama's GGUFs are normally converted from Meta's sentencepiece ``tokenizer.model``, whose
piece scores decide llama.cpp's merge order. ``../shared`` has only ``tokenizer.json``; from it
the converter writes the score -1000 for every piece, and llama.cpp would then merge runs of
spaces (and more) in another order than Code Llama's tokenizer. Hugging Face ordered the BPE
merges of ``tokenizer.json`` by those sentencepiece scores, so a piece's score is given back as
minus the rank of the merge that makes it. Usage: ``python gguf_convert.py CONVERT_SCRIPT ARGS...``
(the converter's own arguments; the model folder first).
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path


def main() -> None:
    script, model = sys.argv[1], Path(sys.argv[2])
    spec = json.loads((model / "tokenizer.json").read_text(encoding="utf-8"))["model"]
    vocab: dict[str, int] = spec["vocab"]
    score: dict[int, float] = {}
    for rank, merge in enumerate(spec["merges"]):
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        token = vocab.get(left + right)
        if token is not None and token not in score:
            score[token] = -float(rank)

    import gguf.vocab  # the vendored gguf-py, on PYTHONPATH

    def get_token_score(self: object, token_id: int) -> float:
        return score.get(token_id, 0.0)

    gguf.vocab.LlamaHfVocab.get_token_score = get_token_score  # type: ignore[method-assign]
    sys.argv = [script, *sys.argv[2:]]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
