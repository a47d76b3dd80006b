"""Prompt tokenizers for remote engines that have no ``tokenizer.json`` of the served model.

- :class:`ServerTokenizer` asks the server: TGI's ``POST /tokenize`` returns each token's id
  and its offsets in **bytes** of the UTF-8 input (the router slices the input by bytes).
  Ids are the server's own, so prompts are as exact as its tokenizer; each new text costs a
  round trip (recent answers are kept).
- :class:`EstimatingTokenizer` is the last resort (no tokenizer setting, nothing in the Hugging
  Face cache, and a server without ``/tokenize``, or a TGI without a fast tokenizer, which
  answers 404). It only measures budgets, by characters, with a conservative bound: its "ids"
  are never sent, prompts go out as text.

Both implement :class:`~codellama_ls.prompt.tokens.PromptTokenizer`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from codellama_ls.engines.base import EngineError
from codellama_ls.prompt.tokens import Encoder, Offsets, SpecialIds

# Characters per token assumed for ASCII text when no tokenizer is known. Code Llama's tokenizer
# averages 3.4 on the standard library; 2 leaves room for dense code (98 % of 180 stdlib prompts
# have more characters per token). Other characters count one token per UTF-8 byte, the most
# byte fallback can take.
ASCII_CHARS_PER_TOKEN = 2
# Code Llama's ids, assumed for the markers when no tokenizer can say (only budgets use them).
CODE_LLAMA_SPECIAL = SpecialIds(bos=1, eos=2, pre=32007, suf=32008, mid=32009, eot=32010)

Token = tuple[int, int, int]  # id, start, end (character offsets)
# POST a JSON body to a route of the server and return the decoded JSON answer.
PostJson = Callable[[str, Any], Any]


class ServerTokenizer:
    """Token ids and offsets from the server's ``/tokenize`` route."""

    exact = True
    max_token_chars = 64  # the server cannot say how long its longest piece is
    newline_id = None  # nothing proves its tokenization splits at newlines
    _INFILL_SENTINEL = "\n"  # encodes as ▁ <0x0A> and merges with nothing after it

    def __init__(self, post: PostJson, route: str = "/tokenize", label: str = "the server") -> None:
        self._post = post
        self.route = route
        self.label = label
        self._special: SpecialIds | None = None
        self._bos: int | None = None
        self._cache: OrderedDict[str, list[Token]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def probe(cls, post: PostJson, route: str = "/tokenize", label: str = "the server") -> ServerTokenizer | None:
        """A tokenizer for this server, or None when it has no usable ``/tokenize``.

        A TGI without a fast tokenizer answers 404 ``No fast tokenizer available``; other
        servers answer 404 or a body of another shape. Connection failures propagate.
        """
        tok = cls(post, route, label)
        try:
            tok._load_special()
        except EngineError as exc:
            if exc.kind in ("not-found", "protocol", "validation", "server"):
                return None
            raise
        return tok

    # -- the PromptTokenizer surface ---------------------------------------------------------
    @property
    def special(self) -> SpecialIds:
        if self._special is None:
            self._load_special()
        assert self._special is not None
        return self._special

    def text_encoder(self) -> Encoder:
        return lambda text: [t[0] for t in self._tokenize(text)]

    def encode(self, text: str) -> list[int]:
        return self.encode_with_offsets(text)[0]

    def encode_with_offsets(self, text: str) -> tuple[list[int], Offsets]:
        if not text:
            return [], []
        tokens = self._body(self._tokenize(text))
        return [t[0] for t in tokens], [(t[1], t[2]) for t in tokens]

    def encode_infill(self, text: str) -> list[int]:
        return self.encode_infill_with_offsets(text)[0]

    def encode_infill_with_offsets(self, text: str) -> tuple[list[int], Offsets]:
        if not text:
            return [], []
        n = len(self._INFILL_SENTINEL)
        tokens = [t for t in self._body(self._tokenize(self._INFILL_SENTINEL + text)) if t[1] >= n]
        return [t[0] for t in tokens], [(max(t[1] - n, 0), t[2] - n) for t in tokens]

    # -- internals ---------------------------------------------------------------------------
    def _tokenize(self, text: str) -> list[Token]:
        """(id, start, end) per token in character offsets, BOS included when the server adds it."""
        with self._lock:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                return hit
        tokens = self._request(text)
        with self._lock:
            self._cache[text] = tokens
            if len(self._cache) > 256:
                self._cache.popitem(last=False)
        return tokens

    def _request(self, text: str) -> list[Token]:
        """One round trip: TGI's ``{"inputs": text}`` answered with byte offsets."""
        return byte_offsets_to_chars(text, self._post(self.route, {"inputs": text}), self.label)

    def _body(self, tokens: list[Token]) -> list[Token]:
        if tokens and self._bos is not None and tokens[0][0] == self._bos:
            return tokens[1:]
        return tokens

    def _load_special(self) -> None:
        probe = self._tokenize("a")
        self._bos = probe[0][0] if len(probe) == 2 else None
        skip = 1 if self._bos is not None else 0
        markers = [t[0] for t in self._tokenize("<PRE> <SUF> <MID> <EOT>")[skip:]]
        eos = [t[0] for t in self._tokenize("</s>")[skip:]]
        pre, suf, mid, eot = markers if len(markers) == 4 else (None, None, None, None)
        self._special = SpecialIds(
            bos=self._bos, eos=eos[-1] if len(eos) <= 2 and eos else None, pre=pre, suf=suf, mid=mid, eot=eot
        )


class LlamaCppTokenizer(ServerTokenizer):
    """llama-server's ``POST /tokenize``: ids with their pieces (``with_pieces``), no offsets.

    The server's tokenizer is the GGUF's own (sentencepiece semantics for Code Llama: an implied
    leading space, byte fallback), so ids are exactly what the model was trained on. Offsets are
    found by laying the pieces over the UTF-8 text: the first piece may carry the implied space,
    byte-fallback pieces come as lists of bytes. Text is tokenized with ``parse_special: false``,
    so ``<s>`` or ``<PRE>`` written in code stay plain text; BOS is asked for once (``add_special``
    on an empty text) and put in front, as TGI's ``/tokenize`` does.
    """

    def _request(self, text: str) -> list[Token]:
        raw = self._post(
            self.route, {"content": text, "add_special": False, "parse_special": False, "with_pieces": True}
        )
        tokens = raw.get("tokens") if isinstance(raw, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, dict) and "id" in t for t in tokens):
            raise EngineError(f"codellama-ls: {self.label} answered /tokenize with an unexpected body.", "protocol")
        # Pieces show a space as a space, except in control pieces (the infill markers: "▁<PRE>"),
        # and sentencepiece reads "▁" written in the text as a space: compare with "▁" as a space.
        # One character for another: character offsets in ``plain`` are offsets in ``text``.
        plain = text.replace(_SPACE, " ")
        data = plain.encode("utf-8", "surrogatepass")
        pieces = [_piece_bytes(t.get("piece")) for t in tokens]
        joined = b"".join(pieces)
        shift = 1 if joined == b" " + data else 0  # the implied leading space of sentencepiece
        if joined[shift:] != data:
            raise EngineError(
                f"codellama-ls: {self.label}'s /tokenize pieces do not spell the text; its tokenizer cannot be used.",
                "protocol",
            )
        spans, end = [], 0
        for t, piece in zip(tokens, pieces, strict=True):
            start, end = end, end + len(piece)
            spans.append({"id": t["id"], "start": max(start - shift, 0), "stop": max(end - shift, 0)})
        out = byte_offsets_to_chars(plain, spans, self.label)
        bos = self._server_bos()
        return [(bos, 0, 0), *out] if bos is not None else out

    def __init__(self, post: PostJson, route: str = "/tokenize", label: str = "the server") -> None:
        super().__init__(post, route, label)
        self._bos_asked = False
        self._server_bos_id: int | None = None

    def _server_bos(self) -> int | None:
        """The BOS id the server puts in front of a text prompt (None: it adds none)."""
        if not self._bos_asked:
            raw = self._post(self.route, {"content": "", "add_special": True})
            ids = raw.get("tokens") if isinstance(raw, dict) else None
            self._server_bos_id = int(ids[0]) if isinstance(ids, list) and len(ids) == 1 else None
            self._bos_asked = True
        return self._server_bos_id

    def _load_special(self) -> None:
        super()._load_special()
        assert self._special is not None
        if not self._special.infill:
            # llama.cpp marks the infill pieces as control tokens, which plain text never becomes:
            # take Code Llama's ids where the server spells them as the markers.
            known = CODE_LLAMA_SPECIAL
            raw = self._post("/detokenize", {"tokens": [known.pre, known.suf, known.mid, known.eot]})
            text = raw.get("content") if isinstance(raw, dict) else None
            if isinstance(text, str) and text.split() == ["<PRE>", "<SUF>", "<MID>", "<EOT>"]:
                self._special = dataclasses.replace(
                    self._special, pre=known.pre, suf=known.suf, mid=known.mid, eot=known.eot
                )
        if self._special.eos is None:  # "</s>" is plain text here: ask for it as a special piece
            raw = self._post(self.route, {"content": "</s>", "add_special": False, "parse_special": True})
            ids = raw.get("tokens") if isinstance(raw, dict) else None
            if isinstance(ids, list) and len(ids) == 1:
                self._special = dataclasses.replace(self._special, eos=int(ids[0]))


def _piece_bytes(piece: Any) -> bytes:
    """A ``with_pieces`` piece: a string, or a list of bytes where it is not valid UTF-8 alone."""
    if isinstance(piece, list):
        return bytes(int(b) & 0xFF for b in piece)
    return str(piece or "").replace(_SPACE, " ").encode("utf-8", "surrogatepass")


_SPACE = "\u2581"  # sentencepiece's space, ▁


def byte_offsets_to_chars(text: str, raw: Any, label: str = "the server") -> list[Token]:
    """TGI's ``/tokenize`` answer as (id, start, end) with character offsets.

    TGI gives ``start``/``stop`` in bytes of the UTF-8 input; Python indexes characters.
    """
    if not isinstance(raw, list) or not all(isinstance(t, dict) and "id" in t for t in raw):
        raise EngineError(f"codellama-ls: {label} answered /tokenize with an unexpected body.", "protocol")
    try:
        tokens = [(int(t["id"]), int(t.get("start", 0)), int(t.get("stop", 0))) for t in raw]
    except (TypeError, ValueError) as exc:
        raise EngineError(f"codellama-ls: {label} answered /tokenize with an unexpected body.", "protocol") from exc
    if text.isascii():
        return tokens
    data_len = len(text.encode("utf-8", "surrogatepass"))
    char_at = [0] * (data_len + 1)
    pos = 0
    for index, ch in enumerate(text):
        width = len(ch.encode("utf-8", "surrogatepass"))
        for _ in range(width):
            char_at[pos] = index
            pos += 1
    char_at[data_len] = len(text)
    return [(i, char_at[min(max(s, 0), data_len)], char_at[min(max(e, 0), data_len)]) for i, s, e in tokens]


class EstimatingTokenizer:
    """Budgets by characters when no tokenizer of the model can be had.

    Every two ASCII characters count as one token and every other character as one token per
    UTF-8 byte, so a prompt cut to a budget here stays within it for the real tokenizer in
    nearly every case (see ``ASCII_CHARS_PER_TOKEN``). The "ids" are placeholders: prompts built
    with it go out as text, never as ids.
    """

    exact = False
    max_token_chars = ASCII_CHARS_PER_TOKEN
    newline_id = None
    special = CODE_LLAMA_SPECIAL

    def text_encoder(self) -> None:
        return None

    def encode(self, text: str) -> list[int]:
        return self.encode_with_offsets(text)[0]

    def encode_infill(self, text: str) -> list[int]:
        return self.encode_with_offsets(text)[0]

    def encode_infill_with_offsets(self, text: str) -> tuple[list[int], Offsets]:
        return self.encode_with_offsets(text)

    def encode_with_offsets(self, text: str) -> tuple[list[int], Offsets]:
        offsets: Offsets = []
        i, n = 0, len(text)
        while i < n:
            if text[i].isascii():
                end = min(i + ASCII_CHARS_PER_TOKEN, n)
                if not text[end - 1].isascii():
                    end = i + 1
                offsets.append((i, end))
                i = end
            else:
                offsets.extend([(i, i + 1)] * len(text[i].encode("utf-8", "surrogatepass")))
                i += 1
        return [0] * len(offsets), offsets
