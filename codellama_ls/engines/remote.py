"""What the ``tgi`` and ``openai`` engines share: server info, tokenizer, the streaming loop.

``load()`` reads the server's model id and limits once and finds the tokenizer for exact
prompts: the ``tokenizer`` setting, else the server's model id (local folder or Hugging
Face cache), else the server itself (TGI's ``/tokenize``). An unreachable server at start
is not fatal: the engine is usable, and the next suggestion retries (at most every few
seconds, quietly after the first message).

``generate()`` reads the stream token by token in the scheduler's worker thread. After
every token it checks the cancel flag and the post-processing stop check, and on either
it shuts the connection down at once, so the server stops generating too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any

from codellama_ls.config import Settings
from codellama_ls.engines.base import (
    Cancelled,
    Engine,
    EngineError,
    EngineState,
    GenerationRequest,
    GenerationResult,
    ProgressFn,
)
from codellama_ls.engines.http import Deadline, EventStream, Http, base_url, check_url
from codellama_ls.prompt import Prompt, build_prompt
from codellama_ls.textprompt import server_encoder
from codellama_ls.tokens import CodeTokenizer, SpecialIds, TokenizerNotFound

log = logging.getLogger(__name__)

INFO_RETRY_S = 5.0  # after a failed /info, requests fail fast (quietly) for this long
EOT_TEXT = "<EOT>"
STOP = [EOT_TEXT]  # Code Llama ends an infill with ▁<EOT>, which is not its EOS token
_TEXT_MARGIN = 2  # a text prompt may re-tokenize a token longer than our ids


@dataclass
class Piece:
    """One streamed event: text to append, and why the stream ends (None: it goes on)."""

    text: str
    stop: str | None = None


class RemoteEngine(Engine):
    """Base of the engines that run on a server reached over HTTP."""

    label = "server"
    route_suffixes: tuple[str, ...] = ()

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.max_input: int | None = None
        self.max_total: int | None = None
        super().__init__()
        url = base_url(check_url(settings.url, self.name), self.route_suffixes)
        self.http = Http(settings, url, self.label)
        self.prompts: Counter[str] = Counter()  # how prompts were sent: ids / exact / adjusted / inexact
        self._info_ok = False
        self._info_error: EngineError | None = None
        self._info_failed_at = 0.0
        self._pinned = False  # the tokenizer came from the settings or the server's model id
        self._lock = threading.RLock()  # guards reading /info

    @property
    def settings(self) -> Settings:
        return self._settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        """The service hands over changed settings (timeouts, retries) without a reload."""
        self._settings = value
        self.http.settings = value

    # -- limits --------------------------------------------------------------------------
    @property  # type: ignore[override]
    def context_length(self) -> int | None:
        """Context for the prompt budget: the prompt stays within max input and max total tokens."""
        if self.max_total is None:
            return self.max_input + self.settings.max_new_tokens if self.max_input else None
        if self.max_input is None:
            return self.max_total
        return min(self.max_total, self.max_input + self.settings.max_new_tokens)

    @context_length.setter
    def context_length(self, value: int | None) -> None:
        """Derived from the server's limits; the base class's assignment is ignored."""

    # -- loading -------------------------------------------------------------------------
    def load(self, progress: ProgressFn | None = None) -> None:
        report = progress or (lambda message, pct: None)
        self.state = EngineState.LOADING
        s = self.settings
        if s.tokenizer:
            report("Loading tokenizer", 10)
            try:
                self.tokenizer = CodeTokenizer.load(s.tokenizer)
            except TokenizerNotFound as exc:
                self.state, self.error = EngineState.FAILED, f"codellama-ls: setting 'tokenizer': {exc}"
                raise EngineError(self.error, "load") from exc
            self._pinned = True
        report(f"Connecting to {self.http.shown}", 40)
        try:
            self.refresh_info(force=True)
        except EngineError as exc:  # not fatal: the next suggestion tries again
            log.warning("%s", exc)
        if self.tokenizer is None:
            self.tokenizer = ServerTokenizer(self)  # type: ignore[assignment]
        if isinstance(self.tokenizer, CodeTokenizer):
            server_encoder(self.tokenizer)  # built once here rather than in the first suggestion
        self.state = EngineState.READY
        report(f"Using {self.label} at {self.http.shown}", 100)

    def refresh_info(self, *, force: bool = False) -> None:
        """Read the model id and limits once; after a failure retry at most every INFO_RETRY_S."""
        with self._lock:
            if self._info_ok:
                return
            if not force and self._info_error is not None:
                if time.monotonic() - self._info_failed_at < INFO_RETRY_S:
                    raise self._info_error
            try:
                self.read_info()
            except EngineError as exc:
                self.error, self._info_error, self._info_failed_at = str(exc), exc, time.monotonic()
                raise
            self._info_ok, self._info_error, self.error = True, None, None
            log.info(
                "%s at %s serves %r (max input %s, max total %s tokens)",
                self.label,
                self.http.shown,
                self.model_id,
                self.max_input,
                self.max_total,
            )
            self._adopt_model_tokenizer()

    def read_info(self) -> None:
        """Set ``model_id``, ``max_input``, ``max_total`` from the server (raises EngineError)."""
        raise NotImplementedError

    def _adopt_model_tokenizer(self) -> None:
        if self._pinned or not self.model_id:
            return
        try:
            tok = CodeTokenizer.load(self.model_id)
        except TokenizerNotFound as exc:
            log.info("no local tokenizer for %r (%s); asking the server", self.model_id, exc)
            return
        server_encoder(tok)
        self.tokenizer, self._pinned = tok, True

    def real_tokenizer(self) -> CodeTokenizer | None:
        tok = self.tokenizer
        return tok if isinstance(tok, CodeTokenizer) else None

    # -- generation ----------------------------------------------------------------------
    def generate(self, request: GenerationRequest) -> GenerationResult:
        if self.state is not EngineState.READY:
            raise EngineError(self.error or f"codellama-ls: the {self.name} engine is not ready", "not-ready")
        return self._generate(request)  # the scheduler's single worker runs one at a time

    def _generate(self, req: GenerationRequest) -> GenerationResult:
        started = time.perf_counter()
        deadline = time.monotonic() + req.timeout_s if req.timeout_s else None
        text, pieces, reason, prompt_tokens = "", 0, "length", len(req.prompt.ids)
        try:
            if req.cancel.is_set():
                raise Cancelled()
            self.refresh_info()
            prompt = self.fit(req.prompt)
            stream, prompt_tokens = self.open(prompt, req, deadline)
            finished = False
            with stream:
                for event in stream:
                    if event.data.strip() == "[DONE]":
                        finished = True
                        stream.drain()
                        break
                    piece = self.parse(_json(event, self.http.label))
                    if piece.text:
                        text += piece.text
                        pieces += 1
                    if EOT_TEXT in text:  # a server that streams the stop text itself: we end it
                        text, reason, finished = text[: text.index(EOT_TEXT)].removesuffix(" "), "eot", True
                        break
                    if piece.stop is not None:  # the server ended it: keep the connection for reuse
                        reason, finished = piece.stop, True
                        stream.drain()
                        break
                    if req.cancel.is_set():
                        reason = "cancelled"
                        break
                    if req.should_stop is not None and req.should_stop(text):
                        reason = "early"
                        break
            if not finished and reason not in ("cancelled", "early"):
                raise EngineError(
                    f"codellama-ls: the stream from {self.label} at {self.http.shown} ended before the "
                    "generation finished; the suggestion was skipped.",
                    "stream",
                )
        except Cancelled:
            reason = "cancelled"
        except Deadline:
            reason = "timeout"
        return self.record(
            GenerationResult(
                text=text,
                new_tokens=pieces,
                prefill_tokens=prompt_tokens,
                prompt_tokens=prompt_tokens,
                stop_reason=reason,
                seconds=time.perf_counter() - started,
            )
        )

    def open(self, prompt: Prompt, req: GenerationRequest, deadline: float | None) -> tuple[EventStream, int]:
        """Start the streaming request; returns the stream and the prompt's length in tokens."""
        raise NotImplementedError

    def parse(self, data: Any) -> Piece:
        """Turn one event's JSON into a Piece (raises EngineError for error events)."""
        raise NotImplementedError

    def fit(self, prompt: Prompt, margin: int = 0) -> Prompt:
        """Re-trim a prompt that the server's max input would reject (limits learnt late)."""
        limit = self.max_input
        if limit is None and self.max_total is not None:
            limit = self.max_total - 1
        if limit is None or len(prompt.ids) + margin <= limit:
            return prompt
        tok = self.tokenizer
        assert tok is not None
        budget = max(limit - margin, 8)
        return build_prompt(
            tok,
            prompt.prefix,
            prompt.suffix,
            fmt=prompt.format,
            budget=budget,
            prefix_share=self.settings.prefix_share,
            context=prompt.context_block,
        )

    def new_tokens(self, req: GenerationRequest, prompt_tokens: int) -> int:
        """max_new_tokens, within the server's max total tokens."""
        if self.max_total is None:
            return req.max_new_tokens
        return max(1, min(req.max_new_tokens, self.max_total - prompt_tokens))

    def error_event(self, data: dict[str, Any]) -> EngineError:
        """An error sent inside the stream (TGI: ``{"error": ..., "error_type": ...}``)."""
        error = data.get("error")
        kind_name = data.get("error_type") or ""
        if isinstance(error, dict):  # OpenAI style
            kind_name = error.get("type") or error.get("code") or kind_name
            error = error.get("message", "")
        kind = {"overloaded": "overloaded", "validation": "validation"}.get(str(kind_name), "server")
        message = self.http.scrub(" ".join(str(error).split()))[:300]
        return EngineError(f"codellama-ls: {self.label} at {self.http.shown} failed while generating: {message}", kind)

    def status(self) -> dict[str, object]:
        out = super().status()
        out["url"] = self.http.shown
        out["prompts"] = dict(self.prompts)
        out["tokenizer"] = "local" if self.real_tokenizer() is not None else "server"
        return out

    def close(self) -> None:
        self.http.close()


def _json(event: Any, label: str) -> Any:
    try:
        return event.json()
    except ValueError as exc:
        shown = event.data[:80]
        raise EngineError(f"codellama-ls: {label} sent an event that is not JSON: {shown!r}", "protocol") from exc


class ServerTokenizer:
    """The encoding side of :class:`CodeTokenizer`, for when no ``tokenizer.json`` is at hand.

    Uses the engine's real tokenizer as soon as one can be found (the server's model id in
    the Hugging Face cache), else TGI's ``POST /tokenize``. Ids are the server's own, so
    prompts are as exact as the server's tokenizer allows; it costs a round trip per call.
    """

    _INFILL_SENTINEL = "\n"  # encodes as ▁ <0x0A> and merges with nothing after it

    def __init__(self, engine: RemoteEngine) -> None:
        self.engine = engine
        self._special: SpecialIds | None = None
        self._bos: int | None = None
        self._cache: OrderedDict[str, list[tuple[int, int, int]]] = OrderedDict()
        self._lock = threading.Lock()

    def _real(self) -> CodeTokenizer | None:
        self.engine.refresh_info()
        return self.engine.real_tokenizer()

    def _tokenize(self, text: str) -> list[tuple[int, int, int]]:
        """(id, start, end) per token, character offsets, BOS included when the server adds it."""
        with self._lock:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                return hit
        if not hasattr(self.engine, "tokenize_route"):
            raise EngineError(
                f"codellama-ls: no tokenizer for model {self.engine.model_id or '(unknown)'}: set the setting "
                "'tokenizer' to its folder or hub id (exact prompts need the model's tokenizer.json).",
                "tokenizer",
            )
        raw = self.engine.http.json("POST", self.engine.tokenize_route, {"inputs": text})
        if not isinstance(raw, list):
            raise EngineError(f"codellama-ls: {self.engine.label} answered /tokenize unexpectedly.", "protocol")
        tokens = _char_offsets(text, raw)
        with self._lock:
            self._cache[text] = tokens
            if len(self._cache) > 256:
                self._cache.popitem(last=False)
        return tokens

    def _body(self, tokens: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
        if tokens and self.bos is not None and tokens[0][0] == self.bos:
            return tokens[1:]
        return tokens

    @property
    def bos(self) -> int | None:
        if self._special is None:
            self._load_special()
        return self._bos

    @property
    def special(self) -> SpecialIds:
        real = self._real()
        if real is not None:
            return real.special
        if self._special is None:
            self._load_special()
        assert self._special is not None
        return self._special

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

    # -- the CodeTokenizer surface used by prompts ------------------------------------------
    def server_encode(self, text: str) -> list[int]:
        real = self._real()
        if real is not None:
            return server_encoder(real)(text)
        return [t[0] for t in self._tokenize(text)]

    def encode(self, text: str) -> list[int]:
        return self.encode_with_offsets(text)[0]

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        real = self._real()
        if real is not None:
            return real.encode_with_offsets(text)
        if not text:
            return [], []
        tokens = self._body(self._tokenize(text))
        return [t[0] for t in tokens], [(t[1], t[2]) for t in tokens]

    def encode_infill(self, text: str) -> list[int]:
        return self.encode_infill_with_offsets(text)[0]

    def encode_infill_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        real = self._real()
        if real is not None:
            return real.encode_infill_with_offsets(text)
        if not text:
            return [], []
        n = len(self._INFILL_SENTINEL)
        tokens = [t for t in self._body(self._tokenize(self._INFILL_SENTINEL + text)) if t[1] >= n]
        return [t[0] for t in tokens], [(max(t[1] - n, 0), t[2] - n) for t in tokens]

    def decode(self, ids: list[int]) -> str:
        real = self._real()
        if real is None:
            raise EngineError("codellama-ls: decoding needs the model's tokenizer.json", "tokenizer")
        return real.decode(ids)


def _char_offsets(text: str, raw: list[dict[str, Any]]) -> list[tuple[int, int, int]]:
    """TGI's /tokenize offsets as character offsets (they are byte offsets in some versions)."""
    tokens = [(int(t["id"]), int(t.get("start", 0)), int(t.get("stop", 0))) for t in raw]
    if text.isascii() or all(text[s:e] == t.get("text", text[s:e]) for (_, s, e), t in zip(tokens, raw, strict=True)):
        return tokens
    data = text.encode("utf-8")
    char_at = [0] * (len(data) + 1)
    pos = 0
    for index, ch in enumerate(text):
        for _ in range(len(ch.encode("utf-8"))):
            char_at[pos] = index
            pos += 1
    char_at[len(data)] = len(text)
    clamp = len(data)
    return [(i, char_at[min(s, clamp)], char_at[min(e, clamp)]) for i, s, e in tokens]
