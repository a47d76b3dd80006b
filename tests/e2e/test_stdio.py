"""The stdio server reads a pipe with asyncio and anything else with pygls' reader."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from codellama_ls.lsp.stdio import is_pipe
from tests.support.rawlsp import server_env


def _message(payload: dict) -> bytes:
    body = json.dumps(payload).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


SESSION = b"".join(
    _message(m)
    for m in (
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}},
        {"jsonrpc": "2.0", "id": 2, "method": "shutdown"},
        {"jsonrpc": "2.0", "method": "exit"},
    )
)


def test_is_pipe(tmp_path):
    read, write = os.pipe()
    with os.fdopen(read, "rb") as r, os.fdopen(write, "wb"), open(tmp_path / "f", "wb+") as f:
        assert is_pipe(r) and not is_pipe(f)


@pytest.mark.parametrize("source", ["pipe", "file"])
def test_serves_a_session_from_a_pipe_or_a_file(tmp_path, source):
    command = [sys.executable, "-m", "codellama_ls", "--log-level", "WARNING"]
    if source == "pipe":
        done = subprocess.run(command, input=SESSION, capture_output=True, timeout=60, env=server_env())
    else:
        (tmp_path / "in").write_bytes(SESSION)
        with open(tmp_path / "in", "rb") as stdin:
            done = subprocess.run(command, stdin=stdin, capture_output=True, timeout=60, env=server_env())
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b'"id": 1' in done.stdout and b"inlineCompletionProvider" in done.stdout
    assert b'"id": 2' in done.stdout


def test_a_request_sees_the_text_it_was_sent_for():
    """A didChange right behind a request (one read) must not reach the document first."""
    uri = "file:///tmp/order.py"
    position = {"textDocument": {"uri": uri}, "position": {"line": 0, "character": 3}, "context": {"triggerKind": 2}}
    shrink = {
        "textDocument": {"uri": uri, "version": 2},
        "contentChanges": [
            {"range": {"start": {"line": 0, "character": 2}, "end": {"line": 0, "character": 3}}, "text": ""}
        ],
    }
    item = {"uri": uri, "languageId": "python", "version": 1, "text": "abc"}
    session = b"".join(
        _message(m)
        for m in (
            {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}},
            {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": item}},
            {"jsonrpc": "2.0", "id": 2, "method": "textDocument/inlineCompletion", "params": position},
            {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": shrink},
            {"jsonrpc": "2.0", "id": 3, "method": "shutdown"},
            {"jsonrpc": "2.0", "method": "exit"},
        )
    )
    command = [sys.executable, "-m", "codellama_ls", "--log-level", "WARNING"]
    done = subprocess.run(command, input=session, capture_output=True, timeout=60, env=server_env())
    answers = {m["id"]: m for m in _messages(done.stdout) if "id" in m}
    assert "result" in answers[2], answers[2]  # not "character 3 is past the line end"


def _messages(data: bytes) -> list[dict]:
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        length = int(head.split(b"Content-Length:")[1].split(b"\r\n")[0])
        out.append(json.loads(rest[:length]))
        data = rest[length:]
    return out
