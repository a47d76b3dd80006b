"""A real llama-server for tests and benches: find the binary, convert a model to GGUF, run it.

``.ci/llama-server.sh`` builds the binary from the llama.cpp source vendored in the pinned PyPI
sdist of llama-cpp-python into ``${CODELLAMA_LS_CI_CACHE:-~/.cache/codellama-ls-ci}``; the same
source's ``convert_hf_to_gguf.py`` (with its ``gguf-py``) turns a transformers model folder into
an f32 GGUF, so llama.cpp runs exactly the weights the local engine loads. Servers listen on
127.0.0.1 on a free port, in their own process group, and are always killed with it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

VERSION = "0.3.36"  # llama-cpp-python's sdist that vendors the llama.cpp source (see .ci/llama-server.sh)
CACHE = Path(os.environ.get("CODELLAMA_LS_CI_CACHE") or Path.home() / ".cache" / "codellama-ls-ci")
LLAMA_DIR = CACHE / f"llama.cpp-{VERSION}"
SOURCE = LLAMA_DIR / "sdist" / "vendor" / "llama.cpp"


def server_binary() -> Path | None:
    """``$CODELLAMA_LS_LLAMA_SERVER``, else the cache's build; None when there is none."""
    named = os.environ.get("CODELLAMA_LS_LLAMA_SERVER")
    path = Path(named) if named else LLAMA_DIR / "build" / "bin" / "llama-server"
    return path if path.is_file() and os.access(path, os.X_OK) else None


SKIP_REASON = (
    f"needs llama-server: run .ci/llama-server.sh (builds it into {LLAMA_DIR}) or set CODELLAMA_LS_LLAMA_SERVER"
)


def have_llama_server() -> bool:
    return server_binary() is not None and (SOURCE / "convert_hf_to_gguf.py").is_file()


def convert_to_gguf(model_dir: Path, out: Path) -> Path:
    """``model_dir`` (a ``save_pretrained`` folder) as an f32 GGUF at ``out``, with the vendored converter
    (run through ``gguf_convert.py``: the pieces' scores from ``tokenizer.json``'s merges)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SOURCE / "gguf-py"), str(SOURCE)]))
    convert = [sys.executable, str(Path(__file__).with_name("gguf_convert.py")), str(SOURCE / "convert_hf_to_gguf.py")]
    cmd = [*convert, str(model_dir), "--outtype", "f32"]
    done = subprocess.run([*cmd, "--outfile", str(out)], env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0 or not out.is_file():
        raise RuntimeError(f"convert_hf_to_gguf.py failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LlamaServer:
    """``llama-server -m GGUF`` on 127.0.0.1 (``--metrics`` and ``/slots`` on), as a context manager."""

    def __init__(
        self, gguf: Path, *, ctx: int = 4096, parallel: int = 1, log: Path | None = None, extra: tuple[str, ...] = ()
    ) -> None:
        binary = server_binary()
        if binary is None:
            raise RuntimeError(SKIP_REASON)
        self.binary = binary
        self.gguf = gguf
        self.ctx = ctx
        self.parallel = parallel
        self.extra = extra
        self.port = free_port()
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            str(self.binary),
            *("-m", str(self.gguf), "--host", "127.0.0.1", "--port", str(self.port)),
            *("-c", str(self.ctx), "-np", str(self.parallel), "-t", "1", "--metrics", "--slots", "--no-warmup"),
            # f32 keys/values (llama.cpp keeps f16 by default): the local engine's numbers, for greedy equality.
            *("--cache-type-k", "f32", "--cache-type-v", "f32"),
            *self.extra,
        ]

    def start(self, timeout_s: float = 120.0) -> LlamaServer:
        """Start (on the same port as before, after :meth:`stop`) and wait until ``/health`` says ok."""
        if self.log is not None:
            with open(self.log, "ab") as out:  # the child keeps its own copy of the handle
                self.proc = subprocess.Popen(
                    self.command(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
        else:
            self.proc = subprocess.Popen(
                self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
            )
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama-server exited with {self.proc.returncode}: {' '.join(self.command())}")
            try:
                if self.get("/health").get("status") == "ok":
                    return self
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"llama-server did not become ready within {timeout_s}s")

    def stop(self) -> None:
        """Kill the server's process group and wait for it (idempotent)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)

    def get(self, route: str) -> Any:
        with urllib.request.urlopen(self.url + route, timeout=10) as response:
            text = response.read().decode()
        return json.loads(text) if route != "/metrics" else text

    def post(self, route: str, body: Any) -> Any:
        request = urllib.request.Request(
            self.url + route, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read().decode())

    def metrics(self) -> dict[str, float]:
        """``/metrics`` as {name: value} (names without the ``llamacpp:`` prefix)."""
        out = {}
        for line in self.get("/metrics").splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.partition(" ")
                out[name.removeprefix("llamacpp:")] = float(value)
        return out

    def slots(self) -> list[dict[str, Any]]:
        slots: list[dict[str, Any]] = self.get("/slots")
        return slots

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
