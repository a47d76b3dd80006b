"""A first run without network says so at once, instead of retrying the hub for half a minute."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codellama_ls import hub
from tests.support.rawlsp import server_env

pytestmark = pytest.mark.slow


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the socket is closed


def test_complete_without_network_fails_fast_with_what_to_do(tmp_path: Path) -> None:
    source = tmp_path / "a.py"
    source.write_text("def f():\n    return 1\n")
    env = server_env(HF_HUB_OFFLINE=None, HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "codellama_ls", "complete", f"{source}:2:5", "--model", "codellama/CodeLlama-7b-hf"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert done.returncode != 0
    assert "cannot be reached" in done.stderr and "hf download codellama/CodeLlama-7b-hf" in done.stderr
    assert "Retrying" not in done.stderr
    assert elapsed < 15, f"took {elapsed:.0f}s (the hub's retries take ~24s)"


def test_probe_sees_a_listening_endpoint_and_a_closed_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{listener.getsockname()[1]}")
        monkeypatch.setattr(hub, "_last", None)
        assert hub.reachable()
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setattr(hub, "_last", None)
    assert not hub.reachable()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    hub.check_download("codellama/CodeLlama-7b-hf", "config.json")  # offline: never probes, never raises
