"""The stdio server reads a pipe with asyncio and anything else with pygls' reader."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from codellama_ls.stdio import is_pipe
from tests.conftest import server_env


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
