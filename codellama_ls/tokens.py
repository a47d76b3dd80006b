"""Code Llama's tokenizer, used the way Meta's reference infilling code uses sentencepiece.

transformers' ``CodeLlamaTokenizer``/``LlamaTokenizer`` give ids that differ from the
reference (an extra space before the suffix, a lost leading ``▁``), so prompts are built
here from the model's own ``tokenizer.json`` through the ``tokenizers`` library:

- ``encode``: sentencepiece semantics, a leading ``▁`` is implied;
- ``encode_infill``: no implied leading ``▁`` (Meta: encode a sentinel in front, drop it);
- ``decode``: no stripping of a leading space, so a generated middle keeps its first space.

Added tokens (``<s>``, ``</s>``, ``<unk>``) are removed from the matcher, so the text
``<s>`` inside code is encoded as ordinary characters, as sentencepiece does.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

PRE, SUF, MID, EOT = "▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"
TOKENIZER_FILE = "tokenizer.json"


class TokenizerNotFound(FileNotFoundError):
    """No tokenizer.json could be found for the configured model."""


@dataclass(frozen=True)
class SpecialIds:
    bos: int | None
    eos: int | None
    pre: int | None
    suf: int | None
    mid: int | None
    eot: int | None

    @property
    def infill(self) -> bool:
        return None not in (self.pre, self.suf, self.mid, self.eot)


class CodeTokenizer:
    """Exact encode/decode for prompts; built from a ``tokenizer.json`` document."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        vocab: dict[str, int] = spec.get("model", {}).get("vocab", {})
        added: dict[str, int] = {t["content"]: t["id"] for t in spec.get("added_tokens", [])}

        def piece(name: str) -> int | None:
            return vocab.get(name, added.get(name))

        self.special = SpecialIds(
            bos=piece("<s>"), eos=piece("</s>"), pre=piece(PRE), suf=piece(SUF), mid=piece(MID), eot=piece(EOT)
        )
        plain = dict(spec)
        plain["added_tokens"] = []
        plain["post_processor"] = None
        self._plain = _uncached(Tokenizer.from_str(json.dumps(plain)))

        infill = dict(plain)
        infill["normalizer"] = _without_prepend(spec.get("normalizer"))
        self._infill = _uncached(Tokenizer.from_str(json.dumps(infill)))
        self._has_prepend = infill["normalizer"] != spec.get("normalizer")

        decoding = dict(plain)
        decoding["decoder"] = _without_strip(spec.get("decoder"))
        self._decoder = _uncached(Tokenizer.from_str(json.dumps(decoding)))
        self.vocab_size = self._plain.get_vocab_size()
        # No token covers more characters than its longest piece: bounds what can fit a budget.
        self.max_token_chars = max((len(p) for p in [*vocab, *added]), default=1)

    # -- loading -------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> CodeTokenizer:
        with open(path, encoding="utf-8") as fh:
            return cls(json.load(fh))

    @classmethod
    def load(cls, name_or_path: str, revision: str | None = None) -> CodeTokenizer:
        """From a local folder, else from the Hugging Face cache/hub (``HF_HUB_OFFLINE`` honoured)."""
        local = Path(name_or_path).expanduser()
        if local.is_dir():
            file = local / TOKENIZER_FILE
            if not file.is_file():
                raise TokenizerNotFound(f"{local} has no {TOKENIZER_FILE}")
            return cls.from_file(file)
        if local.is_file() and local.name.endswith(".json"):
            return cls.from_file(local)
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

        try:
            return cls.from_file(hf_hub_download(name_or_path, TOKENIZER_FILE, revision=revision))
        except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as exc:
            raise TokenizerNotFound(
                f"no {TOKENIZER_FILE} for '{name_or_path}': not a local folder and not in the Hugging Face "
                f"cache ({type(exc).__name__}). Download it with `hf download {name_or_path}` or set "
                "`model` to a local folder."
            ) from exc

    # -- encoding ------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Plain encoding without special tokens; a leading ``▁`` is implied."""
        if not text:
            return []
        return self._plain.encode(text, add_special_tokens=False).ids

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        enc = self._plain.encode(text, add_special_tokens=False)
        return enc.ids, enc.offsets

    def encode_infill(self, text: str) -> list[int]:
        """Encoding without the implied leading ``▁``, for text that continues other text."""
        if not text:
            return []
        return self._infill.encode(text, add_special_tokens=False).ids

    def encode_infill_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        enc = self._infill.encode(text, add_special_tokens=False)
        return enc.ids, enc.offsets

    def decode(self, ids: list[int]) -> str:
        """Decode generated ids; a leading space is kept (it belongs to the suggestion)."""
        return self._decoder.decode(ids, skip_special_tokens=False)

    def id_to_piece(self, token_id: int) -> str | None:
        return self._plain.id_to_token(token_id)


def _uncached(tokenizer: Tokenizer) -> Tokenizer:
    """Turn off the BPE word cache.

    Code Llama's tokenizer has no pre-tokenizer, so each text (a prompt's prefix or suffix) is one
    "word": the cache (10,000 entries of any text under 256 characters) never hits between
    keystrokes, it only grows the server's memory by up to ~100 MB in a long session.
    """
    resize = getattr(tokenizer.model, "_resize_cache", None)
    if resize is not None:
        resize(0)
    return tokenizer


def _without_prepend(normalizer: dict[str, Any] | None) -> dict[str, Any] | None:
    """The normalizer minus sentencepiece's implied leading ``▁``."""
    if not normalizer:
        return normalizer
    if normalizer.get("type") == "Prepend":
        return None
    if normalizer.get("type") == "Sequence":
        kept = [n for n in normalizer["normalizers"] if n.get("type") != "Prepend"]
        return {"type": "Sequence", "normalizers": kept}
    return normalizer


def _without_strip(decoder: dict[str, Any] | None) -> dict[str, Any] | None:
    if not decoder:
        return decoder
    if decoder.get("type") == "Sequence":
        kept = [d for d in decoder["decoders"] if d.get("type") != "Strip"]
        return {"type": "Sequence", "decoders": kept}
    return decoder
