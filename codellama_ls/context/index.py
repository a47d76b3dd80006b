"""The workspace as context sees it: which files exist, open documents, and parsed files.

A :class:`WorkspaceIndex` is fed by the server's notifications and works on one background
thread; nothing that a request calls ever waits for that thread:

============================================  =========================================
LSP                                           call
============================================  =========================================
``initialize`` (``workspaceFolders``/root)    ``WorkspaceIndex(folders, exclude)``, ``start()``
``workspace/didChangeWorkspaceFolders``       ``add_folder(path)`` / ``remove_folder(path)``
``textDocument/didOpen``                      ``open(uri, text, language_id)``
``textDocument/didChange``                    ``change(uri, text)`` (the whole new text)
``textDocument/didSave``                      ``saved(uri)``
``textDocument/didClose``                     ``close(uri)``
``workspace/didChangeWatchedFiles``           ``file_changed(uri_or_path, kind)`` (1/2/3)
``contextExclude`` setting changed            ``set_exclude(globs)``
``shutdown``                                  ``stop()``
============================================  =========================================

What the thread does, most urgent first: apply file-change events, parse documents and the
files they import (:func:`.parsing.analyse`), then walk the workspace folders
(:meth:`.files.FileRules.walk`). The walk only lists files (no content is read), so memory
grows with the number of files (a few hundred bytes each), not their size; file content is
read and parsed only for open documents and the files they use, and kept in an LRU bounded by
``cache_chars``. Documents' text always wins over the disk.

Queries (:meth:`analysis`, :meth:`exists`, :meth:`list_dir`...) answer from what is there now;
``ready`` says whether the walk has finished and nothing is queued. While a folder is still
being walked, :meth:`exists` asks the file system (a ``stat``, under the same rules), so
imports resolve before the walk ends.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from codellama_ls.context.analysis import Analysis, analyse
from codellama_ls.context.files import (
    MAX_FILE_BYTES,
    FileRules,
    FileStat,
    Folder,
    normalize_newlines,
)
from codellama_ls.context.imports import Resolver
from codellama_ls.context.languages import INDEXED_EXTENSIONS, family, language_of_id, language_of_path
from codellama_ls.context.similar import WINDOW_LINES, WINDOW_STEP, windows
from codellama_ls.documents import path_to_uri, uri_to_path

log = logging.getLogger(__name__)

CREATED, CHANGED, DELETED = 1, 2, 3  # LSP FileChangeType


@dataclass
class Document:
    """An open (or recently edited and closed) document; its text is the editor's."""

    uri: str
    key: str  # the file path, or the URI when it has none
    path: str | None
    language: str | None
    text: str
    version: int  # negative: never equal to a file's mtime
    edited: bool = False
    closed: bool = False


class WorkspaceIndex:
    """Files of the workspace folders, open documents, and a cache of parsed files."""

    def __init__(
        self,
        folders: Iterable[str | os.PathLike[str]] = (),
        exclude: Iterable[str] = (),
        *,
        max_file_bytes: int = MAX_FILE_BYTES,
        cache_chars: int = 16_000_000,
        recent_documents: int = 16,
        doc_refresh_s: float = 0.5,
    ) -> None:
        self.rules = FileRules(exclude=exclude, max_bytes=max_file_bytes)
        self.cache_chars = cache_chars
        self.doc_refresh_s = doc_refresh_s
        self._made: dict[str, float] = {}
        self._deferred: dict[str, float] = {}  # key -> when to parse it again (documents being typed in)
        self.recent_documents = recent_documents
        self.generation = 0  # bumped whenever the set of files changes
        self._tree: dict[str, dict[str, tuple[int, int]]] = {}  # folder -> file name -> (size, mtime_ns)
        self._walked: set[str] = set()  # workspace folders whose walk has finished
        self._docs: dict[str, Document] = {}  # by URI
        self._doc_keys: dict[str, str] = {}  # key -> URI of the open document
        self._recent: OrderedDict[str, Document] = OrderedDict()
        self._analyses: OrderedDict[str, Analysis] = OrderedDict()
        self._cached_chars = 0
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._events: deque[tuple[str, int]] = deque()
        self._queue: deque[str] = deque()
        self._queued: set[str] = set()
        self._walks: deque[tuple[Folder, str | None]] = deque()
        self._walk: Iterator[tuple[str, list[FileStat]]] | None = None
        self._walking: tuple[Folder, str | None] | None = None
        self._walk_seen: set[str] = set()
        self._busy = False
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._counter = 0
        self.resolver = Resolver(self)
        self.stats = {"walked_files": 0, "analysed": 0, "walk_seconds": 0.0}
        self._walk_started = 0.0
        for folder in folders:
            self.add_folder(folder)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the background thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="codellama-context-index", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def ready(self) -> bool:
        """The folders are walked and no document or event waits to be processed."""
        with self._lock:
            return not self._has_work()

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Block until ``ready`` (for tests, benchmarks and the CLI; never on the event loop)."""
        deadline = time.monotonic() + timeout
        with self._wake:
            while self._has_work():
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None:
                    return False
                self._wake.wait(left)
        return True

    # -- workspace folders -----------------------------------------------------------------
    def add_folder(self, path: str | os.PathLike[str]) -> None:
        folder = self.rules.add_folder(path)
        with self._wake:
            self._walks.append((folder, None))
            self.generation += 1
            self._wake.notify_all()

    def remove_folder(self, path: str | os.PathLike[str]) -> None:
        gone = os.path.normpath(os.path.abspath(os.fspath(path)))
        self.rules.remove_folder(gone)
        with self._wake:
            self._walks = deque(w for w in self._walks if w[0].path != gone)
            self._walked.discard(gone)
            self._events.append((gone, -1))  # the thread drops the folder's files
            self._wake.notify_all()

    def set_exclude(self, globs: Iterable[str]) -> None:
        """``contextExclude`` changed: walk every folder again under the new globs."""
        self.rules.set_exclude(globs)
        with self._wake:
            self.generation += 1
            self._walks.extend((f, None) for f in self.rules.folders)
            self._analyses.clear()
            self._cached_chars = 0
            self._wake.notify_all()

    # -- documents -------------------------------------------------------------------------
    def open(self, uri: str, text: str, language_id: str) -> None:
        path = uri_to_path(uri)
        self._recent.pop(uri, None)
        doc = Document(
            uri, path or uri, path, language_of_id(language_id, path), normalize_newlines(text), self._next()
        )
        self._docs[uri] = doc
        self._doc_keys[doc.key] = uri
        self.generation += 1  # an unsaved new file exists for import resolution now
        self._schedule(doc.key)

    def change(self, uri: str, text: str) -> None:
        doc = self._docs.get(uri)
        if doc is None:
            return
        doc.text = normalize_newlines(text)
        doc.version = self._next()
        doc.edited = True  # parsed again when a request asks (see ``analysis``), not on every keystroke

    def close(self, uri: str) -> None:
        doc = self._docs.pop(uri, None)
        if doc is None:
            return
        if self._doc_keys.get(doc.key) == uri:
            del self._doc_keys[doc.key]
            self.generation += 1
        if doc.edited:  # recently edited: still a source of similar code
            doc.closed = True
            self._recent[uri] = doc
            while len(self._recent) > self.recent_documents:
                self._recent.popitem(last=False)
        self._schedule(doc.key)  # the disk version is what counts again

    def saved(self, uri: str) -> None:
        path = uri_to_path(uri)
        if path is not None:
            self.file_changed(path, CHANGED)

    def file_changed(self, uri_or_path: str, kind: int) -> None:
        """A watched file was created (1), changed (2) or deleted (3)."""
        path = uri_to_path(uri_or_path) if "://" in uri_or_path else os.path.normpath(os.path.abspath(uri_or_path))
        if path is None:
            return
        with self._wake:
            self._events.append((path, kind))
            self._wake.notify_all()

    def _next(self) -> int:
        self._counter += 1
        return -self._counter

    # -- queries (never wait for the thread) -----------------------------------------------
    def document(self, uri: str) -> Document | None:
        return self._docs.get(uri)

    def recent(self, uri: str) -> Document | None:
        """A closed document that was edited while open."""
        return self._recent.get(uri)

    def documents(self, language_family: str | None = None) -> list[Document]:
        """Open documents, then recently edited closed ones (newest first), of a language family."""
        docs = [*self._docs.values(), *reversed(self._recent.values())]
        if language_family is None:
            return docs
        return [d for d in docs if family(d.language) == language_family]

    def folders(self) -> list[str]:
        return [f.path for f in self.rules.folders]

    def relpath(self, key: str) -> str:
        if key.startswith("/") or os.path.isabs(key):
            return self.rules.relpath(key)
        return key.rsplit("/", 1)[-1]

    def uri_of(self, key: str) -> str:
        uri = self._doc_keys.get(key)
        if uri is not None:
            return uri
        return path_to_uri(key) if os.path.isabs(key) else key

    def exists(self, path: str) -> bool:
        directory, name = os.path.split(path)
        entries = self._tree.get(directory)
        if entries is not None and name in entries:
            return True
        if path in self._doc_keys:
            return self.rules.folder_of(path) is not None and self.rules.allowed(path)
        folder = self.rules.folder_of(path)
        if folder is None or folder.path in self._walked:
            return False
        return self.rules.stat(path) is not None  # still walking: ask the file system

    def is_file(self, path: str) -> bool:
        if not self.rules.allowed(path):
            return False
        return os.path.isfile(path)

    def list_dir(self, directory: str) -> list[str]:
        entries = self._tree.get(directory)
        folder = self.rules.folder_of(directory)
        if entries is None and folder is not None and folder.path not in self._walked:
            return self._list_now(directory)
        names = set(entries or ())
        names.update(os.path.basename(k) for k in self._doc_keys if os.path.dirname(k) == directory)
        return [os.path.join(directory, n) for n in sorted(names)]

    def _list_now(self, directory: str) -> list[str]:
        if not self.rules.allowed(directory, is_dir=True):
            return []
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return []
        return [
            os.path.join(directory, n)
            for n in names
            if os.path.splitext(n)[1].lower() in INDEXED_EXTENSIONS and self.rules.stat(os.path.join(directory, n))
        ]

    def read_small(self, path: str) -> str | None:
        return self.rules.read_text(path)

    def file_count(self) -> int:
        return sum(len(v) for v in list(self._tree.values()))

    def version(self, key: str) -> int:
        """The current version of a file or document: a document's counter, else the file's mtime."""
        uri = self._doc_keys.get(key)
        if uri is not None:
            return self._docs[uri].version
        directory, name = os.path.split(key)
        entry = self._tree.get(directory, {}).get(name)
        return entry[1] if entry is not None else 0

    def analysis(self, key: str) -> Analysis | None:
        """The newest parse of a file or document; schedules a new one when it is out of date.

        Returns a stale parse while the new one is not ready (its lines and line numbers belong
        together), and None when there is none yet.
        """
        with self._lock:
            found = self._analyses.get(key)
            if found is not None:
                self._analyses.move_to_end(key)
        if found is None or found.version != self.version(key):
            # A document being typed in is parsed again at most every ``doc_refresh_s``.
            due = self._made.get(key, 0.0) + self.doc_refresh_s
            if found is None or key not in self._doc_keys or time.monotonic() >= due:
                self._schedule(key)
            else:
                with self._wake:
                    self._deferred.setdefault(key, due)
                    self._wake.notify_all()
        return found

    def pending(self, key: str) -> bool:
        with self._lock:
            return key in self._queued

    # -- the background thread -------------------------------------------------------------
    def _has_work(self) -> bool:
        """Anything queued or under way (the lock is held)."""
        return bool(self._busy or self._events or self._queue or self._walks or self._walking or self._deferred)

    def _take_due(self) -> None:
        """Deferred parses whose time has come join the queue (the lock is held)."""
        now = time.monotonic()
        for key in [k for k, due in self._deferred.items() if due <= now]:
            del self._deferred[key]
            if key not in self._queued:
                self._queued.add(key)
                self._queue.append(key)

    def _schedule(self, key: str) -> None:
        with self._wake:
            if key not in self._queued:
                self._queued.add(key)
                if key in self._doc_keys:
                    self._queue.appendleft(key)
                else:
                    self._queue.append(key)
                self._wake.notify_all()

    def _run(self) -> None:
        while True:
            with self._wake:
                while True:
                    self._take_due()
                    if self._stopped or self._events or self._queue or self._walks or self._walking:
                        break
                    self._busy = False
                    self._wake.notify_all()
                    due = min(self._deferred.values(), default=None)
                    self._wake.wait(None if due is None else max(due - time.monotonic(), 0.001))
                if self._stopped:
                    self._busy = False
                    self._wake.notify_all()
                    return
                self._busy = True
                event = self._events.popleft() if self._events else None
                key = self._queue.popleft() if event is None and self._queue else None
                if key is not None:
                    self._queued.discard(key)  # a change from now on queues it again
            try:
                if event is not None:
                    self._apply(*event)
                elif key is not None:
                    self._analyse(key)
                else:
                    self._walk_step()
            except Exception:  # the index must outlive any one bad file
                log.exception("context index")
            time.sleep(0)  # let the event loop have the interpreter

    def _walk_step(self, batch: int = 64) -> None:
        if self._walk is None:
            with self._lock:
                if not self._walks:
                    return
                self._walking = self._walks.popleft()
            folder, start = self._walking
            self._walk = self.rules.walk(folder, lambda: self._stopped, start)
            self._walk_seen = set()
            self._walk_started = time.perf_counter()
        assert self._walking is not None
        folder, start = self._walking
        for _ in range(batch):
            item = next(self._walk, None)
            if item is None:
                self._finish_walk(folder, start)
                return
            directory, files = item
            self._walk_seen.add(directory)
            old = self._tree.get(directory)
            new = {os.path.basename(f.path): (f.size, f.mtime_ns) for f in files}
            if new:
                self._tree[directory] = new
            elif old is not None:
                del self._tree[directory]
            if old != new:
                self.generation += 1
                self.stats["walked_files"] += len(new)

    def _finish_walk(self, folder: Folder, start: str | None) -> None:
        top = start or folder.path
        if folder.path in [f.path for f in self.rules.folders]:
            for directory in [d for d in self._tree if _under(d, top) and d not in self._walk_seen]:
                del self._tree[directory]
                self.generation += 1
            if start is None:
                self._walked.add(folder.path)
        self.stats["walk_seconds"] += time.perf_counter() - self._walk_started
        with self._wake:
            self._walk = None
            self._walking = None
            self._walk_seen = set()
            self._wake.notify_all()

    def _apply(self, path: str, kind: int) -> None:
        """A file event, on the thread that owns the file tree."""
        self.generation += 1
        if kind == -1:  # a workspace folder was removed
            for directory in [d for d in self._tree if _under(d, path) and self.rules.folder_of(d) is None]:
                del self._tree[directory]
            with self._lock:
                for key in [k for k in self._analyses if _under(k, path) and self.rules.folder_of(k) is None]:
                    self._drop(key)
            return
        directory, name = os.path.split(path)
        if name == ".gitignore" or path.endswith(os.path.join(".git", "info", "exclude")):
            self.rules.forget_gitignore(
                directory if name == ".gitignore" else os.path.dirname(os.path.dirname(directory))
            )
            folder = self.rules.folder_of(path)
            if folder is not None:
                with self._lock:
                    self._walks.append((folder, None))
            return
        if kind == DELETED:
            entries = self._tree.get(directory)
            if entries is not None and name in entries:
                self._tree[directory] = {n: v for n, v in entries.items() if n != name}
            for d in [d for d in self._tree if _under(d, path)]:  # a deleted folder
                del self._tree[d]
            with self._lock:
                for key in [k for k in self._analyses if _under(k, path)]:
                    self._drop(key)
            return
        if os.path.isdir(path):  # a created (or changed) folder: list it
            folder = self.rules.folder_of(path)
            if folder is not None:
                with self._lock:
                    self._walks.appendleft((folder, path))
            return
        found = self.rules.stat(path)
        entries = dict(self._tree.get(directory, {}))
        if found is None:
            entries.pop(name, None)
        else:
            entries[name] = (found.size, found.mtime_ns)
        if entries:
            self._tree[directory] = entries
        else:
            self._tree.pop(directory, None)

    def _analyse(self, key: str) -> None:
        uri = self._doc_keys.get(key)
        doc = self._docs.get(uri) if uri is not None else None
        if doc is not None:
            text, version, lang, path = doc.text, doc.version, doc.language, doc.path
        else:
            if not os.path.isabs(key):
                return
            path = key
            lang = language_of_path(key)
            version = self.version(key)
            with self._lock:
                cached = self._analyses.get(key)
            if cached is not None and cached.version == version:
                return
            read = self.rules.read_text(key) if lang is not None else None
            if read is None:
                return
            text = read
        if lang is None:
            return
        result = analyse(key, lang, text, version, path)
        if doc is not None:  # a source of similar code: its windows are ready before a request needs them
            result.windows = windows(result.lines, WINDOW_LINES, WINDOW_STEP)
        self.stats["analysed"] += 1
        with self._lock:
            self._drop(key)
            self._analyses[key] = result
            self._made[key] = time.monotonic()
            self._cached_chars += len(text)
            while self._cached_chars > self.cache_chars and len(self._analyses) > 1:
                oldest = next(iter(self._analyses))
                self._drop(oldest)
        if doc is not None and path is not None:
            self._prefetch(result, path)

    def _drop(self, key: str) -> None:
        """Forget one parse (the lock is held)."""
        old = self._analyses.pop(key, None)
        self._made.pop(key, None)
        if old is not None:
            self._cached_chars -= old.size

    def _prefetch(self, analysis: Analysis, path: str, limit: int = 64) -> None:
        """Parse the files a document imports now, so its first request finds them."""
        self.resolver.clear(self.generation)
        targets: list[str] = []
        for binding in analysis.bindings:
            targets.extend(self.resolver.module_files(analysis.language, path, binding.module))
            if binding.name not in (None, "*"):
                sub = self.resolver.submodule(analysis.language, binding.module, binding.name)
                if sub is not None:
                    targets.extend(self.resolver.module_files(analysis.language, path, sub))
        if analysis.language == "go":
            targets.extend(self.resolver.package_files(path))
        for target in list(dict.fromkeys(targets))[:limit]:
            with self._lock:
                cached = self._analyses.get(target)
            if cached is None or cached.version != self.version(target):
                self._schedule(target)


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip(os.sep) + os.sep)
