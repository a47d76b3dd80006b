"""A minimal synchronous JSON-RPC client over a real ``codellama-ls`` process's stdio.

pytest-lsp's client can only send well-formed, typed messages; the robustness tests also
need to send raw bytes (invalid JSON, wrong types, huge bodies), to see every byte the
server writes (secrets must never appear there), and to drive the server from hypothesis
tests, which are synchronous. A reader thread parses the server's output into messages.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def server_env(**extra: str | None) -> dict[str, str]:
    """The environment of a test server: no CODELLAMA_LS_* from the caller, hub offline.

    ``extra`` adds variables; a ``None`` value removes one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODELLAMA_LS_")}
    env.update({"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"})
    # One torch thread: on a small shared machine OpenMP threads spin against each other and a
    # tiny model's step takes 10x longer; these tests are about answers, not speed.
    env.setdefault("OMP_NUM_THREADS", "1")
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


class RpcError(Exception):
    """The server answered a request with a JSON-RPC error."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code = error.get("code")
        self.message = error.get("message", "")


class ServerDied(AssertionError):
    pass


class RawServer:
    """``python -m codellama_ls`` with pipes; every message it writes is kept in ``received``."""

    def __init__(
        self,
        args: Iterable[str] = (),
        env: dict[str, str | None] | None = None,
        *,
        stderr: Path | None = None,
        python: list[str] | None = None,
    ) -> None:
        command = [*(python or [sys.executable]), "-m", "codellama_ls", *args]
        self._stderr = open(stderr, "wb") if stderr else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=server_env(**(env or {})),
        )
        self.received: list[dict[str, Any]] = []
        self.raw = bytearray()  # everything the server wrote to stdout
        self._responses: dict[Any, dict[str, Any]] = {}
        self.answered_at: dict[Any, float] = {}  # time.monotonic() of each answer, by request id
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._closed = False
        self._reader = threading.Thread(target=self._read, name="rawlsp-reader", daemon=True)
        self._reader.start()

    # -- reading -------------------------------------------------------------------------
    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    self._eof()
                    return
                self.raw += line
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("ascii", "replace").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if length is None:
                continue
            body = out.read(length)
            self.raw += body
            message = json.loads(body)
            with self._cond:
                self.received.append(message)
                if "method" not in message and "id" in message:
                    self._responses[message["id"]] = message
                    self.answered_at[message["id"]] = time.monotonic()
                self._cond.notify_all()
            if "method" in message and "id" in message:  # a request to the client: answer it
                self._write({"jsonrpc": "2.0", "id": message["id"], "result": None})

    def _eof(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- writing -------------------------------------------------------------------------
    def send_bytes(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send_body(self, body: bytes) -> None:
        """Frame ``body`` (any bytes, valid JSON or not) with a correct Content-Length."""
        self.send_bytes(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def _write(self, message: dict[str, Any]) -> None:
        try:
            self.send_body(json.dumps(message).encode("utf-8"))
        except (BrokenPipeError, ValueError):
            pass

    def notify(self, method: str, params: Any = None) -> None:
        self._write({"jsonrpc": "2.0", "method": method, "params": params})

    def send_request(self, method: str, params: Any = None, msg_id: Any = None) -> Any:
        msg_id = next(self._ids) if msg_id is None else msg_id
        self._write({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return msg_id

    def response(self, msg_id: Any, timeout: float = 60) -> dict[str, Any]:
        """Wait for the answer to request ``msg_id`` (the whole message: result or error)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while msg_id not in self._responses:
                if self._closed:
                    raise ServerDied(f"server exited ({self.proc.poll()}) before answering {msg_id!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no answer to request {msg_id!r} within {timeout}s")
                self._cond.wait(left)
            return self._responses.pop(msg_id)

    def request(self, method: str, params: Any = None, timeout: float = 60) -> dict[str, Any]:
        return self.response(self.send_request(method, params), timeout)

    def call(self, method: str, params: Any = None, timeout: float = 60) -> Any:
        """The result of a request, or :class:`RpcError`."""
        answer = self.request(method, params, timeout)
        if "error" in answer:
            raise RpcError(answer["error"])
        return answer.get("result")

    def notifications(self, method: str) -> list[dict[str, Any]]:
        with self._cond:
            return [m.get("params") for m in self.received if m.get("method") == method and "id" not in m]

    # -- LSP -----------------------------------------------------------------------------
    def initialize(
        self, options: dict[str, Any] | None = None, *, encodings: list[str] | None = None
    ) -> dict[str, Any]:
        caps: dict[str, Any] = {"textDocument": {"inlineCompletion": {}, "completion": {}}}
        if encodings:
            caps["general"] = {"positionEncodings": encodings}
        result = self.call(
            "initialize", {"processId": None, "rootUri": None, "capabilities": caps, "initializationOptions": options}
        )
        self.notify("initialized", {})
        return result

    def status(self) -> dict[str, Any]:
        return self.call("codellama/status", {})

    def wait_state(self, states: set[str], timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            if st["state"] in states:
                return st
            if time.monotonic() > deadline:
                raise TimeoutError(f"server state stayed {st['state']}: {st}")
            time.sleep(0.05)

    def open(self, uri: str, text: str, version: int = 1, language: str = "python") -> None:
        self.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": language, "version": version, "text": text}},
        )

    def change(self, uri: str, version: int, changes: list[dict[str, Any]]) -> None:
        params = {"textDocument": {"uri": uri, "version": version}, "contentChanges": changes}
        self.notify("textDocument/didChange", params)

    def prompt(self, uri: str, line: int, character: int) -> dict[str, Any]:
        return self.call(
            "codellama/prompt", {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}
        )

    def inline(self, uri: str, line: int, character: int) -> dict[str, Any]:
        return self.call(
            "textDocument/inlineCompletion",
            {
                "textDocument": {"uri": uri},
                "position": {"line": line, "character": character},
                "context": {"triggerKind": 2},
            },
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def shutdown(self, timeout: float = 30) -> int:
        """LSP shutdown + exit; returns the exit code."""
        self.call("shutdown", None, timeout)
        self.notify("exit", None)
        return self.wait(timeout)

    def wait(self, timeout: float = 30) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._reader.join(5)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream:
                    stream.close()
            except (BrokenPipeError, ValueError):
                pass
        if self._stderr is not subprocess.DEVNULL:
            self._stderr.close()

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
