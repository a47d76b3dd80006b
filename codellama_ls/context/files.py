"""Which files of the workspace may be read, and the only code that reads them.

The rules, applied to every path before it is opened or listed:

- only paths inside a workspace folder (lexically, and after resolving symlinks: a link that
  leads out of its folder is never followed, not even into another workspace folder);
- never a file that looks like a secret (:data:`SECRET_PATTERNS`) or anything below a folder
  that holds secrets (:data:`SECRET_DIRS`), nor version-control folders;
- never a path that a ``.gitignore`` (of the folder or any folder between it and the file, and
  ``.git/info/exclude``) ignores, nor one the ``contextExclude`` globs name (gitignore syntax,
  relative to the workspace folder);
- only source files of a known language, at most ``max_bytes`` (1 MB) long, and no file with
  a NUL byte in its first 8 KiB (binary).

Every read goes through :meth:`FileRules.read_text`, which checks these rules, resolves the
path once, and opens the resolved path with ``O_NOFOLLOW``.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from pathspec import GitIgnoreSpec

from codellama_ls.context.languages import INDEXED_EXTENSIONS

MAX_FILE_BYTES = 1_000_000
BINARY_PROBE = 8192

# Names (matched case-insensitively against the file name) that may hold credentials.
SECRET_PATTERNS = (
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.kdbx",
    "*.gpg",
    "*.asc",
    "*.crt",
    "*.cer",
    "*.der",
    "*.ovpn",
    "*.tfstate",
    "*.tfstate.*",
    "*.tfvars",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "credentials*",
    "*credentials.json",
    "client_secret*",
    "service-account*.json",
    "secrets.*",
    "*.secret",
    "*.secrets",
    ".git-credentials",
    ".netrc",
    "_netrc",
    ".npmrc",
    ".pypirc",
    ".htpasswd",
    ".pgpass",
    ".my.cnf",
    "known_hosts",
    "authorized_keys",
)
# Folders whose content is never read (credentials of tools, kept in a project by mistake).
SECRET_DIRS = frozenset({".ssh", ".gnupg", ".aws", ".azure", ".kube", ".docker", ".password-store", ".gcloud"})
VCS_DIRS = frozenset({".git", ".hg", ".svn", ".jj", ".bzr"})


_SECRET = re.compile("|".join(fnmatch.translate(p) for p in SECRET_PATTERNS))


def looks_secret(name: str) -> bool:
    """True for a file name that may hold credentials (never read, never used as context)."""
    low = name.lower()
    if low == "secrets.py" or low == "secrets.pyi":  # Python's own module of that name is code
        return False
    return _SECRET.match(low) is not None


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


@dataclass(frozen=True)
class Folder:
    path: str  # absolute, normalized, as the client named it
    real: str  # the same folder with symlinks resolved


@dataclass(frozen=True)
class FileStat:
    path: str
    size: int
    mtime_ns: int


class FileRules:
    """The workspace folders and the rules above; thread-safe (the index and requests share it)."""

    def __init__(
        self,
        folders: Iterable[str | os.PathLike[str]] = (),
        exclude: Iterable[str] = (),
        max_bytes: int = MAX_FILE_BYTES,
    ) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._folders: tuple[Folder, ...] = ()
        self._ignores: dict[str, GitIgnoreSpec | None] = {}  # folder path -> its .gitignore rules
        self._exclude = GitIgnoreSpec.from_lines([])
        self.set_exclude(exclude)
        for folder in folders:
            self.add_folder(folder)

    # -- configuration -------------------------------------------------------------------
    @property
    def folders(self) -> tuple[Folder, ...]:
        return self._folders

    def add_folder(self, folder: str | os.PathLike[str]) -> Folder:
        path = os.path.normpath(os.path.abspath(os.fspath(folder)))
        entry = Folder(path, os.path.realpath(path))
        with self._lock:
            if entry not in self._folders:
                # Longest first, so a nested workspace folder owns its own files.
                self._folders = tuple(sorted((*self._folders, entry), key=lambda f: -len(f.path)))
        return entry

    def remove_folder(self, folder: str | os.PathLike[str]) -> None:
        path = os.path.normpath(os.path.abspath(os.fspath(folder)))
        with self._lock:
            self._folders = tuple(f for f in self._folders if f.path != path)
            self._ignores = {k: v for k, v in self._ignores.items() if not _inside(k, path)}

    def set_exclude(self, globs: Iterable[str]) -> None:
        self._exclude = GitIgnoreSpec.from_lines([g for g in globs if g.strip()])

    # -- where a path belongs ------------------------------------------------------------
    def folder_of(self, path: str) -> Folder | None:
        """The workspace folder that holds ``path`` (an absolute path), lexically."""
        for folder in self._folders:
            if _inside(path, folder.path):
                return folder
        return None

    def relpath(self, path: str) -> str:
        """The path relative to its workspace folder, with ``/``; the file name when outside all."""
        folder = self.folder_of(path)
        if folder is None:
            return os.path.basename(path)
        return os.path.relpath(path, folder.path).replace(os.sep, "/")

    # -- the rules -----------------------------------------------------------------------
    def allowed(self, path: str, *, is_dir: bool = False) -> bool:
        """Whether ``path`` may be read (a file) or listed (``is_dir``); never touches its content."""
        path = os.path.normpath(os.path.abspath(path))
        folder = self.folder_of(path)
        if folder is None:
            return False
        rel = os.path.relpath(path, folder.path)
        parts = [] if rel == "." else rel.split(os.sep)
        if not self._names_allowed(parts, is_dir):
            return False
        if self._ignored(folder, parts, is_dir):
            return False
        real = os.path.realpath(path)
        return _inside(real, folder.real)

    def _names_allowed(self, parts: list[str], is_dir: bool) -> bool:
        dirs = parts if is_dir else parts[:-1]
        if any(p in VCS_DIRS or p in SECRET_DIRS for p in dirs):
            return False
        return is_dir or not parts or not looks_secret(parts[-1])

    def _ignored(self, folder: Folder, parts: list[str], is_dir: bool) -> bool:
        """``.gitignore`` and ``contextExclude``; a path below an ignored folder is ignored too."""
        for depth in range(len(parts)):
            last = depth == len(parts) - 1
            rel = "/".join(parts[: depth + 1]) + ("/" if is_dir or not last else "")
            if self._exclude.match_file(rel):
                return True
            verdict: bool | None = None
            base = folder.path
            for k in range(depth + 1):  # every .gitignore from the folder down to the parent
                spec = self.gitignore(base)
                if spec is not None:
                    sub = "/".join(parts[k : depth + 1]) + ("/" if is_dir or not last else "")
                    result = spec.check_file(sub).include
                    if result is not None:
                        verdict = result
                base = os.path.join(base, parts[k])
            if verdict:
                return True
        return False

    def gitignore(self, directory: str) -> GitIgnoreSpec | None:
        """The ignore rules that a folder's ``.gitignore`` (and, at the root, ``.git/info/exclude``) set."""
        hit = self._ignores.get(directory, False)
        if hit is not False:
            return hit  # type: ignore[return-value]
        lines: list[str] = []
        names = [".gitignore"]
        if any(f.path == directory for f in self._folders):
            names.append(os.path.join(".git", "info", "exclude"))
        for name in names:
            data = self._read_small(os.path.join(directory, name))
            if data is not None:
                lines.extend(data.decode("utf-8", "replace").splitlines())
        spec = GitIgnoreSpec.from_lines(lines) if any(ln.strip() for ln in lines) else None
        self._ignores[directory] = spec
        return spec

    def forget_gitignore(self, directory: str) -> None:
        """A ``.gitignore`` changed: read it again next time."""
        self._ignores.pop(directory, None)

    def _read_small(self, path: str) -> bytes | None:
        folder = self.folder_of(path)
        if folder is None or not _inside(os.path.realpath(path), folder.real):
            return None
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            return os.read(fd, 256 * 1024)
        finally:
            os.close(fd)

    # -- reading -------------------------------------------------------------------------
    def stat(self, path: str) -> FileStat | None:
        """Size and mtime of an allowed, indexable source file (a ``stat``, no read)."""
        if os.path.splitext(path)[1].lower() not in INDEXED_EXTENSIONS or not self.allowed(path):
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_size > self.max_bytes:
            return None
        return FileStat(os.path.normpath(os.path.abspath(path)), st.st_size, st.st_mtime_ns)

    def read_text(self, path: str) -> str | None:
        """The text of an allowed file with LF line ends; None when the rules or the content say no."""
        if not self.allowed(path):
            return None
        real = os.path.realpath(path)
        try:
            fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size > self.max_bytes:
                return None
            chunks = []
            size = 0
            while size <= self.max_bytes:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except OSError:
            return None
        finally:
            os.close(fd)
        data = b"".join(chunks)
        if len(data) > self.max_bytes or b"\0" in data[:BINARY_PROBE]:
            return None
        return normalize_newlines(data.decode("utf-8", "replace"))

    # -- walking -------------------------------------------------------------------------
    def walk(
        self, folder: Folder, stop: Callable[[], bool] = lambda: False, start: str | None = None
    ) -> Iterator[tuple[str, list[FileStat]]]:
        """Each listed folder below ``folder`` (or below ``start`` inside it) with its indexable files.

        Depth first, reading no file content. A file symlink counts only when it resolves inside
        the workspace folder; folder symlinks are never followed (out of the folder they leave
        it, inside it they list files twice or loop).
        """
        root = folder.path
        first: tuple[str, ...] = ()
        if start is not None and start != folder.path:
            if not _inside(start, folder.path) or not self.allowed(start, is_dir=True):
                return
            first = tuple(os.path.relpath(start, folder.path).split(os.sep))
            root = start
        specs0: tuple[tuple[int, GitIgnoreSpec], ...] = ()
        base = folder.path
        for depth in range(len(first)):  # the .gitignore files above ``start``
            spec = self.gitignore(base)
            if spec is not None:
                specs0 = (*specs0, (depth, spec))
            base = os.path.join(base, first[depth])
        stack: list[tuple[str, tuple[str, ...], tuple[tuple[int, GitIgnoreSpec], ...]]] = [(root, first, specs0)]
        while stack:
            if stop():
                return
            directory, parts, specs = stack.pop()
            try:
                with os.scandir(directory) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError:
                continue
            if not parts or any(e.name == ".gitignore" for e in entries):
                own = self.gitignore(directory)
                if own is not None:
                    specs = (*specs, (len(parts), own))
            subdirs = []
            files: list[FileStat] = []
            for entry in entries:
                name = entry.name
                try:
                    if entry.is_symlink():
                        real = os.path.realpath(entry.path)
                        if not _inside(real, folder.real) or os.path.isdir(real):
                            # Leaves the workspace folder: not followed. A folder link inside it
                            # would only list the same files twice (or loop): not followed either.
                            continue
                        is_dir = False
                    else:
                        is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                rel = (*parts, name)
                if is_dir:
                    if name in VCS_DIRS or name in SECRET_DIRS or self._spec_ignored(rel, specs, True):
                        continue
                    subdirs.append((entry.path, rel))
                    continue
                if os.path.splitext(name)[1].lower() not in INDEXED_EXTENSIONS or looks_secret(name):
                    continue
                if self._spec_ignored(rel, specs, False):
                    continue
                try:
                    st = entry.stat(follow_symlinks=True)
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode) or st.st_size > self.max_bytes:
                    continue
                files.append(FileStat(entry.path, st.st_size, st.st_mtime_ns))
            yield directory, files
            for path, rel in reversed(subdirs):
                stack.append((path, rel, specs))

    def _spec_ignored(self, rel: tuple[str, ...], specs: tuple[tuple[int, GitIgnoreSpec], ...], is_dir: bool) -> bool:
        suffix = "/" if is_dir else ""
        if self._exclude.match_file("/".join(rel) + suffix):
            return True
        verdict: bool | None = None
        for depth, spec in specs:
            result = spec.check_file("/".join(rel[depth:]) + suffix).include
            if result is not None:
                verdict = result
        return bool(verdict)


def normalize_newlines(text: str) -> str:
    """LSP line ends (CRLF, CR) as LF, so line numbers match the editor's."""
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")
