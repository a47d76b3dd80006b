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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from tokenizers import Tokenizer

PRE, SUF, MID, EOT = "▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"
TOKENIZER_FILE = "tokenizer.json"
NEWLINE_PIECE = "<0x0A>"

Offsets = list[tuple[int, int]]
# How a model server turns prompt text into ids (BOS included), to check a text prompt against.
Encoder = Callable[[str], list[int]]


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


@runtime_checkable
class PromptTokenizer(Protocol):
    """What prompt building needs from a tokenizer.

    Implemented by :class:`CodeTokenizer` (the model's ``tokenizer.json``), the line memo
    (``token_memo.MemoTokenizer``), a server's ``/tokenize`` (``engines/server_tokenizer.py``)
    and the character estimate used when no tokenizer can be had. Offsets are character
    offsets into the encoded text.
    """

    @property
    def special(self) -> SpecialIds:
        """BOS, EOS and the infilling pieces (None where the tokenizer lacks one)."""
        ...

    @property
    def exact(self) -> bool:
        """True when the ids are the model's own; False for an estimate (budgets only, never sent)."""
        ...

    @property
    def max_token_chars(self) -> int:
        """No token covers more characters than this: bounds what can fit a budget."""
        ...

    @property
    def newline_id(self) -> int | None:
        """The id of ``\\n`` when tokenization provably splits at newlines (a line memo is exact), else None."""
        ...

    def encode(self, text: str) -> list[int]:
        """Sentencepiece semantics: a leading ``▁`` is implied."""
        ...

    def encode_with_offsets(self, text: str) -> tuple[list[int], Offsets]: ...

    def encode_infill(self, text: str) -> list[int]:
        """No implied leading ``▁``: for text that continues other text (the suffix)."""
        ...

    def encode_infill_with_offsets(self, text: str) -> tuple[list[int], Offsets]: ...

    def text_encoder(self) -> Encoder | None:
        """How the model's server tokenizes a text prompt (BOS included), or None when unknown."""
        ...


class CodeTokenizer:
    """Exact encode/decode for prompts; built from a ``tokenizer.json`` document."""

    exact = True

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        vocab: dict[str, int] = spec.get("model", {}).get("vocab", {})
        added: dict[str, int] = {t["content"]: t["id"] for t in spec.get("added_tokens", [])}

        def piece(name: str) -> int | None:
            found = vocab.get(name, added.get(name))
            return found if isinstance(found, int) else None

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
        self.newline_id = _newline_split(spec)
        self._server: Tokenizer | None = None

    # -- loading -------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> CodeTokenizer:
        with open(path, encoding="utf-8") as fh:
            return cls(json.load(fh))

    @classmethod
    def load(cls, name_or_path: str, revision: str | None = None, *, cache_only: bool = False) -> CodeTokenizer:
        """From a local folder, else from the Hugging Face cache/hub (``HF_HUB_OFFLINE`` honoured).

        ``cache_only`` never touches the network: for model ids the user did not name (a
        remote server's), where asking the hub would send the id somewhere unexpected.
        """
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

        from codellama_ls import hub

        if not cache_only:
            try:
                hub.check_download(name_or_path, TOKENIZER_FILE, revision)
            except hub.HubUnreachable as exc:
                raise TokenizerNotFound(str(exc)) from exc
        try:
            return cls.from_file(
                hf_hub_download(name_or_path, TOKENIZER_FILE, revision=revision, local_files_only=cache_only)
            )
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

    def text_encoder(self) -> Encoder:
        """How a server that loads this ``tokenizer.json`` (TGI, vLLM) encodes text: BOS added, added
        tokens matched. Built on first use (about a second), then kept."""
        if self._server is None:
            self._server = Tokenizer.from_str(json.dumps(self.spec))
        server = self._server
        return lambda text: server.encode(text, add_special_tokens=True).ids


def _newline_split(spec: dict[str, Any]) -> int | None:
    """The newline's id when tokenization provably splits at newlines, else None.

    A BPE model with byte fallback and no pre-tokenizer, none of whose pieces contains a
    newline, always encodes ``\\n`` as the byte piece ``<0x0A>``: no merge crosses a line end.
    """
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or spec.get("pre_tokenizer") is not None:
        return None
    vocab = model.get("vocab") or {}
    added = [t.get("content", "") for t in spec.get("added_tokens", [])]
    if not model.get("byte_fallback") or any("\n" in piece for piece in [*vocab, *added]):
        return None
    newline = vocab.get(NEWLINE_PIECE)
    return newline if isinstance(newline, int) else None


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
