"""A real VS Code (code-server) in a real browser (Debian's Chromium, driven by playwright-core)
for tests/e2e/test_vscode_real.py. The tools come from ``.ci/vscode.sh``, which writes their
paths to ``<cache>/vscode/tools.env``."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]  # the project
VSCODE = ROOT / "editors" / "vscode"
DRIVER = Path(__file__).resolve().parent / "vscode_drive.js"
CACHE = Path(os.environ.get("CODELLAMA_LS_CI_CACHE") or Path.home() / ".cache" / "codellama-ls-ci") / "vscode"
TOOLS_ENV = CACHE / "tools.env"
EXTENSION_ID = "codellama-ls.codellama-ls"


@dataclass
class Tools:
    node: Path
    code_server: Path
    playwright_core: Path
    chromium: Path


def tools() -> Tools | str:
    """The installed tools, or why they are missing (the skip reason)."""
    if not TOOLS_ENV.is_file():
        return f"code-server/node 24/playwright-core are not installed ({TOOLS_ENV} missing): run .ci/vscode.sh"
    values = dict(line.split("=", 1) for line in TOOLS_ENV.read_text(encoding="utf-8").splitlines() if "=" in line)
    try:
        found = Tools(*(Path(values[k]) for k in ("NODE", "CODE_SERVER", "PLAYWRIGHT_CORE", "CHROMIUM")))
    except KeyError as exc:
        return f"{TOOLS_ENV} does not name {exc}: run .ci/vscode.sh"
    missing = [str(p) for p in vars(found).values() if not p.exists()]
    return f"missing {', '.join(missing)}: run .ci/vscode.sh" if missing else found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class CodeServer:
    """One code-server with its own user data, extensions and workspace; ``log`` is the server's."""

    tools: Tools
    home: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def user_data(self) -> Path:
        return self.home / "user-data"

    @property
    def extensions(self) -> Path:
        return self.home / "extensions"

    @property
    def workspace(self) -> Path:
        return self.home / "workspace"

    @property
    def server_log(self) -> Path:
        """codellama-ls' own log (``--log-file`` in ``codellama.server.args``)."""
        return self.home / "server.log"

    def env(self) -> dict[str, str]:
        """node 24 first; no codellama-ls on PATH (the setting must be what starts it); the
        worktree's code for the server, offline hub, one torch thread."""
        path = os.pathsep.join([str(self.tools.node.parent), "/usr/local/bin", "/usr/bin", "/bin"])
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CODELLAMA_LS_", "VSCODE_", "ELECTRON_"))}
        pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        env.update(
            PATH=path, PYTHONPATH=pythonpath, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false"
        )
        return env

    def install(self, vsix: Path) -> None:
        out = subprocess.run(
            [str(self.tools.code_server), *self._dirs(), "--install-extension", str(vsix)],
            capture_output=True,
            text=True,
            timeout=300,
            env=self.env(),
        )
        assert out.returncode == 0, f"--install-extension failed:\n{out.stdout}{out.stderr}"

    def settings(self, user: dict[str, Any], machine: dict[str, Any]) -> None:
        for scope, values in (("User", user), ("Machine", machine)):
            folder = self.user_data / scope
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "settings.json").write_text(json.dumps(values, indent=2), encoding="utf-8")

    def _dirs(self) -> list[str]:
        return ["--user-data-dir", str(self.user_data), "--extensions-dir", str(self.extensions)]

    def start(self, timeout: float = 120) -> str:
        """Start it in its own process group (see ``stop``); the URL opening the workspace."""
        self.workspace.mkdir(parents=True, exist_ok=True)
        command = [
            str(self.tools.code_server),
            *self._dirs(),
            "--bind-addr",
            f"127.0.0.1:{self.port}",
            "--auth",
            "none",
            "--disable-telemetry",
            "--disable-update-check",
            "--disable-workspace-trust",
            "--disable-getting-started-override",
            str(self.workspace),
        ]
        with open(self.home / "code-server.log", "wb") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=self.env(), start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.home / "code-server.log").read_text(errors="replace")[-3000:]
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2):
                    return f"http://127.0.0.1:{self.port}/?folder={self.workspace}"
            time.sleep(0.3)
        raise TimeoutError("code-server did not answer")

    def stop(self) -> None:
        """End code-server's whole process group: it keeps the extension host (and with it
        codellama-ls) running for hours after the browser is gone."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # the extension host and server, if still there
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)

    def drive(self, url: str, file: str, out: Path, timeout: float = 480) -> list[dict[str, Any]]:
        """Run ``vscode_drive.js`` against ``url``; its steps, in order."""
        env = {
            **self.env(),
            "PLAYWRIGHT_CORE": str(self.tools.playwright_core),
            "CHROMIUM": str(self.tools.chromium),
            "URL": url,
            "FILE": file,
            "OUT": str(out),
        }
        proc = subprocess.run(
            [str(self.tools.node), str(DRIVER)], capture_output=True, text=True, timeout=timeout, env=env
        )
        (out / "driver.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
        steps = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        return steps or [{"step": "failed", "error": proc.stderr[-3000:]}]

    def read_server_log(self) -> str:
        """What codellama-ls logged (all of it): e.g. a line starting with ``warm`` for each
        ``codellama/warm`` notification the extension sends."""
        return self.server_log.read_text(encoding="utf-8", errors="replace") if self.server_log.exists() else ""

    def extension_log(self) -> str:
        """The extension's Output channel ("Code Llama"), as VS Code writes it to its logs folder."""
        found = sorted((self.user_data / "logs").glob(f"**/{EXTENSION_ID}/Code Llama.log"))
        return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in found)


@contextlib.contextmanager
def code_server(found: Tools, home: Path) -> Iterator[CodeServer]:
    server = CodeServer(found, home)
    try:
        yield server
    finally:
        server.stop()


def venv_server() -> Path:
    """The codellama-ls executable of the running Python's environment."""
    return Path(sys.executable).parent / "codellama-ls"


def package(vsix: Path) -> Path:
    """`vsce package` (its prepublish step builds): the .vsix a user installs."""
    npm = "npm"
    if not (VSCODE / "node_modules" / ".bin" / "vsce").exists():
        subprocess.run([npm, "ci", "--prefer-offline", "--no-audit", "--no-fund"], cwd=VSCODE, check=True, timeout=600)
    out = subprocess.run(
        # README's picture is a relative link: kept as it is (no repository URL to rewrite it to).
        [str(VSCODE / "node_modules" / ".bin" / "vsce"), "package", "--no-rewrite-relative-links", "--out", str(vsix)],
        cwd=VSCODE,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, f"vsce package failed:\n{out.stdout}{out.stderr}"
    return vsix
