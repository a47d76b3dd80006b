"""Code actions on the request side: which engine answers, the answer itself, and the plan it applies to.

The LSP layer (``lsp/actions.py``) turns requests into calls here and results into workspace edits;
nothing here knows about protocol types.

**Which engine.** Actions need Code Llama - Instruct (:func:`choose`): the completion engine when
its model is one (the ``model`` setting, or the model a remote server says it serves), else a second
engine named by ``instructUrl`` (remote engines: a second server of the same kind) or
``instructModel`` (a model loaded in this process), started on the first action with load progress.
With neither, no action is offered and ``codellama/status`` says why.

**Sharing the generation worker.** A local model can run one generation at a time, so actions on
the completion engine's local model go through the completion scheduler, under a key of their own:
typing never supersedes an action, and suggestions asked for meanwhile wait behind it. A second
engine, and a remote completion engine, get a scheduler (one worker thread) of their own: a
512-token answer does not hold up suggestions there. Every action is cancellable (its progress,
``$/cancelRequest``); it ends at EOS or at ``instructMaxNewTokens``, with no wall-clock limit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codellama_ls.actions import (
    ActionKind,
    ActionPlan,
    ActionResult,
    AnswerError,
    Diagnostic,
    plan_docstring,
    plan_edit,
    plan_explain,
    plan_fix,
    plan_tests,
    read_text_or_none,
    source,
)
from codellama_ls.actions import code_actions as list_plans
from codellama_ls.config import Settings
from codellama_ls.documents import Document, path_to_uri, uri_to_path
from codellama_ls.engines.base import Engine, EngineError, EngineState, GenerationRequest
from codellama_ls.engines.host import DRAIN_TIMEOUT_S, EngineHost
from codellama_ls.pipeline.scheduler import Scheduler
from codellama_ls.prompt.chat import ChatPrompt, Message, build_chat_prompt, check_instruct_model
from codellama_ls.prompt.tokens import CodeTokenizer, PromptTokenizer

if TYPE_CHECKING:
    from codellama_ls.session import Session

log = logging.getLogger(__name__)

Position = tuple[int, int]  # (line, Python index in the line)
# The local engine keeps the keys/values of one action prompt (a repeated action reuses them)
# without taking the place of a document's completion prompt.
KV_KEY = "codellama-ls:actions"
EXAMPLE_MODEL = "codellama/CodeLlama-7b-Instruct-hf"
# Editors ask for code actions on every cursor move; a model folder's config.json is read once.
_check = functools.lru_cache(maxsize=64)(check_instruct_model)


class ActionError(Exception):
    """An action could not run or its answer was unusable; the message is for the user.

    ``shown``: the user was told already (an engine load failure reports itself).
    """

    def __init__(self, message: str, *, shown: bool = False) -> None:
        super().__init__(message)
        self.shown = shown


@dataclass(frozen=True)
class Choice:
    """Which engine answers actions: ``completion`` (the completion engine), ``instruct`` (a second
    engine, with ``settings``) or None; ``reason`` says why, for ``codellama/status``."""

    where: str | None
    model: str
    reason: str
    settings: Settings | None = None


def same_model(a: str, b: str) -> bool:
    """Two model settings that name the same model (the same folder reached two ways counts)."""
    if a.strip() == b.strip():
        return True
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    try:
        return pa.is_dir() and pb.is_dir() and pa.resolve() == pb.resolve()
    except OSError:
        return False


def choose(settings: Settings, completion: Engine) -> Choice:
    """The engine for actions, decided without loading anything."""
    s = settings
    remote = s.engine != "local"
    if remote:
        # What the server serves (known once it answered), else the name the OpenAI route is sent.
        served = completion.model_id or (s.model if s.engine == "openai" else "")
        where = f"the {s.engine} server at {s.url or '?'}"
        if served:
            check = _check(served)
            if check.instruct:
                return Choice("completion", served, f"{where} serves {served}, an Instruct model")
            why = f"{where} serves {served}, which is not an Instruct model"
        else:
            why = f"{where} has not said which model it serves yet"
        if s.engine == "ollama" and s.instruct_model and s.instruct_model != served:
            # One Ollama serves every pulled model: the Instruct one is another name on the same server.
            second = dataclasses.replace(s, url=s.instruct_url or s.url, model=s.instruct_model)
            return Choice(
                "instruct", s.instruct_model, f"instructModel {s.instruct_model} on Ollama answers actions", second
            )
        if s.instruct_url:
            if s.instruct_url.rstrip("/") == (s.url or "").rstrip("/"):
                return Choice("completion", served, "instructUrl is the completion server")
            second = dataclasses.replace(s, url=s.instruct_url, model=s.instruct_model or s.model)
            label = s.instruct_model or "its model"
            return Choice("instruct", label, f"instructUrl {s.instruct_url} ({s.engine}) answers actions", second)
        hint = "set instructUrl to a server that runs a Code Llama - Instruct model, or instructModel to load one here"
        if s.engine == "ollama":
            hint = "set instructModel to an Instruct model pulled into Ollama (e.g. codellama:7b-instruct)"
    else:
        check = _check(s.model)
        if check.instruct:
            return Choice("completion", s.model, check.reason)
        why = f"model {s.model} is not an Instruct model" if s.model.strip() else check.reason
        hint = f"set instructModel to a Code Llama - Instruct model (e.g. {EXAMPLE_MODEL})"
        if s.instruct_url:
            hint = "instructUrl applies to the tgi, openai and llamacpp engines; " + hint
    if s.instruct_model:
        if not remote and same_model(s.instruct_model, s.model):
            return Choice("completion", s.model, "instructModel is the completion model")
        second = dataclasses.replace(s, engine="local", model=s.instruct_model, tokenizer=None, url=None)
        return Choice("instruct", s.instruct_model, f"instructModel {s.instruct_model} answers actions", second)
    return Choice(None, "", f"no code actions: {why}; {hint}")


class Progress:
    """What an action reports while it runs (the LSP layer sends ``$/progress``); any thread."""

    def tokens(self, count: int, limit: int) -> None:
        """``count`` of at most ``limit`` tokens generated."""

    def on_cancel(self, cancel: Callable[[], None]) -> None:
        """Call ``cancel`` when the user cancels the progress."""


@dataclass
class Outcome:
    """An action's result: the plan, the document it was made for and the file texts it read."""

    plan: ActionPlan
    document: Document
    result: ActionResult
    texts: dict[Path, str] = field(default_factory=dict)  # test files read from disk (not open)


class ActionService:
    """Lists and runs code actions for the documents of a :class:`~codellama_ls.session.Session`."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.second: EngineHost | None = None
        self.second_settings: Settings | None = None
        self.second_scheduler: Scheduler | None = None
        # Actions on a remote completion engine: streams of their own, beside the suggestions.
        self.beside = Scheduler()
        self._lock: asyncio.Lock | None = None
        self._ids = itertools.count(1)
        self.running = 0  # actions generating now (status)
        self.finished = 0

    @property
    def settings(self) -> Settings:
        return self.session.settings

    # -- which engine ----------------------------------------------------------------------------
    def choice(self) -> Choice:
        return choose(self.settings, self.session.engine)

    def available(self) -> bool:
        return self.choice().where is not None

    def status(self) -> dict[str, Any]:
        """The ``actions`` entry of ``codellama/status``."""
        choice = self.choice()
        out: dict[str, Any] = {
            "available": choice.where is not None,
            "engine": choice.where,
            "model": choice.model,
            "reason": choice.reason,
            "running": self.running,
            "finished": self.finished,
        }
        if choice.where == "instruct":
            host = self.second
            engine = host.engine if host is not None and self._current(choice) else None
            out["state"] = engine.state.value if engine is not None else "idle"  # loaded on the first action
            out["error"] = engine.error if engine is not None else None
            if engine is not None and engine.model_id:
                out["model"] = engine.model_id
        elif choice.where == "completion":
            out["state"], out["error"] = self.session.engine.state.value, self.session.engine.error
        return out

    def _current(self, choice: Choice) -> bool:
        """The second engine was made with the settings ``choice`` asks for."""
        if self.second_settings is None or choice.settings is None:
            return False
        return self.second_settings.same_engine(choice.settings)

    def configured(self) -> None:
        """After a settings change: hand the new settings on, or retire a second engine that no longer fits.

        The next action starts a new one (``instructModel``/``instructUrl`` restart only this engine).
        """
        choice = self.choice()
        if self.second is None:
            return
        if choice.where == "instruct" and self._current(choice):
            assert choice.settings is not None
            self.second_settings = choice.settings
            self.second.configure(choice.settings)
            return
        self._retire()

    def _retire(self) -> None:
        host, scheduler = self.second, self.second_scheduler
        self.second = self.second_scheduler = self.second_settings = None
        if host is None or scheduler is None:
            return
        scheduler.cancel_all()

        def close() -> None:  # let a cancelled generation stop before its model goes
            scheduler.drain(DRAIN_TIMEOUT_S)
            host.close()
            scheduler.shutdown()

        threading.Thread(target=close, name="codellama-instruct-close", daemon=True).start()

    async def engine(self) -> tuple[Engine, Scheduler]:
        """The engine that answers actions and the scheduler to run them on (loading a second engine)."""
        choice = self.choice()
        if choice.where is None:
            raise ActionError(f"codellama-ls: {choice.reason}.")
        if choice.where == "completion":
            engine = self.session.engine
            if not engine.ready:
                if engine.state is EngineState.FAILED and engine.error:
                    raise ActionError(engine.error)
                raise ActionError("codellama-ls: the model is still loading; try the action again in a moment.")
            local = self.settings.engine == "local"
            return engine, self.session.scheduler if local else self.beside
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # two actions at once load the engine once
            if self.second is None or not self._current(choice) or self.second.engine.state is EngineState.FAILED:
                await self._start_second(choice)
            assert self.second is not None and self.second_scheduler is not None
            engine = self.second.engine
            if not engine.ready:
                raise ActionError(engine.error or "codellama-ls: the Instruct model did not load.", shown=True)
            return engine, self.second_scheduler

    async def _start_second(self, choice: Choice) -> None:
        assert choice.settings is not None
        self._retire()
        scheduler = Scheduler()
        host = EngineHost(self.session.notifier, scheduler, key="instruct-load")
        self.second, self.second_scheduler, self.second_settings = host, scheduler, choice.settings
        log.info("starting the Instruct engine for code actions: %s", choice.reason)
        await host.load(choice.settings)

    async def tokenizer(self) -> PromptTokenizer:
        """A tokenizer for chat prompts, without loading a model (``codellama/instructPrompt``).

        Code Llama 7B/13B/34B and their Instruct models share one vocabulary, so the completion
        model's tokenizer serves until a second engine has its own.
        """
        choice = self.choice()
        if choice.where == "instruct" and self.second is not None and self._current(choice):
            tok = self.second.engine.tokenizer
            if tok is not None and self.second.engine.ready:
                return tok
        if choice.where == "instruct" and choice.settings is not None and choice.settings.engine == "local":
            name = choice.settings.model
            try:
                return await asyncio.to_thread(CodeTokenizer.load, name)
            except Exception as exc:  # the model is not downloaded yet: its vocabulary is Code Llama's
                log.info("no tokenizer for %s yet (%s); using the completion model's", name, exc)
        return await self.session.prompt_tokenizer()

    def budget(self, engine: Engine | None) -> int:
        """Prompt tokens an action may use: ``maxPromptTokens``, within the room the model leaves."""
        s = self.settings
        limit = engine.chat_limit(s.instruct_max_new_tokens) if engine is not None else None
        return min(s.max_prompt_tokens, limit) if limit else s.max_prompt_tokens

    async def chat_prompt(self, messages: list[Message]) -> ChatPrompt:
        """``codellama/instructPrompt``: the exact prompt for ``messages`` (raises ValueError)."""
        tok = await self.tokenizer()
        choice = self.choice()
        engine: Engine | None = None
        if choice.where == "completion":
            engine = self.session.engine
        elif choice.where == "instruct" and self.second is not None and self._current(choice):
            engine = self.second.engine
        return await asyncio.to_thread(build_chat_prompt, tok, messages, self.budget(engine))

    # -- running -----------------------------------------------------------------------------------
    async def generate(self, plan: ActionPlan, progress: Progress | None = None) -> str | None:
        """The model's answer to ``plan`` (None: cancelled). Raises ActionError."""
        engine, scheduler = await self.engine()
        s = self.settings
        tok = engine.tokenizer
        if tok is None:
            raise ActionError("codellama-ls: the Instruct model has no tokenizer.")
        try:
            chat = await asyncio.to_thread(build_chat_prompt, tok, list(plan.messages), self.budget(engine))
        except ValueError as exc:
            raise ActionError(f"codellama-ls: {plan.title}: {exc}; raise maxPromptTokens or select less.") from exc
        except EngineError as exc:  # a server's /tokenize
            raise ActionError(str(exc)) from exc
        key = f"action:{next(self._ids)}"  # each action its own key: neither typing nor another action drops it
        ticket = scheduler.supersede(key)
        limit = s.instruct_max_new_tokens
        if progress is not None:
            progress.on_cancel(ticket.drop)
        count = 0

        def counted(text: str) -> bool:
            """Called for every token: progress only; an answer runs to EOS (no early stop)."""
            nonlocal count
            count += 1
            if progress is not None:
                progress.tokens(count, limit)
            return False

        def job(cancel: threading.Event) -> Any:
            request = GenerationRequest(
                prompt=chat,
                max_new_tokens=limit,
                temperature=s.temperature,
                top_p=s.top_p,
                cancel=cancel,
                stop_check=lambda: counted,
                timeout_s=None,
                key=KV_KEY,
            )
            return engine.generate(request)

        self.running += 1
        try:
            result = await scheduler.run(key, job, ticket=ticket)
        except EngineError as exc:
            raise ActionError(str(exc)) from exc
        except (TimeoutError, asyncio.TimeoutError) as exc:
            raise ActionError(f"codellama-ls: {plan.title}: {exc}") from exc
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a device fault or an engine bug costs this action, not the server
            log.exception("action generation failed")
            raise ActionError(f"codellama-ls: {plan.title} failed ({type(exc).__name__}).") from exc
        finally:
            self.running -= 1
        self.session.host.show_notices()
        if result is None or result.stop_reason in ("cancelled", "timeout"):
            return None
        self.finished += 1
        log.info("%s: %d tokens, stopped by %s", plan.title, result.new_tokens, result.stop_reason)
        return str(result.text)

    def plan(
        self,
        kind: ActionKind,
        doc: Document,
        start: Position,
        end: Position,
        *,
        diagnostic: Diagnostic | None = None,
        instruction: str = "",
    ) -> ActionPlan | None:
        """The plan for ``kind`` in ``doc`` (None: nothing to do there). Raises ValueError for a bad request."""
        src = source(doc.text, doc.language_id, path_of(doc.uri))
        if src is None:
            raise ValueError(f"code actions do not support language '{doc.language_id}'")
        if kind == "docstring":
            return plan_docstring(src, *start)
        if kind == "tests":
            return plan_tests(src, *start)
        if kind == "fix":
            if diagnostic is None:
                raise ValueError("a fix needs its diagnostic")
            return plan_fix(src, diagnostic)
        if kind == "edit":
            return plan_edit(src, start, end, instruction)
        if kind == "explain":
            return plan_explain(src, start, end)
        raise ValueError(f"unknown action kind {kind!r}")

    def plans(
        self, doc: Document, start: Position, end: Position, diagnostics: list[Diagnostic]
    ) -> list[tuple[ActionPlan, int | None]]:
        """What ``textDocument/codeAction`` lists (no model call), each with the index of the diagnostic
        it fixes; empty without an Instruct model or for a language without actions."""
        if not self.available():
            return []
        src = source(doc.text, doc.language_id, path_of(doc.uri))
        if src is None:
            return []
        listed: list[tuple[ActionPlan, int | None]] = [(plan, None) for plan in list_plans(src, start, end)]
        return listed + [(plan_fix(src, d), i) for i, d in enumerate(diagnostics)]

    async def run(self, plan: ActionPlan, doc: Document, progress: Progress | None = None) -> Outcome | None:
        """Generate and apply ``plan``; None when cancelled. Raises ActionError (stale document, no answer)."""
        version = doc.version
        answer = await self.generate(plan, progress)
        if answer is None:
            return None
        current = self.session.documents
        if doc.uri not in current or current.get(doc.uri).version != version:
            raise ActionError(
                f"codellama-ls: {plan.title}: the document changed while the answer was written; nothing was "
                "changed. Run the action again."
            )
        texts: dict[Path, str] = {}

        def read(path: Path) -> str | None:
            uri = path_to_uri(str(path))
            if uri in current:
                return current.get(uri).text
            text = read_text_or_none(path)
            if text is not None:
                texts[path] = text
            return text

        try:
            result = plan.apply(answer, read_file=read)
        except AnswerError as exc:
            raise ActionError(f"codellama-ls: {plan.title}: the model's answer had nothing usable ({exc}).") from exc
        return Outcome(plan, doc, result, texts)

    def shutdown(self) -> None:
        self.beside.shutdown()
        if self.second_scheduler is not None:
            self.second_scheduler.shutdown()
        if self.second is not None:
            self.second.close()


def path_of(uri: str) -> Path | None:
    """The file a ``file:`` URI names (None for ``untitled:`` and other schemes)."""
    path = uri_to_path(uri)
    return Path(path) if path else None
