"""What the remote engines (``tgi``, ``openai``, ``ollama``) share: server info, tokenizer, the streaming loop.

``load()`` reads the server's model id and limits once and finds the tokenizer for exact
prompts, in this order: (a) the ``tokenizer`` setting; (b) the served model id (Ollama: the
Hugging Face id its tag was made from), as a local folder or in the Hugging Face cache (never
downloaded: the user did not name that id); (c) the server's ``POST /tokenize``; (d) none:
prompts are cut by a character estimate and sent as text, and the user is told once how to
make them exact. An unreachable server at start is not fatal: the engine is usable, and the
next suggestion retries (at most every few seconds, quietly after the first message).

``generate()`` reads the stream token by token in the scheduler's worker thread. After
every token it checks the cancel flag and the post-processing stop check, and on either
it shuts the connection down at once, so the server stops generating too. Several
suggestions are several streams read in parallel (:meth:`RemoteEngine.groups` says how
the samples are split into requests); each sample ends on its own.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from codellama_ls.config import Settings
from codellama_ls.engines.base import (
    Cancelled,
    Engine,
    EngineError,
    EnginePrompt,
    EngineState,
    GenerationRequest,
    GenerationResult,
    PromptTooLong,
    StopCheck,
)
from codellama_ls.engines.http import ContextOverflow, Deadline, EventStream, Http, base_url, check_url
from codellama_ls.engines.server_tokenizer import ASCII_CHARS_PER_TOKEN, EstimatingTokenizer, ServerTokenizer
from codellama_ls.notify import ProgressFn
from codellama_ls.prompt.chat import ChatPrompt, server_text
from codellama_ls.prompt.fim import Prompt
from codellama_ls.prompt.text import TextPrompt, text_prompt
from codellama_ls.prompt.tokens import CodeTokenizer, PromptTokenizer, TokenizerNotFound

log = logging.getLogger(__name__)

INFO_RETRY_S = 5.0  # after a failed /info, requests fail fast (quietly) for this long
EOT_TEXT = "<EOT>"
STOP = [EOT_TEXT]  # Code Llama ends an infill with ▁<EOT>, which is not its EOS token
_TEXT_MARGIN = 2  # a text prompt may re-tokenize a token longer than our ids


@dataclass
class Piece:
    """One streamed event: text to append, and why its sample ends (None: it goes on)."""

    text: str
    stop: str | None = None
    index: int = 0  # which sample of the request (OpenAI's ``choices[i].index`` with ``n``)
    # What the server says it computed, where it says so (Ollama's last chunk): prompt tokens
    # evaluated (fewer than the prompt after a cache hit) and tokens generated.
    prompt_eval: int | None = None
    generated: int | None = None


@dataclass(frozen=True)
class Group:
    """Samples ``first`` .. ``first + count - 1`` of a generation, asked for in one request."""

    first: int
    count: int
    temperature: float
    top_p: float


@dataclass
class _Samples:
    """What one request's stream gave: text, end reason and streamed pieces per sample."""

    texts: list[str]
    reasons: list[str]
    pieces: int = 0
    prompt_tokens: int = 0
    error: EngineError | None = None
    done: list[bool] = field(default_factory=list)
    prompt_eval: int | None = None  # as the server reported them (see Piece)
    generated: int | None = None

    @property
    def new_tokens(self) -> int:
        return self.generated if self.generated is not None else self.pieces


class RemoteEngine(Engine):
    """Base of the engines that run on a server reached over HTTP."""

    label = "server"
    route_suffixes: tuple[str, ...] = ()

    tokenize_route: str | None = "/tokenize"  # TGI's; TGI's OpenAI route is served by the same router
    default_url: str | None = None  # where the server is when the setting 'url' is unset

    def __init__(self, settings: Settings) -> None:
        self.max_input: int | None = None
        self.max_total: int | None = None
        super().__init__(settings)
        url = base_url(check_url(settings.url or self.default_url, self.name), self.route_suffixes)
        self.http = Http(settings, url, self.label)
        self.prompts: Counter[str] = Counter()  # how prompts were sent: ids / exact / adjusted / inexact
        # Where the prompt tokenizer came from: setting / cache / server / estimate (pending: not known yet).
        self.tokenizer_source = "pending"
        self._info_ok = False
        self._info_error: EngineError | None = None
        self._info_failed_at = 0.0
        self._lock = threading.RLock()  # guards reading /info
        self._samplers: concurrent.futures.ThreadPoolExecutor | None = None  # streams of the samples after the first

    def configure(self, settings: Settings) -> None:
        """Timeouts, retries and the CA bundle apply to the next request without a reload."""
        super().configure(settings)
        self.http.settings = settings

    # -- limits --------------------------------------------------------------------------
    @property
    def context_length(self) -> int | None:
        """Context for the prompt budget: the prompt stays within max input and max total tokens."""
        if self.max_total is None:
            return self.max_input + self.settings.max_new_tokens if self.max_input else None
        if self.max_input is None:
            return self.max_total
        return min(self.max_total, self.max_input + self.settings.max_new_tokens)

    def prompt_limit(self, max_new_tokens: int) -> int | None:
        """The most prompt tokens the server takes with ``max_new_tokens`` to generate (None: unknown)."""
        limits = [n for n in (self.max_input, self.max_total and self.max_total - max_new_tokens) if n]
        return min(limits) if limits else None

    def input_limit(self, max_new_tokens: int) -> int | None:
        """The most prompt tokens the server accepts at all: its max input, else (one context for
        prompt and answer) its context less the room kept for the answer (None: unknown)."""
        if self.max_input is not None:
            return self.max_input
        if self.max_total is not None:
            return self.max_total - max(1, self.answer_room(max_new_tokens))
        return None

    # -- loading -------------------------------------------------------------------------
    def load(self, progress: ProgressFn | None = None) -> None:
        report = progress or (lambda message, pct: None)
        self.state = EngineState.LOADING
        s = self.settings
        if s.tokenizer:
            report("Loading tokenizer", 10)
            try:
                tok = CodeTokenizer.load(s.tokenizer)
            except TokenizerNotFound as exc:
                self.state, self.error = EngineState.FAILED, f"codellama-ls: setting 'tokenizer': {exc}"
                raise EngineError(self.error, "load") from exc
            tok.text_encoder()  # built once here rather than in the first suggestion
            self.tokenizer, self.tokenizer_source = tok, "setting"
        else:
            # Until the server says which model it serves: budgets by estimate (requests fail anyway
            # while it cannot be reached).
            self.tokenizer, self.tokenizer_source = EstimatingTokenizer(), "pending"
        report(f"Connecting to {self.http.shown}", 40)
        try:
            self.refresh_info(force=True)
        except EngineError as exc:  # not fatal: the next suggestion tries again
            log.warning("%s", exc)
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
            self._resolve_tokenizer()

    def read_info(self) -> None:
        """Set ``model_id``, ``max_input``, ``max_total`` from the server (raises EngineError)."""
        raise NotImplementedError

    def _resolve_tokenizer(self) -> None:
        """Cases (b)-(d) of the module docstring, once the server has said what it serves."""
        if self.tokenizer_source == "setting":
            return
        for name in self.cached_tokenizer_ids():
            try:
                tok = CodeTokenizer.load(name, cache_only=True)
            except TokenizerNotFound as exc:
                log.info("no local tokenizer for %r (%s)", name, exc)
            else:
                tok.text_encoder()
                self.tokenizer, self.tokenizer_source = tok, "cache"
                return
        server = self.server_tokenizer()
        if server is not None:
            self.tokenizer, self.tokenizer_source = server, "server"
            return
        self.tokenizer, self.tokenizer_source = EstimatingTokenizer(), "estimate"
        model = self.model_id or "(unnamed)"
        self.notice(
            "tokenizer-estimate",
            f"codellama-ls: prompts for {self.label} at {self.http.shown} are not token-exact: no tokenizer.json "
            f"of model {model} was found (the setting 'tokenizer' is not set, the Hugging Face cache has none and "
            f"the server has no /tokenize), so prompts are cut at about {ASCII_CHARS_PER_TOKEN} characters a token "
            "and sent as text. Set 'tokenizer' to the model's tokenizer folder or hub id for exact prompts.",
        )

    def server_tokenizer(self) -> PromptTokenizer | None:
        """The server's own tokenizer (case (c)), or None when it has none."""
        route = self.tokenize_route
        if route is None:
            return None
        return ServerTokenizer.probe(self._post_json, route, f"{self.label} at {self.http.shown}")

    def cached_tokenizer_ids(self) -> list[str]:
        """Folders or hub ids whose tokenizer.json may be at hand (hub cache only): the served model's id."""
        return [self.model_id] if self.model_id else []

    def _post_json(self, route: str, body: Any) -> Any:
        return self.http.json("POST", route, body, retries=0)

    # -- generation ----------------------------------------------------------------------
    def generate(self, request: GenerationRequest) -> GenerationResult:
        if self.state is not EngineState.READY:
            raise EngineError(self.error or f"codellama-ls: the {self.name} engine is not ready", "not-ready")
        return self._generate(request)  # the scheduler's single worker runs one at a time

    def groups(self, req: GenerationRequest) -> list[Group]:
        """How the samples are asked for: one request each (TGI streams one sample per request).
        The group holding sample 0 comes first."""
        return [Group(i, 1, *req.sampling(i)) for i in range(req.samples)]

    def _generate(self, req: GenerationRequest) -> GenerationResult:
        started = time.perf_counter()
        deadline = time.monotonic() + req.timeout_s if req.timeout_s else None
        groups = self.groups(req)
        checks = req.stop_checks()
        samples = _Samples([""], ["cancelled"], prompt_tokens=len(req.prompt.ids))
        extra: list[tuple[Group, concurrent.futures.Future[_Samples], threading.Event]] = []
        ok = False
        try:
            if req.cancel.is_set():
                raise Cancelled()
            self.refresh_info()
            prompt = req.prompt
            self.check_fit(prompt, req.max_new_tokens)
            for group in groups[1:]:  # the other samples stream in parallel, each stopped on its own
                stop = threading.Event()
                sub = dataclasses.replace(req, cancel=stop)
                future = self._pool().submit(self._stream, prompt, sub, group, checks, deadline)
                extra.append((group, future, stop))
            samples = self._stream(prompt, req, groups[0], checks, deadline)
            if samples.error is not None:
                raise samples.error
            ok = True
        except Cancelled:
            samples.reasons = ["cancelled"] * len(samples.reasons)
        except Deadline:
            samples.reasons = ["timeout"] * len(samples.reasons)
        finally:
            others = self._join(extra, req, abort=not ok)
        texts, reasons, generated = list(samples.texts), list(samples.reasons), samples.new_tokens
        for other in others:
            texts += other.texts
            reasons += other.reasons
            generated += other.new_tokens
        prefill = samples.prompt_eval if samples.prompt_eval is not None else samples.prompt_tokens
        result = GenerationResult(
            text=texts[0],
            new_tokens=generated,
            prefill_tokens=prefill,
            prompt_tokens=samples.prompt_tokens,
            stop_reason=reasons[0],
            seconds=time.perf_counter() - started,
            texts=texts,
            stop_reasons=reasons,
        )
        return self.record(result) if req.counted else result  # a prefetch is not a generation asked for

    def _join(
        self,
        extra: list[tuple[Group, concurrent.futures.Future[_Samples], threading.Event]],
        req: GenerationRequest,
        *,
        abort: bool,
    ) -> list[_Samples]:
        """Wait for the parallel samples, passing the request's cancel flag on; a sample whose
        request failed is left out (the first sample's failure is the one reported)."""
        if abort:
            for _, _, stop in extra:
                stop.set()
        pending = {future for _, future, _ in extra}
        while pending:
            if req.cancel.is_set():
                for _, _, stop in extra:
                    stop.set()
            _, pending = concurrent.futures.wait(pending, timeout=0.02)
        out = []
        for group, future, _ in extra:
            got = future.result()
            if got.error is not None:
                log.info("%s: sample %d failed: %s", self.label, group.first, got.error)
                continue
            out.append(got)
        return out

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._samplers is None:
                self._samplers = concurrent.futures.ThreadPoolExecutor(7, thread_name_prefix="codellama-sample")
            return self._samplers

    def _stream(
        self,
        prompt: EnginePrompt,
        req: GenerationRequest,
        group: Group,
        checks: list[StopCheck | None],
        deadline: float | None,
    ) -> _Samples:
        """Send one request for ``group`` and read its stream: each sample's text ends at the
        server's stop, at a stop text (``<EOT>``), at its early-stop check, or at the cancel flag."""
        n = group.count
        out = _Samples([""] * n, ["length"] * n, prompt_tokens=len(prompt.ids), done=[False] * n)
        stops = stop_texts(prompt)
        cut = False  # we stop reading before the server is done: the connection is shut down
        finished = False
        try:
            if req.cancel.is_set():
                raise Cancelled()
            try:
                stream, out.prompt_tokens = self.open(prompt, req, deadline, group)
            except EngineError as exc:
                smaller = self.too_long(prompt, exc, req.max_new_tokens)
                if smaller is exc:
                    raise
                raise smaller from exc
            with stream:
                for event in stream:
                    if event.data.strip() == "[DONE]":
                        finished = True
                        stream.drain()
                        break
                    for piece in self.parse(_json(event, self.http.label)):
                        cut = self._take(piece, out, req, checks[group.first : group.first + n], stops) or cut
                    if all(out.done):
                        finished = True
                        if not cut:  # every sample ended by the server: keep the connection for reuse
                            stream.drain()
                        break
            if not finished:
                raise EngineError(
                    f"codellama-ls: the stream from {self.label} at {self.http.shown} ended before the "
                    "generation finished; the suggestion was skipped.",
                    "stream",
                )
        except Cancelled:
            out.reasons = [r if d else "cancelled" for r, d in zip(out.reasons, out.done, strict=True)]
        except Deadline:
            out.reasons = [r if d else "timeout" for r, d in zip(out.reasons, out.done, strict=True)]
        except EngineError as exc:
            out.error = exc
        return out

    def too_long(self, prompt: EnginePrompt, exc: EngineError, max_new_tokens: int) -> EngineError:
        """What to raise for ``exc`` from sending ``prompt``: :class:`PromptTooLong` where a smaller
        prompt is worth one more try (the pipeline builds it), else ``exc`` itself.

        "Too long for the context" (:class:`ContextOverflow`) teaches the context size, when the
        server names it, and asks for a prompt that fits it with room for the answer; a prompt cut by
        estimate that the server rejected is asked for at half its size. Chat prompts are built
        within the server's limits and are not re-cut.
        """
        if isinstance(exc, PromptTooLong) or isinstance(prompt, ChatPrompt) or len(prompt.ids) < 16:
            return exc
        if isinstance(exc, ContextOverflow):
            if exc.n_ctx:
                self.max_total = min(self.max_total or exc.n_ctx, exc.n_ctx)
                if self.max_input is not None and self.max_input >= exc.n_ctx:
                    self.max_input = None  # one context for prompt and answer: room is kept for both
            limit = self.input_limit(max_new_tokens)
            if limit is None or limit >= len(prompt.ids):
                limit = len(prompt.ids) // 2
            log.info(
                "%s found a prompt of %d tokens too long (%s); asking for %d", self.label, len(prompt.ids), exc, limit
            )
            return PromptTooLong(str(exc), limit)
        tok = self.tokenizer
        if exc.kind != "validation" or tok is None or tok.exact or len(prompt.ids) < 64:
            return exc
        # A prompt cut by estimate that the server found too long: once more at half the size.
        log.info("%s rejected an estimated prompt (%s); asking for half its size", self.label, exc)
        return PromptTooLong(str(exc), len(prompt.ids) // 2)

    def answer_room(self, max_new_tokens: int | None = None) -> int:
        """Tokens kept free after a prompt for the answer (``maxNewTokens`` unless given), within a
        known context, of which the prompt keeps at least half."""
        n_ctx = self.max_total
        wanted = self.settings.max_new_tokens if max_new_tokens is None else max_new_tokens
        return min(wanted, n_ctx // 2) if n_ctx else 0

    @staticmethod
    def _take(
        piece: Piece, out: _Samples, req: GenerationRequest, checks: list[StopCheck | None], stops: list[str]
    ) -> bool:
        """Add a streamed piece to its sample; True when we end that sample before the server does."""
        i = piece.index
        if not 0 <= i < len(out.texts) or out.done[i]:
            return False  # a sample already complete
        if piece.prompt_eval is not None:
            out.prompt_eval = piece.prompt_eval
        if piece.generated is not None:
            out.generated = (out.generated or 0) + piece.generated
        if piece.text:
            out.texts[i] += piece.text
            out.pieces += 1
        check = checks[i]
        for stop in stops:
            if stop in out.texts[i]:  # a server that streams the stop text itself: we end it
                out.texts[i] = out.texts[i][: out.texts[i].index(stop)].removesuffix(" ")
                out.reasons[i], out.done[i] = "eot", True
                return True
        if piece.stop is not None:  # the server ended it
            out.reasons[i], out.done[i] = piece.stop, True
            return False
        if req.cancel.is_set():
            raise Cancelled()
        if check is not None and check(out.texts[i]):
            out.reasons[i], out.done[i] = "early", True
            return True
        return False

    def open(
        self, prompt: EnginePrompt, req: GenerationRequest, deadline: float | None, group: Group
    ) -> tuple[EventStream, int]:
        """Start the streaming request for ``group``'s samples; returns the stream and the
        prompt's length in tokens."""
        raise NotImplementedError

    def parse(self, data: Any) -> list[Piece]:
        """Turn one event's JSON into pieces (raises EngineError for error events)."""
        raise NotImplementedError

    def send(self, prompt: EnginePrompt) -> TextPrompt:
        """The prompt as text, for a server that takes no ids."""
        return self.send_chat(prompt) if isinstance(prompt, ChatPrompt) else self.send_text(prompt)

    def send_text(self, prompt: Prompt) -> TextPrompt:
        """The prompt as text, checked against the server's tokenization where one is known."""
        tok = self.tokenizer
        assert tok is not None
        sp = tok.special
        sent = text_prompt(prompt, tok.text_encoder(), (sp.pre, sp.suf, sp.mid))
        self.prompts["exact" if sent.exact else "adjusted" if sent.adjusted else "inexact"] += 1
        return sent

    def send_chat(self, prompt: ChatPrompt) -> TextPrompt:
        """A chat prompt as text (see :func:`codellama_ls.prompt.chat.server_text`), checked like ``send_text``."""
        text = server_text(prompt)
        tok = self.tokenizer
        encode = tok.text_encoder() if tok is not None else None
        ids = encode(text) if encode is not None else []
        exact = ids == prompt.ids
        self.prompts["chatExact" if exact else "chatInexact"] += 1
        return TextPrompt(text, exact, False, ids)

    def check_fit(self, prompt: EnginePrompt, max_new_tokens: int, margin: int = 0) -> None:
        """Raise :class:`PromptTooLong` for an infilling prompt the server would reject (built before
        its limits were known); ``margin``: tokens a prompt sent as text may grow by when the server
        tokenizes it. Chat prompts are built within the server's limits (``chat_limit``) and go as they are."""
        if isinstance(prompt, ChatPrompt):
            return
        limit = self.input_limit(max_new_tokens)
        if limit is not None and len(prompt.ids) + margin > limit:
            raise PromptTooLong(
                f"codellama-ls: {self.label} at {self.http.shown} takes at most {limit} prompt tokens",
                max(limit - margin, 8),
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

    def status(self) -> dict[str, Any]:
        out = super().status()
        out["url"] = self.http.shown
        out["prompts"] = dict(self.prompts)
        out["tokenizer"] = self.tokenizer_source
        return out

    def close(self) -> None:
        with self._lock:
            pool, self._samplers = self._samplers, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        self.http.close()


def stop_texts(prompt: EnginePrompt) -> list[str]:
    """What a server is asked to stop at: an infill ends with ``<EOT>``; an Instruct answer ends at
    EOS, where servers stop anyway."""
    return [] if isinstance(prompt, ChatPrompt) else list(STOP)


def _json(event: Any, label: str) -> Any:
    try:
        return event.json()
    except ValueError as exc:
        shown = event.data[:80]
        raise EngineError(f"codellama-ls: {label} sent an event that is not JSON: {shown!r}", "protocol") from exc
