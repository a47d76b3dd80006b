"""Context from other files, as the server runs it: one index and one provider, fed by LSP events.

The server (``lsp/server.py``) and the request pipeline (``pipeline/completion.py``) only call this class:

==========================================  ==============================================
event                                       call
==========================================  ==============================================
``initialize`` (folders, else root)         :meth:`begin` (after the settings are applied)
settings changed                            :meth:`apply` (``contextTokens`` 0 stops the index,
                                            ``contextExclude`` walks the folders again)
``workspace/didChangeWorkspaceFolders``     :meth:`folders_changed`
``textDocument/didOpen``                    :meth:`opened`
``textDocument/didChange``                  :meth:`changed` (only marks the document)
``textDocument/didSave`` / ``didClose``     :meth:`saved` / :meth:`closed`
``workspace/didChangeWatchedFiles``         :meth:`files_changed`
a completion or ``codellama/prompt``        :meth:`block`
``shutdown``                                :meth:`stop`
==========================================  ==============================================

**The keystroke path stays cheap.** ``changed`` adds the URI to a set; the document's text
(the server's :class:`~codellama_ls.documents.DocumentStore` has it) goes to the index only
when a request wants a block, or on save and close. The index parses a document being typed
in at most every half second, on its own thread; :meth:`block` never waits for that thread.

**Off means off.** With ``contextTokens`` 0 no index exists: no folder is listed, no file is
read, and every block is empty.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from codellama_ls.context.block import EMPTY, ContextBlock
from codellama_ls.context.languages import INDEXED_EXTENSIONS
from codellama_ls.documents import uri_to_path

if TYPE_CHECKING:
    from codellama_ls.config import Settings
    from codellama_ls.context.index import WorkspaceIndex
    from codellama_ls.context.provider import ContextProvider
    from codellama_ls.documents import DocumentStore
    from codellama_ls.prompt.tokens import PromptTokenizer

log = logging.getLogger(__name__)


def folder_paths(uris: Iterable[str]) -> list[str]:
    """Local folders of workspace-folder URIs; other schemes (``vscode-vfs:``...) cannot be read."""
    paths = []
    for uri in uris:
        path = uri_to_path(uri) if "://" in uri else os.path.abspath(uri)
        if path is not None and path not in paths:
            paths.append(path)
    return paths


def watch_globs() -> list[str]:
    """What ``workspace/didChangeWatchedFiles`` should report: the files the index keeps, and the
    ignore files that change which of them count."""
    extensions = ",".join(sorted(ext.lstrip(".") for ext in INDEXED_EXTENSIONS))
    return [f"**/*.{{{extensions}}}", "**/.gitignore", "**/.git/info/exclude"]


class ProjectContext:
    """The workspace index and the context provider of one server (or one CLI run)."""

    def __init__(self, documents: DocumentStore) -> None:
        self.documents = documents
        self.index: WorkspaceIndex | None = None
        self.provider: ContextProvider | None = None
        self.folders: list[str] = []
        self.exclude: tuple[str, ...] = ()
        self.enabled = True
        self.begun = False  # the workspace is known (initialize, or the CLI's --workspace)
        self._dirty: set[str] = set()

    # -- lifecycle -------------------------------------------------------------------------
    def begin(self, folders: Iterable[str], settings: Settings) -> None:
        """The workspace is known: start indexing it (on a background thread) unless context is off."""
        self.folders = list(dict.fromkeys(folders))
        self.begun = True
        self.apply(settings)

    def apply(self, settings: Settings) -> None:
        """Settings changed: start or stop the index, or hand it new ``contextExclude`` globs."""
        self.enabled = settings.context_tokens > 0
        exclude = tuple(settings.context_exclude)
        changed = exclude != self.exclude
        self.exclude = exclude
        if not self.begun:
            return
        if not self.enabled:
            self.stop()
        elif self.index is None:
            self._start()
        elif changed:
            self.index.set_exclude(exclude)

    def _start(self) -> None:
        from codellama_ls.context.index import WorkspaceIndex
        from codellama_ls.context.provider import ContextProvider

        index = WorkspaceIndex(self.folders, self.exclude)
        for doc in self.documents:  # documents opened before (context was off, or the CLI's file)
            index.open(doc.uri, doc.lf_text, doc.language_id)
        index.start()
        self.index, self.provider = index, ContextProvider(index)
        self._dirty.clear()
        log.info("context: indexing %d workspace folder(s)", len(self.folders))

    def stop(self) -> None:
        """Stop the index thread and forget everything it held."""
        index, self.index, self.provider = self.index, None, None
        self._dirty.clear()
        if index is not None:
            index.stop()

    @property
    def ready(self) -> bool:
        """Nothing is left to walk or parse (always, with no index)."""
        return self.index is None or self.index.ready

    def wait_ready(self, timeout: float) -> bool:
        """Block until the index is idle (the one-shot CLI only; never the server's event loop)."""
        return self.index is None or self.index.wait_ready(timeout)

    # -- workspace folders and files on disk -------------------------------------------------
    def folders_changed(self, added: Iterable[str], removed: Iterable[str]) -> None:
        for path in folder_paths(removed):
            if path in self.folders:
                self.folders.remove(path)
            if self.index is not None:
                self.index.remove_folder(path)
        for path in folder_paths(added):
            if path not in self.folders:
                self.folders.append(path)
                if self.index is not None:
                    self.index.add_folder(path)

    def files_changed(self, changes: Iterable[tuple[str, int]]) -> None:
        """Files created (1), changed (2) or deleted (3) on disk; those outside the folders are ignored
        (the index would only ``stat`` them, but nothing outside the workspace is touched at all)."""
        index = self.index
        if index is None:
            return
        for uri, kind in changes:
            path = uri_to_path(uri)
            if path is not None and index.rules.folder_of(path) is not None:
                index.file_changed(path, kind)

    # -- documents -------------------------------------------------------------------------
    def opened(self, uri: str, text: str, language_id: str) -> None:
        if self.index is not None:
            self._dirty.discard(uri)
            self.index.open(uri, text, language_id)

    def changed(self, uri: str) -> None:
        if self.index is not None:
            self._dirty.add(uri)

    def saved(self, uri: str) -> None:
        if self.index is not None:
            self._flush(uri)
            self.index.saved(uri)

    def closed(self, uri: str) -> None:
        """Before the store forgets the document: its last text stays a source of similar code."""
        if self.index is not None and self.provider is not None:
            self._flush(uri)
            self.index.close(uri)
            self.provider.forget(uri)

    def _flush(self, uri: str) -> None:
        if uri in self._dirty and self.index is not None:
            self._dirty.discard(uri)
            if uri in self.documents:
                self.index.change(uri, self.documents.get(uri).lf_text)

    # -- requests --------------------------------------------------------------------------
    def block(
        self, uri: str, language_id: str, prefix: str, suffix: str, budget: int, tok: PromptTokenizer
    ) -> ContextBlock:
        """The context block at a cursor (empty while the index has nothing for it); never waits."""
        if self.index is None or self.provider is None or budget <= 0:
            return EMPTY
        for dirty in list(self._dirty):
            self._flush(dirty)
        return self.provider.context(uri, language_id, prefix, suffix, budget, tok)

    def status(self) -> dict[str, Any]:
        """For ``codellama/status``: whether context is on, what is indexed, how blocks were made."""
        index, provider = self.index, self.provider
        if index is None or provider is None:
            return {"enabled": False, "folders": len(self.folders)}
        return {
            "enabled": True,
            "folders": len(self.folders),
            "ready": index.ready,
            "files": index.file_count(),
            "parsed": index.stats["analysed"],
            "blocks": dict(provider.stats),
            "rebuilt": {_camel(reason): n for reason, n in provider.reasons.items()},  # why blocks were made
        }


def _camel(words: str) -> str:
    """``new place`` → ``newPlace``: JSON keys a client can turn into names."""
    first, *rest = words.split()
    return first + "".join(word.capitalize() for word in rest)
