"""The LSP feature table: each handler translates protocol types and delegates.

Document sync goes to our own store (``documents.py``) instead of pygls' workspace, whose
line splitting and position clamping are not exact. Every handler is guarded: a failure
inside it is answered with the method's empty result and one message per kind of failure,
never with an internal error (only a bad request from the client gets an error answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import uuid
from collections.abc import Callable
from typing import Any, TypeVar, cast

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from codellama_ls import __version__, redact
from codellama_ls.actions.service import ActionService
from codellama_ls.config import Settings, extract_section
from codellama_ls.context.service import folder_paths
from codellama_ls.documents import PositionError
from codellama_ls.engines.base import EngineError
from codellama_ls.lsp import actions as actions_lsp
from codellama_ls.lsp import adapter as pygls_adapter
from codellama_ls.lsp import context as context_lsp
from codellama_ls.lsp import stdio
from codellama_ls.lsp.adapter import HardenedProtocol
from codellama_ls.lsp.jsonrpc import UNREADABLE, describe_error, strict_converter
from codellama_ls.lsp.log import ClientLog
from codellama_ls.lsp.progress import work_done_token
from codellama_ls.lsp.replies import ACCEPTED_COMMAND, completion_item, inline_item
from codellama_ls.notify import Notifier, ProgressFn
from codellama_ls.pipeline.acceptance import KINDS
from codellama_ls.pipeline.completion import Answer, Pipeline, RequestFailed
from codellama_ls.prompt.tokens import TokenizerNotFound
from codellama_ls.session import Session

log = logging.getLogger(__name__)

PROMPT_METHOD = "codellama/prompt"
WARM_METHOD = "codellama/warm"  # a notification: the cursor rests here, compute its prompt ahead
STATUS_METHOD = "codellama/status"
RESTART_COMMAND = "codellama.restartEngine"
TOGGLE_COMMAND = "codellama.toggle"

F = TypeVar("F", bound=Callable[..., Any])


class CodeLlamaServer(LanguageServer):
    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__("codellama-ls", __version__, protocol_cls=HardenedProtocol, converter_factory=strict_converter)
        self.session = Session(settings, Notifier(self._show, self._progress))  # the state every handler gets
        self.pipeline = Pipeline(self.session)  # a request at a cursor into suggestions
        self.actions = ActionService(self.session)  # code actions (Code Llama - Instruct)
        self.watching = False  # workspace/didChangeWatchedFiles registered with the client
        self.client_log: ClientLog | None = None  # the log, sent as window/logMessage (cli.py)
        self._tasks: set[asyncio.Task[Any]] = set()

    def background(self, work: Any) -> None:
        """Run a coroutine on the event loop without waiting for it (a reference is kept until it ends)."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Failures outside a request (a notification handler, a message that cannot be read):
        logged, and shown once per kind without the exception's text (it may hold paths)."""
        if source is JsonRpcException and isinstance(error, UNREADABLE):
            pygls_adapter.protocol_of(self).answer_unreadable(error)  # the body was not JSON: ParseError
            return
        log.error("server error (%s): %s", getattr(source, "__name__", source), redact.mask(str(error)))
        if isinstance(error, JsonRpcException) and source is not JsonRpcException:
            return  # a request's error answer already told the client
        name = type(error).__name__
        self.session.notifier.once(
            f"server:{name}", f"codellama-ls: an internal error ({name}) was ignored; the server log has the details."
        )

    def start_io(self, stdin: Any = None, stdout: Any = None) -> None:
        """Serve stdio without a thread hop per message (see ``stdio.py``)."""
        stdio.serve(self, stdin, stdout)

    def connect_log(self) -> None:
        """Send the log to the client from now on (called on the event loop at `initialize`)."""
        if self.client_log is None:
            return
        loop = asyncio.get_running_loop()

        def deliver(params: types.LogMessageParams) -> None:
            with contextlib.suppress(Exception):  # the connection is gone: a failure here must not log again
                self.window_log_message(params)

        def send(kind: types.MessageType, message: str) -> None:
            loop.call_soon_threadsafe(deliver, types.LogMessageParams(type=kind, message=message))

        self.client_log.connect(send)

    def _show(self, message: str, kind: types.MessageType) -> None:
        message = redact.mask(message)
        log.log(logging.ERROR if kind == types.MessageType.Error else logging.WARNING, "%s", message)
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    async def _progress(self) -> ProgressFn | None:
        """A thread-safe reporter of load progress, when the client supports work-done progress.

        The token is created (and acknowledged by the client) before the first notification,
        as the specification requires; a client that does not answer just gets no progress.
        """
        token = f"codellama-ls/load/{uuid.uuid4()}"
        if not await work_done_token(self, token, "loading"):
            return None
        progress = self.work_done_progress
        loop = asyncio.get_running_loop()
        begun = False

        def send(message: str, pct: int | None) -> None:
            nonlocal begun
            if not begun:
                begun = True
                begin = types.WorkDoneProgressBegin(title="codellama-ls", message=message, percentage=pct)
                progress.begin(token, begin)
            if pct is not None and pct >= 100:
                progress.end(token, types.WorkDoneProgressEnd(message=message))
            else:
                progress.report(token, types.WorkDoneProgressReport(message=message, percentage=pct))

        def report(message: str, pct: int | None) -> None:
            loop.call_soon_threadsafe(send, message, pct)

        return report


def guarded(empty: Callable[[], Any]) -> Callable[[F], F]:
    """Answer ``empty()`` when a handler fails, with one message per kind of failure.

    Errors the client caused (``JsonRpcException``: InvalidParams and the like) pass through.
    """

    def wrap(handler: F) -> F:
        def failed(ls: CodeLlamaServer, exc: Exception) -> Any:
            name = type(exc).__name__
            log.error("%s failed", handler.__name__, exc_info=exc)
            ls.session.notifier.once(
                f"handler:{name}",
                f"codellama-ls: {handler.__name__.replace('_', ' ')} failed ({name}); it was answered empty. "
                "The server log has the details.",
            )
            return empty()

        if inspect.iscoroutinefunction(handler):

            @functools.wraps(handler)
            async def run_async(ls: CodeLlamaServer, *args: Any) -> Any:
                try:
                    return await handler(ls, *args)
                except JsonRpcException:
                    raise
                except Exception as exc:
                    return failed(ls, exc)

            return cast(F, run_async)

        @functools.wraps(handler)
        def run(ls: CodeLlamaServer, *args: Any) -> Any:
            try:
                return handler(ls, *args)
            except JsonRpcException:
                raise
            except Exception as exc:
                return failed(ls, exc)

        return cast(F, run)

    return wrap


def _invalid(exc: Exception) -> JsonRpcInvalidParams:
    return JsonRpcInvalidParams(str(exc).strip("'\""))


async def _answers(
    ls: CodeLlamaServer, document: types.TextDocumentIdentifier, position: types.Position, *, invoked: bool
) -> list[Answer]:
    try:
        return await ls.pipeline.suggestions(document.uri, position, invoked=invoked)
    except (KeyError, PositionError) as exc:
        raise _invalid(exc) from exc


def _empty_inline() -> types.InlineCompletionList:
    return types.InlineCompletionList(items=[])


def _empty_completion() -> types.CompletionList:
    return types.CompletionList(is_incomplete=True, items=[])


def create_server(settings: Settings | None = None) -> CodeLlamaServer:
    server = CodeLlamaServer(settings)

    @server.feature(types.INITIALIZE)
    @guarded(lambda: None)
    def initialize(ls: CodeLlamaServer, params: types.InitializeParams) -> None:
        ls.connect_log()
        ls.session.encoding = ls.workspace.position_encoding or types.PositionEncodingKind.Utf16
        ls.session.configure(extract_section(params.initialization_options or {}))
        ls.session.context.begin(folder_paths(context_lsp.workspace_uris(params)), ls.session.settings)

    @server.feature(types.INITIALIZED)
    @guarded(lambda: None)
    def initialized(ls: CodeLlamaServer, params: types.InitializedParams) -> None:
        ls.session.start_loading()
        context_lsp.watch_files(ls)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    @guarded(lambda: None)
    def did_change_configuration(ls: CodeLlamaServer, params: types.DidChangeConfigurationParams) -> None:
        if ls.session.configure(extract_section(params.settings)):
            ls.session.start_loading()
        ls.actions.configured()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    @guarded(lambda: None)
    def did_open(ls: CodeLlamaServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.session.open(params.text_document)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    @guarded(lambda: None)
    def did_change(ls: CodeLlamaServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.session.change(params)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    @guarded(lambda: None)
    def did_close(ls: CodeLlamaServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.session.close(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    @guarded(_empty_inline)
    async def inline_completion(
        ls: CodeLlamaServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList:
        invoked = params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
        answers = await _answers(ls, params.text_document, params.position, invoked=invoked)
        return types.InlineCompletionList(items=[inline_item(a, ls.session.encoding) for a in answers])

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "(", " "]))
    @guarded(_empty_completion)
    async def completion(ls: CodeLlamaServer, params: types.CompletionParams) -> types.CompletionList:
        # Typing on in an open menu re-asks (TriggerForIncompleteCompletions): one suggestion then.
        context = params.context
        invoked = context is None or context.trigger_kind == types.CompletionTriggerKind.Invoked
        answers = await _answers(ls, params.text_document, params.position, invoked=invoked)
        items = [completion_item(a, ls.session.encoding, i) for i, a in enumerate(answers)]
        return types.CompletionList(is_incomplete=True, items=items)

    @server.feature(PROMPT_METHOD)
    @guarded(dict)
    async def prompt(ls: CodeLlamaServer, params: Any) -> dict[str, Any]:
        try:
            pos = pygls_adapter.structure(ls, pygls_adapter.plain_params(params), types.TextDocumentPositionParams)
        except Exception as exc:
            reason = describe_error(exc)
            raise JsonRpcInvalidParams(f"{PROMPT_METHOD} needs textDocument and position: {reason}") from exc
        try:
            _, cursor = ls.session.cursor(pos.text_document.uri, pos.position)
            tok = await ls.session.prompt_tokenizer()
            return ls.pipeline.build(cursor, tok).to_json()
        except (KeyError, PositionError) as exc:
            raise _invalid(exc) from exc
        except (TokenizerNotFound, EngineError) as exc:  # no tokenizer to be had right now
            raise JsonRpcInvalidParams(str(exc)) from exc

    @server.feature(WARM_METHOD)
    @guarded(lambda: None)
    def warm(ls: CodeLlamaServer, params: Any) -> None:
        """A notification has no answer: bad params are logged (one line) and change nothing."""
        try:
            pos = pygls_adapter.structure(ls, pygls_adapter.plain_params(params), types.TextDocumentPositionParams)
        except Exception as exc:
            log.warning("warm ignored: %s needs textDocument and position: %s", WARM_METHOD, describe_error(exc))
            return
        uri = pos.text_document.uri
        try:
            done = ls.pipeline.warm(uri, pos.position)
        except (KeyError, PositionError) as exc:
            done = f"ignored: {str(exc).strip(chr(39) + chr(34))}"
        except RequestFailed:
            done = "ignored: the prompt could not be built (reported)"
        log.info("warm %s %s", redact.mask(uri), done)

    @server.feature(STATUS_METHOD)
    @guarded(dict)
    def status(ls: CodeLlamaServer, params: Any) -> dict[str, Any]:
        return {
            **ls.session.status(),
            "actions": ls.actions.status(),
            "pendingRequests": pygls_adapter.pending_requests(ls),
        }

    @server.command(RESTART_COMMAND)
    @guarded(lambda: None)
    async def restart_engine(ls: CodeLlamaServer, *args: Any) -> None:
        await ls.session.load_engine()

    @server.command(TOGGLE_COMMAND)
    @guarded(lambda: None)
    def toggle(ls: CodeLlamaServer, *args: Any) -> bool:
        ls.session.configure({"enable": not ls.session.settings.enable})
        return ls.session.settings.enable

    @server.command(ACCEPTED_COMMAND)
    @guarded(lambda: False)
    def accepted(ls: CodeLlamaServer, *args: Any) -> bool:
        """Count an accepted suggestion; False when its id is not known (any more)."""
        item, kind, length = _accepted_arguments(args)
        return ls.session.acceptance.accepted(item, kind, length)

    @server.feature(types.SHUTDOWN)
    @guarded(lambda: None)
    def shutdown(ls: CodeLlamaServer, *args: Any) -> None:
        ls.session.shutdown()
        ls.actions.shutdown()

    _register_actions(server)
    _register_context(server)
    return server


# -- code actions (Code Llama - Instruct); the work is in actions/lsp.py and actions/service.py -----
def _register_actions(server: CodeLlamaServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, actions_lsp.CODE_ACTION_OPTIONS)
    @guarded(list)
    def code_action(ls: CodeLlamaServer, params: types.CodeActionParams) -> list[types.CodeAction | types.Command]:
        return actions_lsp.code_actions(ls, params)

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def code_action_resolve(ls: CodeLlamaServer, params: types.CodeAction) -> types.CodeAction:
        # Not ``guarded``: a failure answers the action as it came (without an edit), not an empty value.
        try:
            return await actions_lsp.resolve(ls, params)
        except JsonRpcException:
            raise
        except Exception as exc:
            name = type(exc).__name__
            log.error("codeAction/resolve failed", exc_info=exc)
            ls.session.notifier.once(
                f"handler:{name}",
                f"codellama-ls: the code action failed ({name}); nothing was changed. The server log has the details.",
            )
            return params

    @server.feature(actions_lsp.INSTRUCT_PROMPT_METHOD)
    @guarded(dict)
    async def instruct_prompt(ls: CodeLlamaServer, params: Any) -> dict[str, Any]:
        return await actions_lsp.instruct_prompt(ls, params)

    @server.command(actions_lsp.RUN_COMMAND)
    @guarded(lambda: None)
    async def run_action(ls: CodeLlamaServer, *args: Any) -> dict[str, Any] | None:
        return await actions_lsp.command(ls, actions_lsp.RUN_COMMAND, args)

    @server.command(actions_lsp.EDIT_COMMAND)
    @guarded(lambda: None)
    async def edit_selection(ls: CodeLlamaServer, *args: Any) -> dict[str, Any] | None:
        return await actions_lsp.command(ls, actions_lsp.EDIT_COMMAND, args)

    @server.command(actions_lsp.EXPLAIN_COMMAND)
    @guarded(lambda: None)
    async def explain(ls: CodeLlamaServer, *args: Any) -> dict[str, Any] | None:
        return await actions_lsp.command(ls, actions_lsp.EXPLAIN_COMMAND, args)


# -- context from other files (issue 11): the work is in context/service.py ---------------------
def _register_context(server: CodeLlamaServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    @guarded(lambda: None)
    def did_save(ls: CodeLlamaServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.session.context.saved(params.text_document.uri)

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    @guarded(lambda: None)
    def did_change_workspace_folders(ls: CodeLlamaServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
        event = params.event
        ls.session.context.folders_changed([f.uri for f in event.added], [f.uri for f in event.removed])
        context_lsp.watch_files(ls)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    @guarded(lambda: None)
    def did_change_watched_files(ls: CodeLlamaServer, params: types.DidChangeWatchedFilesParams) -> None:
        ls.session.context.files_changed((change.uri, int(change.type)) for change in params.changes)


def _accepted_arguments(args: tuple[Any, ...]) -> tuple[str, str, int]:
    """``[item id, kind, accepted length]`` of ``codellama.accepted``, checked."""
    if len(args) != 3:
        raise JsonRpcInvalidParams(f"{ACCEPTED_COMMAND} takes [item id, kind, accepted length]")
    item, kind, length = args
    if not isinstance(item, str) or kind not in KINDS or isinstance(length, bool) or not isinstance(length, int):
        raise JsonRpcInvalidParams(
            f"{ACCEPTED_COMMAND} takes [item id, kind ({', '.join(KINDS)}), accepted length (an integer)]"
        )
    return item, kind, length
