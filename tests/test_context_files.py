"""Security rules of the workspace index: what may be read, and proof that nothing else is.

An audit hook records every ``open``, ``os.listdir`` and ``os.scandir`` of the process (the
index's background thread included) while a test builds an index and asks for context.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codellama_ls.context.files import FileRules, looks_secret
from codellama_ls.context.index import CHANGED, CREATED, DELETED, WorkspaceIndex
from codellama_ls.context.provider import ContextProvider
from codellama_ls.documents import path_to_uri, uri_to_path
from tests.context_helpers import split_at

_seen: list[str] = []
_recording = threading.Event()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _recording.is_set() and event in ("open", "os.listdir", "os.scandir") and args:
        path = args[0]
        if isinstance(path, (str, bytes, os.PathLike)):
            _seen.append(os.path.abspath(os.fsdecode(path)))


sys.addaudithook(_audit)  # hooks cannot be removed; this one only records while a test asks


@contextlib.contextmanager
def recording() -> Iterator[list[str]]:
    """Every path the process opens or lists meanwhile (all threads)."""
    _seen.clear()
    _recording.set()
    try:
        yield _seen
    finally:
        _recording.clear()


def write(path: Path, text: str = "x = 1\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def walked(rules: FileRules) -> set[str]:
    folder = rules.folders[0]
    return {os.path.relpath(f.path, folder.path) for _, files in rules.walk(folder) for f in files}


@pytest.mark.parametrize(
    "name",
    [
        ".env",
        ".env.local",
        "prod.env",
        "server.pem",
        "tls.key",
        "id_rsa",
        "id_rsa.pub",
        "id_ed25519",
        "cert.p12",
        "credentials",
        "credentials.json",
        "credentials.py",
        "client_secret_123.json",
        ".npmrc",
        ".pypirc",
        ".netrc",
        "secrets.yaml",
        "terraform.tfstate",
        "store.jks",
        "ID_RSA",
    ],
)
def test_secret_looking_names(name: str) -> None:
    assert looks_secret(name)


@pytest.mark.parametrize("name", ["app.py", "keys.py", "environment.ts", "secrets.py", "envelope.go", "monkey.rs"])
def test_ordinary_names_are_not_secret(name: str) -> None:
    assert not looks_secret(name)


def test_walk_honours_secrets_gitignore_excludes_size_and_language(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write(ws / "app.py")
    write(ws / "lib" / "util.ts", "export const a = 1;\n")
    write(ws / "credentials.py")
    write(ws / "config" / ".env")
    write(ws / "keys" / "server.pem.py")  # not secret by name: only real names count
    write(ws / ".ssh" / "helper.py")  # below a secrets folder
    write(ws / ".aws" / "login.py")
    write(ws / ".git" / "hooks" / "pre.py")
    write(ws / ".git" / "info" / "exclude", "private.py\n")
    write(ws / "private.py")
    write(ws / ".gitignore", "build/\n*.gen.py\n/top_only.py\n")
    write(ws / "build" / "out.py")
    write(ws / "x.gen.py")
    write(ws / "top_only.py")
    write(ws / "sub" / "top_only.py")  # `/top_only.py` is anchored at the root
    write(ws / "sub" / ".gitignore", "local_*.py\n!local_keep.py\n")
    write(ws / "sub" / "local_a.py")
    write(ws / "sub" / "local_keep.py")
    write(ws / "sub" / "deeper" / "local_b.py")
    write(ws / "generated" / "api.py")
    write(ws / "notes.txt")  # not source code
    (ws / "big.py").write_bytes(b"#" * 1_000_001)
    rules = FileRules([ws], exclude=["generated/"])
    assert walked(rules) == {
        "app.py",
        "lib/util.ts",
        "keys/server.pem.py",
        "sub/top_only.py",
        "sub/local_keep.py",
    }
    # the same rules for single paths (documents, watched-file events)
    assert rules.allowed(str(ws / "app.py"))
    for rel in [
        "credentials.py",
        "config/.env",
        ".ssh/helper.py",
        "build/out.py",
        "x.gen.py",
        "sub/local_a.py",
        "sub/deeper/local_b.py",
        "generated/api.py",
        "private.py",
        "top_only.py",
        ".git/hooks/pre.py",
    ]:
        assert not rules.allowed(str(ws / rel)), rel
    assert rules.allowed(str(ws / "sub" / "local_keep.py"))


def test_read_text_refuses_binary_big_secret_and_outside(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write(ws / "crlf.py").write_bytes(b"a = 1\r\nb = 2\rc = 3\n")
    (ws / "blob.py").write_bytes(b"abc\0def")
    (ws / "big.py").write_bytes(b"#" * 2_000_000)
    write(ws / ".env.py")
    write(tmp_path / "outside.py")
    rules = FileRules([ws])
    assert rules.read_text(str(ws / "crlf.py")) == "a = 1\nb = 2\nc = 3\n"
    assert rules.read_text(str(ws / "blob.py")) is None
    assert rules.read_text(str(ws / "big.py")) is None
    assert rules.read_text(str(ws / ".env.py")) is None
    assert rules.read_text(str(tmp_path / "outside.py")) is None
    assert rules.read_text(str(ws / ".." / "outside.py")) is None


def _tree_with_links(tmp_path: Path) -> tuple[Path, Path]:
    ws = tmp_path / "ws"
    outside = tmp_path / "outside"
    write(outside / "stolen.py", "def stolen():\n    return 'secret'\n")
    write(outside / "pkg" / "__init__.py")
    write(outside / "pkg" / "leak.py", "def leak():\n    pass\n")
    write(ws / "pkg" / "__init__.py")
    write(ws / "pkg" / "inner.py", "def inner():\n    return 1\n")
    write(ws / "main.py", "from pkg.inner import inner\nfrom linked.leak import leak\nfrom stolen import stolen\n\n")
    os.symlink(outside, ws / "linked")  # a folder link that leaves the workspace
    os.symlink(outside / "stolen.py", ws / "stolen.py")  # a file link that leaves it
    os.symlink(ws / "pkg", ws / "alias")  # a folder link inside the workspace: the same files again
    os.symlink(ws, ws / "pkg" / "loop")  # a loop
    os.symlink(ws / "pkg" / "inner.py", ws / "inner_link.py")  # a file link inside: fine
    return ws, outside


def test_symlinks_leaving_the_folder_are_never_followed(tmp_path: Path) -> None:
    ws, outside = _tree_with_links(tmp_path)
    text = (ws / "main.py").read_text() + "x = inner() + leak() + stolen()"
    with recording() as accesses:
        _use_links(ws, text)
    assert [p for p in accesses if p.startswith(str(outside))] == []
    assert any(p.startswith(str(ws)) for p in accesses)  # the hook does see the index's reads


def _use_links(ws: Path, text: str) -> None:
    index = WorkspaceIndex([ws])
    index.start()
    try:
        assert index.wait_ready(10)
        files = {os.path.relpath(os.path.join(d, n), ws) for d, names in index._tree.items() for n in names}
        assert files == {"main.py", "pkg/__init__.py", "pkg/inner.py", "inner_link.py"}  # no folder links
        main = ws / "main.py"
        uri = path_to_uri(str(main))
        index.open(uri, text, "python")
        assert index.wait_ready(10)
        provider = ContextProvider(index)
        prefix, suffix = split_at(text, "stolen()")
        index.wait_ready(10)
        found, _ = provider.definitions(str(main), str(main), "python", prefix, suffix)
        assert [f.definition.name for f in found] == ["inner"]
        assert index.rules.read_text(str(ws / "stolen.py")) is None
        assert index.rules.read_text(str(ws / "linked" / "leak.py")) is None
    finally:
        index.stop()


def test_nothing_outside_the_workspace_folders_is_read(tmp_path: Path) -> None:
    """Not by the walk, not by import resolution of a document that lives outside, not by reads."""
    ws = tmp_path / "ws"
    outside = tmp_path / "elsewhere"
    write(ws / "lib" / "core.py", "def core():\n    pass\n")
    write(outside / "lib" / "core.py", "def core():\n    pass\n")
    write(outside / "tool.py")
    with recording() as accesses:
        _use_outside_document(ws, outside)
    assert [p for p in accesses if p.startswith(str(outside))] == []
    assert any(p.startswith(str(ws)) for p in accesses)


def _use_outside_document(ws: Path, outside: Path) -> None:
    index = WorkspaceIndex([ws])
    index.start()
    try:
        assert index.wait_ready(10)
        # an editor may open a file outside the workspace: its own text comes with it
        doc = outside / "script.py"
        text = "from lib.core import core\nfrom . import tool\ncore()"
        index.open(path_to_uri(str(doc)), text, "python")
        assert index.wait_ready(10)
        provider = ContextProvider(index)
        found, _ = provider.definitions(str(doc), str(doc), "python", text, "")
        assert [f.key for f in found] == [str(ws / "lib" / "core.py")]  # the workspace's lib, not its neighbour's
        index.file_changed(str(outside / "tool.py"), CHANGED)
        index.file_changed(path_to_uri(str(outside / "lib")), CREATED)
        assert index.wait_ready(10)
        assert not index.exists(str(outside / "tool.py"))
        assert index.list_dir(str(outside / "lib")) == []
    finally:
        index.stop()


def test_secret_documents_are_never_context(tmp_path: Path, tokenizer_dir: Path) -> None:
    from codellama_ls.prompt.memo import MemoTokenizer
    from codellama_ls.prompt.tokens import CodeTokenizer

    tok = MemoTokenizer(CodeTokenizer.load(str(tokenizer_dir)))
    ws = tmp_path / "ws"
    write(ws / ".gitignore", "ignored/\n")
    write(ws / "a.py", "token = load_api_token(path)\n")
    index = WorkspaceIndex([ws])
    index.start()
    try:
        assert index.wait_ready(10)
        shared = "API_TOKEN = 'load_api_token path secret value'\nload_api_token(path)\n" * 3
        for name in (".env", "credentials.py", "ignored/keys.py"):
            index.open(path_to_uri(str(ws / name)), shared, "python")
        index.open(
            path_to_uri(str(ws / "ok.py")), "def load_api_token(path):\n    return open(path).read()\n", "python"
        )
        text = (ws / "a.py").read_text()
        index.open(path_to_uri(str(ws / "a.py")), text, "python")
        assert index.wait_ready(10)
        block = ContextProvider(index).context(path_to_uri(str(ws / "a.py")), "python", text, "", 256, tok)
        assert [uri_to_path(e.uri) for e in block.entries] == [str(ws / "ok.py")]
        assert "secret value" not in block.text
    finally:
        index.stop()


def test_watched_file_events_and_folder_changes(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    other = tmp_path / "other"
    write(ws / "a.py")
    write(other / "b.py")
    index = WorkspaceIndex([ws])
    index.start()
    try:
        assert index.wait_ready(10)
        assert index.exists(str(ws / "a.py")) and not index.exists(str(other / "b.py"))
        write(ws / "new.py")
        index.file_changed(path_to_uri(str(ws / "new.py")), CREATED)
        (ws / "a.py").unlink()
        index.file_changed(str(ws / "a.py"), DELETED)
        write(ws / "pkg" / "m.py")
        index.file_changed(str(ws / "pkg"), CREATED)
        assert index.wait_ready(10)
        assert index.exists(str(ws / "new.py")) and not index.exists(str(ws / "a.py"))
        assert index.list_dir(str(ws / "pkg")) == [str(ws / "pkg" / "m.py")]
        write(ws / ".gitignore", "pkg/\n")
        index.file_changed(str(ws / ".gitignore"), CREATED)
        assert index.wait_ready(10)
        assert not index.exists(str(ws / "pkg" / "m.py"))
        index.add_folder(other)
        assert index.wait_ready(10)
        assert index.exists(str(other / "b.py"))
        index.remove_folder(other)
        assert index.wait_ready(10)
        assert not index.exists(str(other / "b.py"))
        index.set_exclude(["new.py"])
        assert index.wait_ready(10)
        assert not index.exists(str(ws / "new.py"))
    finally:
        index.stop()


def test_queries_never_wait_for_the_walk(tmp_path: Path) -> None:
    """While the thread is busy (here: not even started), requests answer from what is there."""
    ws = tmp_path / "ws"
    write(ws / "m.py", "def helper(a, b):\n    return a\n")
    text = "from m import helper\nhelper("
    index = WorkspaceIndex([ws])
    assert not index.ready
    uri = path_to_uri(str(ws / "main.py"))
    index.open(uri, text, "python")
    provider = ContextProvider(index)
    found, pending = provider.definitions(str(ws / "main.py"), str(ws / "main.py"), "python", text, ")")
    assert found == [] and pending == {str(ws / "main.py")}  # nothing parsed yet: no context, no wait
    index.start()
    try:
        assert index.wait_ready(10)
        found, pending = provider.definitions(str(ws / "main.py"), str(ws / "main.py"), "python", text, ")")
        assert [f.definition.name for f in found] == ["helper"] and not pending
    finally:
        index.stop()
