"""Context's side of the LSP: the workspace folders of ``initialize`` and dynamic registration of
``workspace/didChangeWatchedFiles`` (the server's table in ``server.py`` calls these)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Coroutine
from typing import Any, Protocol

from lsprotocol import types

from codellama_ls.context.service import watch_globs
from codellama_ls.session import Session

log = logging.getLogger(__name__)


class WatchingServer(Protocol):
    """What registering file watching needs from the server."""

    watching: bool

    @property
    def session(self) -> Session: ...

    @property
    def client_capabilities(self) -> types.ClientCapabilities: ...

    def background(self, work: Coroutine[Any, Any, None]) -> None: ...

    def client_register_capability_async(self, params: types.RegistrationParams) -> Any: ...


def workspace_uris(params: types.InitializeParams) -> list[str]:
    """The workspace folders; a client without them names one root (``rootUri``, or the older ``rootPath``)."""
    if params.workspace_folders is not None:
        return [folder.uri for folder in params.workspace_folders]
    if params.root_uri:
        return [params.root_uri]
    return [params.root_path] if params.root_path else []


def watch_files(ls: WatchingServer) -> None:
    """Ask the client to report changes of the files the index keeps (``workspace/didChangeWatchedFiles``),
    once, when it can register that dynamically and there is a folder to watch. Never waited for."""
    caps = ls.client_capabilities.workspace
    watched = caps.did_change_watched_files if caps else None
    if ls.watching or not (watched and watched.dynamic_registration) or not ls.session.context.folders:
        return
    ls.watching = True
    watchers = [types.FileSystemWatcher(glob_pattern=glob) for glob in watch_globs()]
    watchers.append(types.FileSystemWatcher(glob_pattern="**/*", kind=types.WatchKind.Delete))  # folders too
    registration = types.Registration(
        id=f"codellama-ls/watch/{uuid.uuid4()}",
        method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
        register_options=types.DidChangeWatchedFilesRegistrationOptions(watchers=watchers),
    )

    async def register() -> None:
        try:
            await asyncio.wait_for(
                ls.client_register_capability_async(types.RegistrationParams(registrations=[registration])), 30
            )
        except Exception as exc:  # no answer or an error: files changed outside the editor go unnoticed
            log.info("client did not register file watching: %s", type(exc).__name__)

    ls.background(register())
