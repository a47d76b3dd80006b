"""The state of one editor session, which every handler gets: settings, documents, the engine and
its scheduler, the project context, caches, typing pace, acceptance and the model-work counters.

It changes state (settings, documents, the engine) and reports it (``status``); turning a request
into suggestions is the pipeline's job (``pipeline/completion.py``), and code actions' (``actions/``).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

from lsprotocol import types

from codellama_ls import health
from codellama_ls.config import Settings
from codellama_ls.context.service import ProjectContext
from codellama_ls.documents import Cursor, Document, DocumentStore
from codellama_ls.engines.base import Engine, GenerationResult
from codellama_ls.engines.host import EngineHost
from codellama_ls.notify import Notifier
from codellama_ls.pipeline.acceptance import Acceptance
from codellama_ls.pipeline.cache import AnswerCaches
from codellama_ls.pipeline.scheduler import Scheduler, TypingPace
from codellama_ls.prompt.tokens import CodeTokenizer, PromptTokenizer


@dataclass
class Counters:
    """The model's work, for ``codellama/status`` and the bench: what was computed, and how much of it
    nobody saw. Each counter has one writer: ``count`` and the warm-up figures run on the worker
    thread, the requests, prefetches made and prefetches used on the event loop."""

    prefill_tokens: int = 0  # prompt tokens computed
    decoded_tokens: int = 0  # tokens decoded for requests
    wasted_tokens: int = 0  # decoded for answers nobody saw (cancelled, superseded, timed out)
    wasted_generations: int = 0
    chunks: int = 0  # prefill chunks of the local engine
    interrupted_prefills: int = 0  # prefills a newer request stopped between chunks
    drafted_tokens: int = 0  # prompt-lookup drafts
    accepted_drafts: int = 0
    warm_requests: int = 0  # codellama/warm notifications
    warm_prefills: int = 0  # of which computed something
    warm_tokens: int = 0
    prefetches: int = 0  # answers made ahead for after an accept
    prefetches_used: int = 0
    prefetch_tokens: int = 0  # decoded by prefetches (their prompt tokens count in prefill_tokens)
    ahead_prefills: int = 0  # look-aheads computed (the prompt after the next step of a moving cut)
    ahead_tokens: int = 0  # their prompt tokens (used ones: ``kvCache.aheadUsed``)

    def count(self, result: GenerationResult, cancel: threading.Event | None = None, *, prefetch: bool = False) -> None:
        """Count one generation; a request's decoded tokens are wasted when it was cancelled or timed out."""
        self.prefill_tokens += result.prefill_tokens
        self.chunks += result.chunks
        self.interrupted_prefills += result.interrupted
        self.drafted_tokens += result.drafted
        self.accepted_drafts += result.accepted
        if prefetch:
            self.prefetch_tokens += result.new_tokens
            return
        self.decoded_tokens += result.new_tokens
        if (cancel is not None and cancel.is_set()) or result.stop_reason in ("cancelled", "timeout"):
            self.wasted_tokens += result.new_tokens
            self.wasted_generations += 1

    def status(self) -> dict[str, Any]:
        return {
            "prefillTokens": self.prefill_tokens,
            "tokens": self.decoded_tokens,
            "wastedTokens": self.wasted_tokens,
            "wastedGenerations": self.wasted_generations,
            "chunks": self.chunks,
            "interruptedPrefills": self.interrupted_prefills,
            "draftTokens": self.drafted_tokens,
            "draftsAccepted": self.accepted_drafts,
            "warm": {"requests": self.warm_requests, "prefills": self.warm_prefills, "tokens": self.warm_tokens},
            "prefetch": {"made": self.prefetches, "used": self.prefetches_used, "tokens": self.prefetch_tokens},
            "ahead": {"prefills": self.ahead_prefills, "tokens": self.ahead_tokens},
        }


class Session:
    """One editor's session: what it configured and opened, and the engine serving it."""

    def __init__(self, settings: Settings | None = None, notifier: Notifier | None = None) -> None:
        self.settings = settings or Settings()
        self.notifier = notifier or Notifier()
        self.documents = DocumentStore()
        self.scheduler = Scheduler()
        self.host = EngineHost(self.notifier, self.scheduler)
        self.caches = AnswerCaches()
        self.pace = TypingPace()  # keystroke intervals, for the debounce of remote engines
        self.acceptance = Acceptance()  # in memory only: see pipeline/acceptance.py
        self.encoding: str = types.PositionEncodingKind.Utf16
        self.context = ProjectContext(self.documents)  # code from other files; idle until the workspace is known
        self.counters = Counters()
        self._prompt_tokenizer: PromptTokenizer | None = None

    @property
    def engine(self) -> Engine:
        return self.host.engine

    # -- settings ------------------------------------------------------------------------
    def configure(self, changes: dict[str, Any]) -> bool:
        """Apply settings from the client; report bad ones; True when the engine must reload."""
        new, errors = self.settings.updated(changes)
        for error in errors:
            self.notifier.show(f"codellama-ls: {error}; keeping the previous value.", types.MessageType.Error)
        reload = not new.same_engine(self.settings)
        self.settings = new
        self.context.apply(new)
        if reload:
            self._prompt_tokenizer = None
        else:
            self.host.configure(new)
        return reload

    # -- engine --------------------------------------------------------------------------
    async def load_engine(self) -> None:
        """(Re)load the engine in a worker thread; the LSP loop keeps answering meanwhile."""
        self.scheduler.cancel_all()
        self.caches.results.clear()  # answers of the old engine
        if await self.host.load(self.settings):
            self._prompt_tokenizer = self.engine.tokenizer

    def start_loading(self) -> asyncio.Future[Any]:
        return asyncio.ensure_future(self.load_engine())

    async def prompt_tokenizer(self) -> PromptTokenizer:
        """The engine's tokenizer, or one loaded on its own (``codellama/prompt`` needs no model).

        Loading ``tokenizer.json`` takes seconds: it happens in a worker thread, once per setting.
        """
        if self.engine.tokenizer is not None:
            return self.engine.tokenizer
        if self._prompt_tokenizer is None:
            name = self.settings.tokenizer or self.settings.model
            self._prompt_tokenizer = await asyncio.to_thread(CodeTokenizer.load, name)
        return self._prompt_tokenizer

    # -- documents -----------------------------------------------------------------------
    def open(self, item: types.TextDocumentItem) -> Document:
        """A document opened: kept, and shown to the project context (a source of similar code)."""
        doc = self.documents.open(item)
        self.context.opened(doc.uri, doc.lf_text, doc.language_id)
        return doc

    def change(self, params: types.DidChangeTextDocumentParams) -> None:
        """An edit: applied, passed on to the project context, counted for the typing speed, and the
        generation in flight for the document's older text stops now (its answer could only be stale)."""
        if self.documents.change(params, self.encoding) is None:
            return  # not applied (unknown document, stale version): nothing changed
        uri = params.text_document.uri
        self.context.changed(uri)
        self.pace.keystroke(uri)
        self.scheduler.cancel(uri)

    def close(self, uri: str) -> None:
        """A document closed: its pending suggestion is answered empty at once and its decoding stops."""
        self.context.closed(uri)  # first: the index keeps an edited document's last text
        self.documents.close(uri)
        self.scheduler.cancel(uri)
        self.caches.typed.forget(uri)
        self.pace.forget(uri)

    def cursor(self, uri: str, position: types.Position) -> tuple[Document, Cursor]:
        """Raises KeyError (unknown document) or PositionError (bad position)."""
        doc = self.documents.get(uri)
        return doc, doc.cursor(position, self.encoding)

    # -- report --------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """State for `codellama/status`, `:checkhealth` and status bars (secrets masked)."""
        return {
            **self.engine.status(),
            "enabled": self.settings.enable,
            "documents": len(self.documents),
            "scheduled": self.scheduler.started,
            "wait": {  # before the last model call: the debounce, then the previous generation stopping
                "debounceMs": round(self.scheduler.last_debounce_s * 1000, 2),
                "queueMs": round(self.scheduler.last_queue_s * 1000, 2),
                "backgroundStopped": self.scheduler.background_stopped,  # warm/prefetch jobs a request stopped
            },
            "decode": self.counters.status(),
            **self.caches.status(),
            "context": self.context.status(),
            "acceptance": self.acceptance.status(),
            "settings": self.settings.to_dict(),
            **health.process(),
        }

    def shutdown(self) -> None:
        self.scheduler.shutdown()
        self.host.close()
        self.context.stop()
