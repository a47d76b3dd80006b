"""The pipeline behind every suggestion: cursor → prompt → engine → post-processing.

The LSP handlers in ``lsp/server.py`` only translate to and from protocol types; everything a
request does happens here, on the state of a :class:`~codellama_ls.session.Session`, so the CLI
and the evaluation harness run exactly the same code.
Whatever fails inside a request — its document closed meanwhile, the tokenizer, the prompt,
the engine, post-processing — costs that suggestion, not the request: it is answered empty
and the user gets one message per kind of failure (details go to the log).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from lsprotocol import types

from codellama_ls import postprocess, redact
from codellama_ls.config import Settings
from codellama_ls.context.block import EMPTY, ContextBlock
from codellama_ls.documents import Cursor, units
from codellama_ls.engines.base import (
    Cancelled,
    Engine,
    EngineError,
    GenerationRequest,
    GenerationResult,
    PromptTooLong,
    StopCheck,
)
from codellama_ls.prompt.fim import Prompt, build_prompt, next_cut_prompt, prompt_budget
from codellama_ls.prompt.memo import MemoTokenizer
from codellama_ls.prompt.tokens import PromptTokenizer
from codellama_ls.session import Session

log = logging.getLogger(__name__)


class RequestFailed(Exception):
    """A stage of a request failed in a way already reported; the request answers empty."""


@dataclass
class Answer:
    """A suggestion placed in the document: replace [start, end) of ``line`` with ``text``.

    ``line_text`` is the cursor line as the request saw it: client positions are computed
    from it, so an answer stays well-formed even if the document changed or closed meanwhile.
    """

    text: str  # in the document's line endings
    line: int
    start: int  # python index in the line
    end: int
    result: GenerationResult | None = None
    line_text: str = ""
    id: str = ""  # what the editor names when it reports accepting it (``codellama.accepted``)

    def position(self, index: int, encoding: str) -> types.Position:
        """The client position of a python index into the cursor line."""
        return types.Position(line=self.line, character=units(self.line_text[:index], encoding))

    def range(self, encoding: str) -> types.Range:
        return types.Range(start=self.position(self.start, encoding), end=self.position(self.end, encoding))


class Pipeline:
    """Turns a request at a cursor into suggestions, on a session's state; also warms where the cursor
    rests and prefetches what follows a shown suggestion."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._memo: MemoTokenizer | None = None
        self._prefetched: OrderedDict[tuple[Any, ...], None] = OrderedDict()  # answers a prefetch made
        self._ahead: tuple[str, list[int], asyncio.Future[int | None]] | None = None  # the last look-ahead queued

    # -- prompts -------------------------------------------------------------------------
    def build(self, cursor: Cursor, tok: PromptTokenizer) -> Prompt:
        """The exact prompt at ``cursor`` (raises what the tokenizer raises)."""
        s = self.session.settings
        if self._memo is None or self._memo.tok is not tok:
            self._memo = MemoTokenizer(tok)  # same ids; a keystroke re-tokenizes only its own line
        budget = fim_budget(s, self.session.engine)
        context = self._context_block(cursor, self._memo, budget)
        return fit_prompt(self._memo, s, cursor.prefix, cursor.suffix, budget, context)

    def _context_block(self, cursor: Cursor, tok: PromptTokenizer, budget: int) -> ContextBlock:
        """Code from other files for this cursor, within ``contextTokens`` (and half the prompt, which
        ``build_prompt`` allows a block). A failure here costs the context, not the suggestion."""
        tokens = min(self.session.settings.context_tokens, max(budget - 4, 0) // 2)
        if tokens <= 0 or not cursor.uri:
            return EMPTY
        with self._stage("context", fatal=False):
            return self.session.context.block(cursor.uri, cursor.language_id, cursor.prefix, cursor.suffix, tokens, tok)
        return EMPTY

    # -- suggestions ---------------------------------------------------------------------
    async def suggest(self, uri: str, position: types.Position) -> Answer | None:
        """The suggestion at a position, or None (disabled, loading, superseded, failed, nothing good).

        Only a request for an unknown document or position raises (KeyError, PositionError):
        that is the client's mistake, answered as InvalidParams.
        """
        answers = await self.suggestions(uri, position)
        return answers[0] if answers else None

    async def suggestions(self, uri: str, position: types.Position, *, invoked: bool = False) -> list[Answer]:
        """The suggestions at a position, the first being what :meth:`suggest` gives.

        ``invoked``: the user asked explicitly; up to the ``suggestions`` setting are made, and
        nothing waits for typing to pause. Otherwise (typing) one is made, as cheaply as possible.
        """
        arrived = time.perf_counter()
        _, cursor = self.session.cursor(uri, position)
        if not self.session.settings.enable:
            return []
        samples = self.session.settings.suggestions if invoked else 1
        try:
            return await self._suggest(uri, cursor, arrived, samples, invoked)
        except RequestFailed:
            return []

    async def _suggest(self, uri: str, cursor: Cursor, arrived: float, samples: int, invoked: bool) -> list[Answer]:
        ctx = postprocess.Context.from_cursor(cursor)
        with self._stage("cache"):
            typed = self.session.caches.typed.follow(uri, ctx)
        if len(typed) >= samples:  # the user typed the start of a suggestion on screen: the rest of those it matches
            self.session.scheduler.cancel(uri)
            # into the completion cache as well, once the answer is out (pygls sends it in a later callback)
            asyncio.get_running_loop().call_later(0.01, self._cache_typed, cursor, typed)
            return self._show(uri, cursor, ctx, typed, None, "typed", arrived)
        engine = self.session.engine
        if not engine.ready:
            self.session.host.report_unready()
            return []
        s = self.session.settings
        tok = engine.tokenizer
        if tok is None:
            return []
        with self._stage("prompt"):
            prompt = self.build(cursor, tok)
        with self._stage("cache"):
            key = self._result_key(prompt)
            cached = self.session.caches.results.get(key, samples)
        if cached is not None:  # this prompt was answered before (undo, moving back and forth, a prefetch)
            self.session.scheduler.cancel(uri)
            if key in self._prefetched:
                del self._prefetched[key]
                self.session.counters.prefetches_used += 1
            answers = self._show(uri, cursor, ctx, list(cached.suggestions[:samples]), cached.result, "cache", arrived)
            # accepting this one may follow (Tab, Tab, ...)
            self._work_ahead(uri, cursor, prompt, cached.suggestions[0] if cached.suggestions else None)
            return answers

        def job(cancel: threading.Event) -> GenerationResult:
            result = generate_fitted(engine, self._request(prompt, ctx, uri, cancel, samples=samples), s)
            self.session.counters.count(result, cancel)
            return result

        wait = 0.0 if invoked or not engine.needs_debounce else self.session.pace.debounce(uri, s.debounce_ms / 1000)
        result = await self._generate(uri, job, arrived, wait)
        self.session.host.show_notices()
        if result is None or result.stop_reason in ("cancelled", "timeout"):
            return []
        if uri not in self.session.documents:  # closed while the model ran: nobody waits for this answer
            log.info("%s was closed while its suggestion was made", uri)
            return []
        with self._stage("postprocess"):
            suggestions = distinct(
                postprocess.postprocess(text, ctx, truncated=reason == "length")
                for text, reason in zip(result.texts, result.stop_reasons, strict=True)
            )
        self.session.caches.results.put(key, suggestions, result, samples)
        answers = self._show(uri, cursor, ctx, suggestions, result, "model", arrived)
        self._work_ahead(uri, cursor, prompt, suggestions[0] if suggestions else None)
        return answers

    # -- work nobody waits for -----------------------------------------------------------
    def warm(self, uri: str, position: types.Position) -> str:
        """The cursor rests at ``position``: compute its prompt into the engine's cache at low priority
        (``Scheduler.background``), so the request that follows skips the prefill. Returns what was
        done, for the log. Raises KeyError / PositionError for an unknown document or position."""
        _, cursor = self.session.cursor(uri, position)
        self.session.counters.warm_requests += 1
        engine = self.session.engine
        if not self.session.settings.enable:
            return "nothing to do: suggestions are off"
        if not engine.ready or engine.tokenizer is None:
            return "nothing to do: the model is not ready"
        if not engine.keeps_prompts:
            return f"nothing to do: the {engine.name} engine keeps no prompt cache"
        with self._stage("prompt"):
            prompt = self.build(cursor, engine.tokenizer)
        if self._result_key(prompt) in self.session.caches.results:
            self._look_ahead(uri, cursor, prompt)
            return f"{len(prompt.ids)} tokens, answered from memory already"
        request = GenerationRequest(prompt=prompt, max_new_tokens=self.session.settings.max_new_tokens, key=uri)

        def job(cancel: threading.Event) -> int:
            request.cancel = cancel
            computed = engine.warm(request)
            self.session.counters.warm_prefills += computed > 0
            self.session.counters.warm_tokens += computed
            return computed

        self.session.scheduler.background("warm", job).add_done_callback(_log_failure)
        self._look_ahead(uri, cursor, prompt)  # queued behind the warm-up
        return f"{len(prompt.ids)} tokens"

    def _work_ahead(self, uri: str, cursor: Cursor, prompt: Prompt, shown: postprocess.Suggestion | None) -> None:
        """Once the answer is out (pygls sends it in a later callback; building these prompts takes a few
        ms): prefetch what follows accepting ``shown``, then the look-ahead, both queued at low priority."""

        def queue() -> None:
            if shown is not None:
                self._prefetch(uri, cursor, shown)
            self._look_ahead(uri, cursor, prompt)

        asyncio.get_running_loop().call_later(0.01, queue)

    def _look_ahead(self, uri: str, cursor: Cursor, prompt: Prompt) -> None:
        """Compute, when the engine is idle, the prompt at ``cursor`` as it will be after the next step of
        its moving cut (:func:`next_cut_prompt`), beside the current one: typing on past that step then
        computes what was typed since instead of the whole prefix."""
        engine = self.session.engine
        if not engine.keeps_look_ahead or engine.tokenizer is None or self._memo is None:
            return
        s = self.session.settings
        with self._stage("prompt", quiet=True):
            budget = fim_budget(s, engine)
            ahead = fit_next_cut(self._memo, s, cursor.prefix, cursor.suffix, budget, prompt.context_block)
            if ahead is None or ahead.ids == prompt.ids:
                return
            pending = self._ahead
            if pending is not None and pending[0] == uri and pending[1] == ahead.ids and not pending[2].done():
                return  # queued or running already
            request = GenerationRequest(prompt=ahead, max_new_tokens=s.max_new_tokens, key=uri)

            def job(cancel: threading.Event) -> int:
                request.cancel = cancel
                computed = engine.warm(request, ahead=True)
                self.session.counters.ahead_prefills += computed > 0
                self.session.counters.ahead_tokens += computed
                return computed

            future = self.session.scheduler.background("ahead", job)
            future.add_done_callback(_log_failure)
            self._ahead = (uri, ahead.ids, future)

    def _prefetch(self, uri: str, cursor: Cursor, shown: postprocess.Suggestion) -> None:
        """Compute, when the engine is idle, the answer at the end of ``shown`` in the document as if it
        were accepted, into the completion cache: Tab and the next keystroke are then answered from memory."""
        engine = self.session.engine
        if not engine.keeps_prompts or engine.tokenizer is None or not shown.text:
            return
        after = replace(
            cursor, prefix=cursor.prefix + shown.text, suffix=cursor.suffix[shown.replace :], line_text="", index=0
        )
        with self._stage("prompt", quiet=True):
            prompt = self.build(after, engine.tokenizer)
            key = self._result_key(prompt)
            if key in self.session.caches.results:
                return
            ctx = postprocess.Context.from_cursor(after)

            def job(cancel: threading.Event) -> GenerationResult:
                request = self._request(prompt, ctx, uri, cancel, counted=False)
                result = generate_fitted(engine, request, self.session.settings)
                self.session.counters.count(result, prefetch=True)
                return result

            def done(future: asyncio.Future[GenerationResult | None]) -> None:
                result = None if future.cancelled() or future.exception() else future.result()
                _log_failure(future)
                if result is None or result.stop_reason in ("cancelled", "timeout"):
                    return
                try:
                    suggestion = postprocess.postprocess(result.text, ctx, truncated=result.stop_reason == "length")
                except Exception:  # a missed prefetch only
                    log.exception("post-processing a prefetched answer failed")
                    return
                self.session.caches.results.put(key, distinct([suggestion]), result, 1)
                self.session.counters.prefetches += 1
                self._prefetched[key] = None
                while len(self._prefetched) > 64:
                    self._prefetched.popitem(last=False)

            self.session.scheduler.background("prefetch", job).add_done_callback(done)

    async def _generate(
        self, uri: str, job: Callable[[threading.Event], GenerationResult], arrived: float, wait_s: float = 0.0
    ) -> GenerationResult | None:
        """Run ``job`` through the scheduler after ``wait_s`` from the keystroke (the debounce);
        every engine failure becomes one message per kind."""
        s = self.session.settings
        try:
            result: GenerationResult | None = await self.session.scheduler.run(
                uri,
                job,
                debounce_s=max(0.0, wait_s - (time.perf_counter() - arrived)),  # from the keystroke
                timeout_s=s.generation_timeout_ms / 1000 + 1.0,
                arrived=arrived,
            )
        except Cancelled:
            return None
        except EngineError as exc:
            self._report_engine_error(exc)
            return None
        except TimeoutError as exc:
            self.session.notifier.once(
                "gen:timeout", f"codellama-ls: {exc}; the suggestion was skipped.", types.MessageType.Warning
            )
            return None
        except Exception as exc:  # a device fault or an engine bug costs this suggestion, not the server
            log.exception("generation failed")
            name = type(exc).__name__
            kind = types.MessageType.Warning if "OutOfMemory" in name else types.MessageType.Error
            text = redact.without_paths(str(exc))[:200]
            self.session.notifier.once(
                "gen:" + name, f"codellama-ls: generation failed ({name}: {text}); skipped.", kind
            )
            return None
        if result is not None and result.stop_reason == "timeout":
            self.session.notifier.once(
                "gen:timeout",
                f"codellama-ls: generation took longer than generationTimeoutMs ({s.generation_timeout_ms} ms); "
                "the suggestion was skipped.",
                types.MessageType.Warning,
            )
        return result

    def _report_engine_error(self, exc: EngineError) -> None:
        # A server still loading its model is information (suggestions start by themselves).
        kind = {"oom": types.MessageType.Warning, "loading": types.MessageType.Info}.get(
            exc.kind, types.MessageType.Error
        )
        self.session.notifier.once("gen:" + exc.kind, str(exc), kind)

    def _stage(self, stage: str, *, fatal: bool = True, quiet: bool = False) -> _Stage:
        return _Stage(self, stage, fatal, quiet)

    def _request(
        self,
        prompt: Prompt,
        ctx: postprocess.Context,
        uri: str,
        cancel: threading.Event,
        *,
        samples: int = 1,
        counted: bool = True,
    ) -> GenerationRequest:
        """A generation of ``prompt`` with the settings' limits and post-processing's early stop;
        ``counted=False`` for work nobody asked for yet (a prefetch), which the engine does not count."""
        s = self.session.settings
        return GenerationRequest(
            prompt=prompt,
            max_new_tokens=s.max_new_tokens,
            temperature=s.temperature,
            top_p=s.top_p,
            cancel=cancel,
            stop_check=lambda: self._stop_check(ctx),
            timeout_s=s.generation_timeout_ms / 1000,
            key=uri,
            samples=samples,
            counted=counted,
        )

    def _stop_check(self, ctx: postprocess.Context) -> StopCheck:
        """Post-processing's early stop, made safe to call from the engine: a failure in it only
        turns early stop off for that request (post-processing then reports it once)."""
        check = postprocess.stop_check(ctx)

        def safe(text: str) -> bool:
            try:
                return check(text)
            except Exception:
                log.exception("the early-stop check failed; decoding on")
                return False

        return safe

    def _cache_typed(self, cursor: Cursor, typed: list[postprocess.Suggestion]) -> None:
        """Put a typed-through answer in the completion cache too, so coming back to it is free as well."""
        engine = self.session.engine
        if not engine.ready or engine.tokenizer is None:
            return
        try:
            prompt = self.build(cursor, engine.tokenizer)
            texts = [t.text for t in typed]
            result = GenerationResult(texts[0], 0, 0, len(prompt.ids), "typed", texts=texts)
            self.session.caches.results.put(self._result_key(prompt), typed, result, len(typed))
        except Exception:  # only a missed cache entry; the answer went out already
            log.exception("caching a typed-through answer failed")

    def _result_key(self, prompt: Prompt) -> tuple[Any, ...]:
        """What decides a model's answer: the prompt text and the generation settings."""
        s = self.session.settings
        return self.session.caches.results.key(prompt, s.max_new_tokens, s.temperature, s.top_p)

    def _show(
        self,
        uri: str,
        cursor: Cursor,
        ctx: postprocess.Context,
        suggestions: list[postprocess.Suggestion],
        result: GenerationResult | None,
        source: str,
        arrived: float,
    ) -> list[Answer]:
        """Answer with ``suggestions`` at ``cursor`` (analysed as ``ctx``), remember them as on screen
        (for typing through) and count them as shown (each gets the id the editor reports acceptance with)."""
        self.session.caches.typed.remember(uri, ctx, suggestions)
        ms = elapsed_ms(arrived)
        self.session.caches.answered(source, ms)
        answers = [edit(cursor, suggestion, result) for suggestion in suggestions]
        if answers:
            ids = self.session.acceptance.shown(cursor.language_id, source, ms, [a.text for a in answers])
            for answer, answer_id in zip(answers, ids, strict=True):
                answer.id = answer_id
        return answers


# What each stage is called in a message to the user.
_STAGE_NAMES = {
    "cache": "the answer cache",
    "prompt": "building the prompt",
    "postprocess": "post-processing",
    "context": "context from other files",
}


class _Stage:
    """``with pipeline._stage("prompt"):`` turns any failure of that stage into one message per
    kind and a :class:`RequestFailed` (the request answers empty). A stage that is not ``fatal``
    (context) is reported the same way, and the request goes on without what it would have added."""

    def __init__(self, pipeline: Pipeline, stage: str, fatal: bool = True, quiet: bool = False) -> None:
        self.pipeline = pipeline
        self.stage = stage
        self.fatal = fatal
        self.quiet = quiet  # work nobody waits for: its failure is logged, never shown, and skips only itself

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, RequestFailed):
            return False
        if self.quiet:  # the next request meets the same fault and says so, once
            log.info("%s for work ahead failed: %s", self.stage, redact.without_paths(str(exc))[:200])
            return True
        if isinstance(exc, EngineError):  # a server's /tokenize failing: the engine's kind of failure
            self.pipeline._report_engine_error(exc)
        else:
            log.error("%s failed", self.stage, exc_info=exc)
            name = type(exc).__name__
            what = _STAGE_NAMES.get(self.stage, self.stage)
            outcome = "the suggestion was skipped" if self.fatal else "suggestions go on without it"
            self.pipeline.session.notifier.once(
                f"{self.stage}:{name}",
                f"codellama-ls: {what} failed ({name}); {outcome}. The server log has the details.",
            )
        if not self.fatal:
            return True
        raise RequestFailed() from exc


def fim_budget(settings: Settings, engine: Engine) -> int:
    """The prompt budget: the settings' within the engine's limits as they are now."""
    return prompt_budget(settings.max_prompt_tokens, engine.context_length, settings.max_new_tokens)


def fit_prompt(
    tok: PromptTokenizer, settings: Settings, prefix: str, suffix: str, budget: int, context: ContextBlock
) -> Prompt:
    """The infilling prompt for ``prefix``/``suffix`` within ``budget``: how every prompt is built and,
    when an engine asks for a smaller one, built again."""
    return build_prompt(
        tok,
        prefix,
        suffix,
        fmt=settings.fim_format,
        budget=budget,
        prefix_share=settings.prefix_share,
        stable_cut=True,  # typing at the cursor keeps the start of the prompt: its KV cache stays valid
        context=context,
    )


def fit_next_cut(
    tok: PromptTokenizer, settings: Settings, prefix: str, suffix: str, budget: int, context: ContextBlock
) -> Prompt | None:
    """What :func:`fit_prompt` will build at this cursor once typing moves the prompt's cut by its next
    step (None when no cut moves with typing)."""
    return next_cut_prompt(
        tok, prefix, suffix, fmt=settings.fim_format, budget=budget, prefix_share=settings.prefix_share, context=context
    )


def generate_fitted(engine: Engine, request: GenerationRequest, settings: Settings) -> GenerationResult:
    """``engine.generate(request)``; an infilling prompt the engine finds too long (:class:`PromptTooLong`:
    limits learnt after it was built, or from the server's refusal) is built again once, within the
    engine's limits as they are now and the limit it asks for, and generated from once more."""
    try:
        return engine.generate(request)
    except PromptTooLong as exc:
        prompt, tok = request.prompt, engine.tokenizer
        if not isinstance(prompt, Prompt) or tok is None:
            raise
        budget = min(fim_budget(settings, engine), exc.limit)
        smaller = fit_prompt(tok, settings, prompt.prefix, prompt.suffix, budget, prompt.context_block)
        log.info(
            "%s asked for a prompt of at most %d tokens; built one of %d", engine.name, exc.limit, len(smaller.ids)
        )
        return engine.generate(replace(request, prompt=smaller))


def edit(cursor: Cursor, suggestion: postprocess.Suggestion, result: GenerationResult | None) -> Answer:
    """A suggestion as an edit of the cursor line, in the document's line endings."""
    text = suggestion.text.replace("\n", cursor.eol) if cursor.eol != "\n" else suggestion.text
    end = cursor.index + suggestion.replace
    return Answer(text, cursor.line, cursor.index, end, result, cursor.line_text)


def distinct(suggestions: Iterable[postprocess.Suggestion | None]) -> list[postprocess.Suggestion]:
    """The suggestions worth showing, in order, each once."""
    out: list[postprocess.Suggestion] = []
    for suggestion in suggestions:
        if suggestion is not None and suggestion not in out:
            out.append(suggestion)
    return out


def _log_failure(future: asyncio.Future[Any]) -> None:
    """A warm-up or prefetch that failed costs nothing but itself: logged, never shown."""
    if not future.cancelled() and (exc := future.exception()) is not None:
        log.warning("background work failed: %s: %s", type(exc).__name__, redact.without_paths(str(exc))[:200])


def elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000
