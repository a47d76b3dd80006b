"""The pipeline behind every suggestion: cursor → prompt → engine → post-processing.

The LSP handlers in ``server.py`` only translate to and from protocol types; everything a
request does happens here, so the CLI and the evaluation harness run exactly the same code.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from lsprotocol import types

from codellama_ls import health, postprocess
from codellama_ls.cache import AnswerCaches
from codellama_ls.config import Settings
from codellama_ls.documents import Cursor, Document, DocumentStore
from codellama_ls.engines import create_engine
from codellama_ls.engines.base import (
    Cancelled,
    Engine,
    EngineError,
    EngineState,
    GenerationRequest,
    GenerationResult,
    ProgressFn,
)
from codellama_ls.prompt import Prompt, build_prompt, prompt_budget
from codellama_ls.scheduler import Scheduler
from codellama_ls.token_memo import MemoTokenizer
from codellama_ls.tokens import CodeTokenizer

log = logging.getLogger(__name__)

# Settings whose change needs a new engine (the rest apply to the next request).
RELOAD_KEYS = ("model", "tokenizer", "engine", "url", "api_token", "device", "dtype", "quantization")
# How long a reload waits for a cancelled generation to stop before leaving it behind.
DRAIN_TIMEOUT_S = 10.0


@dataclass
class Answer:
    """A suggestion placed in the document: replace [start, end) of ``line`` with ``text``."""

    text: str  # in the document's line endings
    line: int
    start: int  # python index in the line
    end: int
    result: GenerationResult | None = None


class Notifier:
    """How the pipeline talks to the user; the server passes LSP-backed callables."""

    def __init__(
        self,
        show: Callable[[str, types.MessageType], None] | None = None,
        progress: Callable[[], Awaitable[ProgressFn | None]] | None = None,
    ) -> None:
        self._show = show or (lambda message, kind: log.warning("%s", message))
        self._progress = progress
        self._shown: set[str] = set()

    def show(self, message: str, kind: types.MessageType = types.MessageType.Error) -> None:
        self._show(message, kind)

    def once(self, key: str, message: str, kind: types.MessageType = types.MessageType.Error) -> None:
        """Show a message once per kind of failure, not once per keystroke."""
        if key in self._shown:
            log.info("%s", message)
            return
        self._shown.add(key)
        self.show(message, kind)

    def reset(self, prefix: str = "") -> None:
        self._shown = {k for k in self._shown if not k.startswith(prefix)} if prefix else set()

    async def progress(self) -> ProgressFn | None:
        """A thread-safe load-progress reporter, when the client can show one."""
        return await self._progress() if self._progress else None


class CompletionService:
    """Owns the documents, the settings, the engine and the scheduler."""

    def __init__(self, settings: Settings | None = None, notifier: Notifier | None = None) -> None:
        self.settings = settings or Settings()
        self.notifier = notifier or Notifier()
        self.documents = DocumentStore()
        self.scheduler = Scheduler()
        self.engine: Engine = _NoEngine()
        self._prompt_tokenizer: CodeTokenizer | None = None
        self._memo: MemoTokenizer | None = None
        self.caches = AnswerCaches()
        self._load_lock = threading.Lock()
        self._load_task: asyncio.Future[Any] | None = None
        self.encoding: str = types.PositionEncodingKind.Utf16

    # -- settings ------------------------------------------------------------------------
    def configure(self, changes: dict[str, Any]) -> bool:
        """Apply settings from the client; report bad ones; True when the engine must reload."""
        new, errors = self.settings.updated(changes)
        for error in errors:
            self.notifier.show(f"codellama-ls: {error}; keeping the previous value.", types.MessageType.Error)
        reload = any(getattr(new, k) != getattr(self.settings, k) for k in RELOAD_KEYS)
        self.settings = new
        if reload:
            self._prompt_tokenizer = None
        if hasattr(self.engine, "settings") and not reload:
            self.engine.settings = new  # type: ignore[attr-defined]
        return reload

    # -- engine --------------------------------------------------------------------------
    async def load_engine(self) -> None:
        """(Re)load the engine in a worker thread; the LSP loop keeps answering meanwhile."""
        old = self.engine
        self.scheduler.cancel_all()
        self.caches.results.clear()  # answers of the old engine
        try:
            engine = create_engine(self.settings)
        except EngineError as exc:
            self.engine = _NoEngine(str(exc))
            self.notifier.once("load:" + str(exc), str(exc))
            return
        engine.state = EngineState.LOADING
        self.engine = engine
        self.notifier.reset("load:")
        progress = await self.notifier.progress()
        try:
            await asyncio.to_thread(self._load, old, engine, progress)
        except Exception as exc:  # EngineError, or any bug in an engine's loader: report, keep serving
            if progress is not None:
                progress("Loading failed", 100)
            message = str(exc)
            if not isinstance(exc, EngineError):
                log.exception("loading the engine failed")
                message = f"Loading the engine failed: {type(exc).__name__}: {exc}"
                engine.state, engine.error = EngineState.FAILED, message
            self.notifier.once("load:" + message, message)
            return
        self._prompt_tokenizer = engine.tokenizer

    def _load(self, old: Engine, engine: Engine, progress: ProgressFn | None) -> None:
        with self._load_lock:
            # The old engine may still be generating a (cancelled) request: let it stop before
            # its model is freed under it. A call stuck longer than this is left behind.
            self.scheduler.drain(DRAIN_TIMEOUT_S)
            old.close()
            engine.load(progress)

    def start_loading(self) -> asyncio.Future[Any]:
        self._load_task = asyncio.ensure_future(self.load_engine())
        return self._load_task

    # -- prompts -------------------------------------------------------------------------
    def tokenizer(self) -> CodeTokenizer:
        """The engine's tokenizer, or one loaded on its own (``codellama/prompt`` needs no model)."""
        if self.engine.tokenizer is not None:
            return self.engine.tokenizer
        if self._prompt_tokenizer is None:
            self._prompt_tokenizer = CodeTokenizer.load(self.settings.tokenizer or self.settings.model)
        return self._prompt_tokenizer

    def build(self, cursor: Cursor, tok: CodeTokenizer | None = None) -> Prompt:
        s = self.settings
        tok = tok or self.tokenizer()
        if self._memo is None or self._memo.tok is not tok:
            self._memo = MemoTokenizer(tok)  # same ids; a keystroke re-tokenizes only its own line
        budget = prompt_budget(s.max_prompt_tokens, self.engine.context_length, s.max_new_tokens)
        return build_prompt(
            self._memo,  # type: ignore[arg-type]
            cursor.prefix,
            cursor.suffix,
            fmt=s.fim_format,
            budget=budget,
            prefix_share=s.prefix_share,
            stable_cut=True,  # typing at the cursor keeps the start of the prompt: its KV cache stays valid
        )

    def cursor(self, uri: str, position: types.Position) -> tuple[Document, Cursor]:
        """Raises KeyError (unknown document) or PositionError (bad position)."""
        doc = self.documents.get(uri)
        return doc, doc.cursor(position, self.encoding)

    # -- suggestions ---------------------------------------------------------------------
    async def suggest(self, uri: str, position: types.Position) -> Answer | None:
        """The suggestion at a position, or None (disabled, loading, superseded, nothing good)."""
        arrived = time.perf_counter()
        _, cursor = self.cursor(uri, position)
        if not self.settings.enable:
            return None
        ctx = postprocess.Context.from_cursor(cursor)
        typed = self.caches.typed.follow(uri, ctx)
        if typed is not None:  # the user typed the start of the suggestion on screen: show its rest
            self.scheduler.cancel(uri)
            # into the completion cache as well, once the answer is out (pygls sends it in a later callback)
            asyncio.get_running_loop().call_later(0.01, self._cache_typed, cursor, typed)
            return self._show(uri, cursor, typed, None, "typed", arrived)
        engine = self.engine
        if not engine.ready:
            if engine.state is EngineState.FAILED and engine.error:
                self.notifier.once("load:" + engine.error, engine.error)
            return None
        s = self.settings
        prompt = self.build(cursor, engine.tokenizer)
        key = self._result_key(prompt)
        cached = self.caches.results.get(key)
        if cached is not None:  # this prompt was answered before (undo, moving back and forth)
            self.scheduler.cancel(uri)
            return self._show(uri, cursor, *cached, "cache", arrived)

        def job(cancel: threading.Event) -> GenerationResult:
            request = GenerationRequest(
                prompt=prompt,
                max_new_tokens=s.max_new_tokens,
                temperature=s.temperature,
                top_p=s.top_p,
                cancel=cancel,
                should_stop=postprocess.stop_check(ctx),
                timeout_s=s.generation_timeout_ms / 1000,
                key=uri,
            )
            return engine.generate(request)

        try:
            result = await self.scheduler.run(
                uri,
                job,
                debounce_s=max(0.0, s.debounce_ms / 1000 - (time.perf_counter() - arrived)),  # from the keystroke
                timeout_s=s.generation_timeout_ms / 1000 + 1.0,
            )
        except Cancelled:
            return None
        except EngineError as exc:
            kind = types.MessageType.Warning if exc.kind == "oom" else types.MessageType.Error
            self.notifier.once("gen:" + exc.kind, str(exc), kind)
            return None
        except TimeoutError as exc:
            self.notifier.once(
                "gen:timeout", f"codellama-ls: {exc}; the suggestion was skipped.", types.MessageType.Warning
            )
            return None
        except Exception as exc:  # a device fault or an engine bug costs this suggestion, not the server
            log.exception("generation failed")
            name = type(exc).__name__
            kind = types.MessageType.Warning if "OutOfMemory" in name else types.MessageType.Error
            self.notifier.once("gen:" + name, f"codellama-ls: generation failed ({name}: {exc}); skipped.", kind)
            return None
        if result is not None and result.stop_reason == "timeout":
            self.notifier.once(
                "gen:timeout",
                f"codellama-ls: generation took longer than generationTimeoutMs ({s.generation_timeout_ms} ms); "
                "the suggestion was skipped.",
                types.MessageType.Warning,
            )
        if result is None or result.stop_reason in ("cancelled", "timeout"):
            return None
        suggestion = postprocess.postprocess(result.text, ctx, truncated=result.stop_reason == "length")
        self.caches.results.put(key, suggestion, result)
        return self._show(uri, cursor, suggestion, result, "model", arrived)

    def _cache_typed(self, cursor: Cursor, typed: postprocess.Suggestion) -> None:
        """Put a typed-through answer in the completion cache too, so coming back to it is free as well."""
        if self.engine.ready:
            prompt = self.build(cursor, self.engine.tokenizer)
            result = GenerationResult(typed.text, 0, 0, len(prompt.ids), "typed")
            self.caches.results.put(self._result_key(prompt), typed, result)

    def _result_key(self, prompt: Prompt) -> tuple[Any, ...]:
        """What decides a model's answer: the prompt text and the generation settings."""
        s = self.settings
        return self.caches.results.key(prompt, s.max_new_tokens, s.temperature, s.top_p)

    def _show(
        self,
        uri: str,
        cursor: Cursor,
        suggestion: postprocess.Suggestion | None,
        result: GenerationResult | None,
        source: str,
        arrived: float,
    ) -> Answer | None:
        """Answer with ``suggestion`` and remember it as the one on screen (for typing through)."""
        self.caches.typed.remember(uri, postprocess.Context.from_cursor(cursor), suggestion)
        self.caches.answered(source, elapsed_ms(arrived))
        return None if suggestion is None else self.edit(cursor, suggestion, result)

    def place(self, cursor: Cursor, result: GenerationResult) -> Answer | None:
        """Post-process raw output and express it as an edit of the cursor line."""
        suggestion = postprocess.postprocess(
            result.text, postprocess.Context.from_cursor(cursor), truncated=result.stop_reason == "length"
        )
        return None if suggestion is None else self.edit(cursor, suggestion, result)

    @staticmethod
    def edit(cursor: Cursor, suggestion: postprocess.Suggestion, result: GenerationResult | None) -> Answer:
        """A suggestion as an edit of the cursor line, in the document's line endings."""
        text = suggestion.text.replace("\n", cursor.eol) if cursor.eol != "\n" else suggestion.text
        return Answer(text, cursor.line, cursor.index, cursor.index + suggestion.replace, result)

    def status(self) -> dict[str, Any]:
        """State for `codellama/status`, `:checkhealth` and status bars (secrets masked)."""
        return {
            **self.engine.status(),
            "enabled": self.settings.enable,
            "documents": len(self.documents),
            "scheduled": self.scheduler.started,
            **self.caches.status(),
            "settings": self.settings.to_dict(),
            **health.process(),
        }

    def shutdown(self) -> None:
        self.scheduler.shutdown()
        self.engine.close()


class _NoEngine(Engine):
    """Placeholder until the configured engine is loaded (or after it failed to be created)."""

    name = "none"

    def __init__(self, error: str | None = None) -> None:
        super().__init__()
        if error:
            self.state, self.error = EngineState.FAILED, error

    def load(self, progress: ProgressFn | None = None) -> None:
        return None

    def generate(self, request: GenerationRequest) -> GenerationResult:
        raise EngineError(self.error or "no engine", "not-ready")

    def close(self) -> None:
        return None


def elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000
