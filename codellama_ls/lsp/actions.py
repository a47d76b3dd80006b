"""Code actions over LSP: listing, ``codeAction/resolve``, the commands, progress and workspace edits.

- ``textDocument/codeAction`` lists plans without a model call. A client that resolves ``edit``
  (and keeps ``data``) gets actions without an edit and asks ``codeAction/resolve`` when the user
  picks one; any other client gets actions whose ``command`` (``codellama.runAction``) makes the
  answer and sends ``workspace/applyEdit`` itself.
- While the model writes, a server-initiated ``$/progress`` counts tokens; cancelling it, or
  ``$/cancelRequest`` on the resolve, stops the generation.
- The answer becomes one ``WorkspaceEdit`` (one undo step in the editor). With ``documentChanges``
  each text edit carries the document version it was made for, so an editor refuses it once the
  text has changed; a new test file is a ``CreateFile`` where the client can create files, and
  otherwise a text edit of the new file's URI, which Neovim and Emacs open as a new unsaved buffer.
- An action whose document changed since it was listed, or whose answer had nothing usable,
  changes nothing and says so in one message.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast, get_args

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from codellama_ls.actions import ActionKind, ActionPlan, Diagnostic, FileChange
from codellama_ls.actions.service import ActionError, ActionService, Outcome, Progress
from codellama_ls.documents import Document, PositionError, path_to_uri, units
from codellama_ls.engines.base import EngineError
from codellama_ls.lsp.adapter import plain_params
from codellama_ls.lsp.progress import WorkDoneProgress, work_done_token
from codellama_ls.prompt.chat import parse_messages
from codellama_ls.prompt.tokens import TokenizerNotFound
from codellama_ls.session import Session


class CodeLlamaServer(Protocol):
    """What this module needs of the server (``server.CodeLlamaServer``, a pygls LanguageServer)."""

    session: Session
    actions: ActionService

    @property
    def client_capabilities(self) -> types.ClientCapabilities: ...

    @property
    def work_done_progress(self) -> WorkDoneProgress: ...

    async def workspace_apply_edit_async(
        self, params: types.ApplyWorkspaceEditParams
    ) -> types.ApplyWorkspaceEditResult: ...


log = logging.getLogger(__name__)

INSTRUCT_PROMPT_METHOD = "codellama/instructPrompt"
RUN_COMMAND = "codellama.runAction"
EDIT_COMMAND = "codellama.edit"
EXPLAIN_COMMAND = "codellama.explain"
# The kinds of the listed actions (Edit and Explain are commands of their own).
KINDS: dict[str, str] = {
    "docstring": "refactor.rewrite.codellama.docstring",
    "tests": "refactor.rewrite.codellama.tests",
    "fix": types.CodeActionKind.QuickFix.value,
}
CODE_ACTION_OPTIONS = types.CodeActionOptions(code_action_kinds=list(KINDS.values()), resolve_provider=True)
# Progress tokens of actions; clients can tell them from model loading (``codellama-ls/load/``).
PROGRESS_PREFIX = "codellama-ls/action/"
_REPORT_EVERY_S = 0.2


# -- what the client can do ----------------------------------------------------------------------
@dataclass(frozen=True)
class ClientSupport:
    literals: bool  # CodeAction objects (else only Commands)
    resolve_edit: bool  # codeAction/resolve fills in ``edit`` (and ``data`` comes back)
    document_changes: bool  # versioned TextDocumentEdits
    create_files: bool  # CreateFile in documentChanges

    @classmethod
    def of(cls, caps: types.ClientCapabilities) -> ClientSupport:
        action = caps.text_document.code_action if caps.text_document else None
        resolve = action.resolve_support if action else None
        edit = caps.workspace.workspace_edit if caps.workspace else None
        operations = [str(getattr(op, "value", op)) for op in (edit.resource_operations or [])] if edit else []
        return cls(
            literals=bool(action and action.code_action_literal_support),
            resolve_edit=bool(resolve and "edit" in resolve.properties and action and action.data_support),
            # Resource operations exist only in documentChanges, so a client that offers them takes those
            # (Neovim 0.11 offers ``create`` without saying ``documentChanges``).
            document_changes=bool(edit and (edit.document_changes or operations)),
            create_files="create" in operations,
        )


# -- requests ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    """One action as ``CodeAction.data`` / the commands carry it (client positions)."""

    uri: str
    kind: ActionKind
    range: types.Range
    version: int | None = None  # None: the document as it is now (the commands)
    diagnostic: types.Diagnostic | None = None
    instruction: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "uri": self.uri,
            "kind": self.kind,
            "version": self.version,
            "range": _json_range(self.range),
        }
        if self.diagnostic is not None:
            out["diagnostic"] = {"range": _json_range(self.diagnostic.range), "message": self.diagnostic.message}
        if self.instruction:
            out["instruction"] = self.instruction
        return out


def _range(value: Any) -> types.Range:
    """A range from JSON, as strictly as the server reads positions (integers, not booleans or floats)."""

    def position(p: Any, which: str) -> types.Position:
        if not isinstance(p, Mapping):
            raise ValueError(f"range needs a {which} position")
        line, character = p.get("line"), p.get("character")
        if not (type(line) is int and type(character) is int and line >= 0 and character >= 0):
            raise ValueError(f"the {which} position needs line and character as non-negative integers")
        return types.Position(line=line, character=character)

    if not isinstance(value, Mapping):
        raise ValueError("a range is needed")
    return types.Range(start=position(value.get("start"), "start"), end=position(value.get("end"), "end"))


def _json_range(r: types.Range) -> dict[str, Any]:
    return {
        "start": {"line": r.start.line, "character": r.start.character},
        "end": {"line": r.end.line, "character": r.end.character},
    }


def parse_request(data: Any, *, kind: str | None = None, what: str = "the action") -> Request:
    """A request from ``data`` JSON; InvalidParams when it is not one."""
    data = plain_params(data)
    if not isinstance(data, Mapping):
        raise JsonRpcInvalidParams(f"{what} needs an object with uri and range")
    kind = kind or data.get("kind")
    uri, version, instruction = data.get("uri"), data.get("version"), data.get("instruction", "")
    if kind not in get_args(ActionKind):
        raise JsonRpcInvalidParams(f"{what}: unknown kind {kind!r}")
    if not isinstance(uri, str):
        raise JsonRpcInvalidParams(f"{what} needs a uri")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise JsonRpcInvalidParams(f"{what}: version must be an integer")
    if not isinstance(instruction, str):
        raise JsonRpcInvalidParams(f"{what}: instruction must be a string")
    try:
        rng = _range(data.get("range"))
        diag = data.get("diagnostic")
        diagnostic = None
        if diag is not None:
            if not isinstance(diag, Mapping) or not isinstance(diag.get("message"), str):
                raise ValueError("diagnostic needs a range and a message")
            diagnostic = types.Diagnostic(range=_range(diag.get("range")), message=diag["message"])
    except Exception as exc:
        raise JsonRpcInvalidParams(f"{what}: {exc}") from exc
    return Request(uri, cast(ActionKind, kind), rng, version, diagnostic, instruction)


def _document(ls: CodeLlamaServer, uri: str) -> Document:
    try:
        return ls.session.documents.get(uri)
    except KeyError as exc:
        raise JsonRpcInvalidParams(str(exc).strip("'\"")) from exc


def _index(doc: Document, position: types.Position, encoding: str, *, strict: bool = True) -> tuple[int, int]:
    try:
        return doc.index_of(position, encoding, strict=strict)
    except PositionError as exc:
        raise JsonRpcInvalidParams(str(exc)) from exc


def _diagnostic(doc: Document, d: types.Diagnostic, encoding: str) -> Diagnostic:
    # Other servers' diagnostics may be a keystroke old: their positions are clamped, not refused.
    start = _index(doc, d.range.start, encoding, strict=False)
    return Diagnostic(start, max(start, _index(doc, d.range.end, encoding, strict=False)), d.message)


# -- listing ---------------------------------------------------------------------------------
def code_actions(ls: CodeLlamaServer, params: types.CodeActionParams) -> list[types.CodeAction | types.Command]:
    """``textDocument/codeAction``: the actions at a range, without a model call."""
    doc = _document(ls, params.text_document.uri)
    encoding = ls.session.encoding
    start, end = _index(doc, params.range.start, encoding), _index(doc, params.range.end, encoding)
    if end < start:
        start, end = end, start
    given = list(params.context.diagnostics or [])
    diagnostics = [_diagnostic(doc, d, encoding) for d in given]
    only = list(params.context.only or [])
    support = ClientSupport.of(ls.client_capabilities)
    out: list[types.CodeAction | types.Command] = []
    for plan, which in ls.actions.plans(doc, start, end, diagnostics):
        kind = KINDS[plan.kind]
        if only and not any(kind == o or kind.startswith(o + ".") for o in only):
            continue
        diagnostic = given[which] if which is not None else None
        request = Request(doc.uri, plan.kind, params.range, doc.version, diagnostic)
        command = types.Command(title=plan.title, command=RUN_COMMAND, arguments=[request.to_json()])
        if not support.literals:
            out.append(command)
            continue
        lazy = support.resolve_edit
        out.append(
            types.CodeAction(
                title=plan.title,
                kind=kind,
                diagnostics=[diagnostic] if diagnostic is not None else None,
                data=request.to_json() if lazy else None,
                command=None if lazy else command,
            )
        )
    return out


# -- running ---------------------------------------------------------------------------------
async def resolve(ls: CodeLlamaServer, action: types.CodeAction) -> types.CodeAction:
    """``codeAction/resolve``: the action with its edit, or unchanged (and a message) when there is none."""
    request = parse_request(action.data)
    outcome = await _run(ls, request)
    if outcome is None:
        return action
    return attrs.evolve(action, edit=workspace_edit(ls, outcome))


_background: set[asyncio.Task[Any]] = set()


async def run_command(ls: CodeLlamaServer, data: Any) -> dict[str, Any] | None:
    """``codellama.runAction``: for clients that cannot resolve, make the edit and send it.

    It answers at once and writes in the background: clients run a code action's command with
    their default request timeout (eglot 10 s, Helix 20 s), shorter than a long answer takes. The
    progress (cancellable) shows the work; the edit comes as ``workspace/applyEdit``.
    """
    request = parse_request(data, what=RUN_COMMAND)
    task = asyncio.ensure_future(_apply_logged(ls, request))
    _background.add(task)
    task.add_done_callback(_background.discard)
    return {"started": True}


async def _apply_logged(ls: CodeLlamaServer, request: Request) -> None:
    try:
        await _apply(ls, request)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # nobody awaits this task: report here
        log.error("%s failed", RUN_COMMAND, exc_info=exc)
        name = type(exc).__name__
        _tell(ls, f"codellama-ls: the code action failed ({name}); nothing was changed. The server log has details.")


async def edit_command(ls: CodeLlamaServer, args: Any) -> dict[str, Any] | None:
    """``codellama.edit`` ``{uri, range, instruction}``: rewrite the range as the instruction says."""
    request = parse_request(args, kind="edit", what=EDIT_COMMAND)
    if not request.instruction.strip():
        raise JsonRpcInvalidParams(f"{EDIT_COMMAND} needs an instruction")
    return await _apply(ls, request)


async def explain_command(ls: CodeLlamaServer, args: Any) -> dict[str, Any] | None:
    """``codellama.explain`` ``{uri, range}``: ``{markdown}`` about the range (the client shows it)."""
    outcome = await _run(ls, parse_request(args, kind="explain", what=EXPLAIN_COMMAND))
    if outcome is None or outcome.result.markdown is None:
        return None
    return {"markdown": outcome.result.markdown}


async def instruct_prompt(ls: CodeLlamaServer, params: Any) -> dict[str, Any]:
    """``codellama/instructPrompt`` ``{messages}`` → ``{ids, text, truncated}``, without running a model."""
    data = plain_params(params)
    try:
        messages = parse_messages(data.get("messages") if isinstance(data, Mapping) else None)
        prompt = await ls.actions.chat_prompt(messages)
    except ValueError as exc:
        raise JsonRpcInvalidParams(f"{INSTRUCT_PROMPT_METHOD}: {exc}") from exc
    except (TokenizerNotFound, EngineError) as exc:
        raise JsonRpcInvalidParams(str(exc)) from exc
    return prompt.to_json()


def _args(args: tuple[Any, ...], command: str) -> Any:
    """The one object a command takes (``arguments: [{...}]``)."""
    if len(args) != 1:
        raise JsonRpcInvalidParams(f"{command} takes one argument, an object")
    return args[0]


async def command(ls: CodeLlamaServer, name: str, args: tuple[Any, ...]) -> dict[str, Any] | None:
    """Dispatch ``workspace/executeCommand`` for the action commands."""
    arg = _args(args, name)
    if name == RUN_COMMAND:
        return await run_command(ls, arg)
    if name == EDIT_COMMAND:
        return await edit_command(ls, arg)
    return await explain_command(ls, arg)


async def _apply(ls: CodeLlamaServer, request: Request) -> dict[str, Any] | None:
    outcome = await _run(ls, request)
    if outcome is None:
        return {"applied": False}
    edit = workspace_edit(ls, outcome)
    answer = await ls.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(edit=edit, label=outcome.plan.title))
    if not answer.applied:
        why = f": {answer.failure_reason}" if answer.failure_reason else ""
        _tell(ls, f"codellama-ls: {outcome.plan.title}: the editor did not apply the edit{why}.")
    return {"applied": bool(answer.applied)}


async def _run(ls: CodeLlamaServer, request: Request) -> Outcome | None:
    """Make the plan again, generate the answer with progress, apply it; None (and a message) on failure."""
    doc = _document(ls, request.uri)
    if request.version is not None and request.version != doc.version:
        _tell(
            ls,
            "codellama-ls: the document changed since this action was offered; nothing was changed. "
            "Ask for code actions again.",
        )
        return None
    encoding = ls.session.encoding
    start, end = _index(doc, request.range.start, encoding), _index(doc, request.range.end, encoding)
    if end < start:
        start, end = end, start
    diagnostic = _diagnostic(doc, request.diagnostic, encoding) if request.diagnostic is not None else None
    try:
        plan = ls.actions.plan(request.kind, doc, start, end, diagnostic=diagnostic, instruction=request.instruction)
    except ValueError as exc:
        raise JsonRpcInvalidParams(str(exc)) from exc
    if plan is None:
        _tell(ls, f"codellama-ls: there is nothing to {request.kind} at this place any more.")
        return None
    progress = await WorkDone.start(ls, plan)
    ending = "Cancelled"
    try:
        outcome = await ls.actions.run(plan, doc, progress)
        ending = "Done" if outcome is not None else ending
        return outcome
    except ActionError as exc:
        ending = "Nothing was changed"
        if not exc.shown:
            _tell(ls, str(exc))
        return None
    finally:
        if progress is not None:
            progress.end(ending)


def _tell(ls: CodeLlamaServer, message: str) -> None:
    """One message per failed action (the user asked for this one, so repeats are shown too)."""
    ls.session.notifier.show(message, types.MessageType.Warning)


# -- progress ------------------------------------------------------------------------------------
class WorkDone(Progress):
    """A server-initiated, cancellable ``$/progress`` for one action."""

    def __init__(self, ls: CodeLlamaServer, token: str, loop: asyncio.AbstractEventLoop) -> None:
        self.ls = ls
        self.token = token
        self.loop = loop
        self._last = 0.0

    @classmethod
    async def start(cls, ls: CodeLlamaServer, plan: ActionPlan) -> WorkDone | None:
        token = PROGRESS_PREFIX + str(uuid.uuid4())
        if not await work_done_token(ls, token, "the action"):
            return None
        progress = ls.work_done_progress
        begin = types.WorkDoneProgressBegin(
            title=f"Code Llama: {plan.title}", cancellable=True, message="Waiting for the model", percentage=0
        )
        progress.begin(token, begin)
        return cls(ls, token, asyncio.get_running_loop())

    def tokens(self, count: int, limit: int) -> None:
        now = time.monotonic()
        if now - self._last < _REPORT_EVERY_S:
            return
        self._last = now
        pct = min(99, count * 100 // max(limit, 1))
        report = types.WorkDoneProgressReport(message=f"{count} tokens", percentage=pct)
        self.loop.call_soon_threadsafe(self.ls.work_done_progress.report, self.token, report)

    def on_cancel(self, cancel: Callable[[], None]) -> None:
        future = self.ls.work_done_progress.tokens.get(self.token)
        if future is not None:
            future.add_done_callback(lambda f: cancel() if f.cancelled() else None)

    def end(self, message: str) -> None:
        self.ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))
        self.ls.work_done_progress.tokens.pop(self.token, None)  # pygls keeps every token otherwise


# -- edits -------------------------------------------------------------------------------------
def workspace_edit(ls: CodeLlamaServer, outcome: Outcome) -> types.WorkspaceEdit:
    """The outcome's file changes as one ``WorkspaceEdit`` in the client's position encoding."""
    support = ClientSupport.of(ls.client_capabilities)
    encoding = ls.session.encoding
    documents = ls.session.documents
    operations: list[types.TextDocumentEdit | types.CreateFile] = []
    changes: dict[str, list[types.TextEdit]] = {}
    for change in outcome.result.changes:
        uri, target, version = _target(change, outcome, documents)
        edits = [
            types.TextEdit(
                range=types.Range(
                    start=_position(target, e.start_line, e.start_char, encoding),
                    end=_position(target, e.end_line, e.end_char, encoding),
                ),
                new_text=e.new_text,
            )
            for e in change.edits
        ]
        if not support.document_changes:
            changes.setdefault(uri, []).extend(edits)
            continue
        if change.create and support.create_files:
            operations.append(
                types.CreateFile(uri=uri, options=types.CreateFileOptions(overwrite=False, ignore_if_exists=True))
            )
        identifier = types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version)
        operations.append(types.TextDocumentEdit(text_document=identifier, edits=list(edits)))
    if support.document_changes:
        return types.WorkspaceEdit(document_changes=operations)
    return types.WorkspaceEdit(changes=changes)


def _target(change: FileChange, outcome: Outcome, documents: Any) -> tuple[str, Document, int | None]:
    """The URI, text and version (None: not open in the editor) that a change's positions refer to."""
    if change.path is None:
        doc = outcome.document
        return doc.uri, doc, doc.version
    uri = path_to_uri(str(change.path))
    if uri in documents:
        doc = documents.get(uri)
        return uri, doc, doc.version
    text = "" if change.create else outcome.texts.get(change.path, "")
    return uri, Document(uri, text), None


def _position(doc: Document, line: int, index: int, encoding: str) -> types.Position:
    if line >= len(doc.lines):
        last = len(doc.lines) - 1
        return types.Position(line=last, character=units(doc.lines[last], encoding))
    return doc.position(line, min(index, len(doc.lines[line])), encoding)
