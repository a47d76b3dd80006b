"""Faults through the real server process, with real causes: a corrupt weights file, fixed and
followed by ``codellama.restartEngine``; a generation that outlives ``generationTimeoutMs``;
``exit`` without ``shutdown``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.rawlsp import RawServer


# -- the real server process ---------------------------------------------------------------
def inline(server: RawServer, uri: str, line: int, character: int) -> list:
    return server.inline(uri, line, character)["items"]


def messages(server: RawServer) -> list[tuple[int, str]]:
    return [(m["type"], m["message"]) for m in server.notifications("window/showMessage")]


@pytest.mark.slow
def test_corrupt_weights_then_fixed_and_restart_engine(tiny_model, tmp_path: Path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    weights = model / "model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(b"\x00garbage, not a safetensors header" * 100)
    with RawServer() as server:
        server.initialize({"model": str(model), "debounceMs": 0, "maxNewTokens": 4})
        st = server.wait_state({"ready", "failed"})
        assert st["state"] == "failed" and str(model) in st["error"]
        server.open("file:///w/a.py", "def f():\n    return \n")
        for _ in range(3):
            assert inline(server, "file:///w/a.py", 1, 11) == []
        assert [t for t, _ in messages(server)] == [1]  # one Error, not one per request
        weights.write_bytes(good)
        assert server.call("workspace/executeCommand", {"command": "codellama.restartEngine"}) is None
        st = server.wait_state({"ready", "failed"})
        assert st["state"] == "ready" and st["error"] is None
        inline(server, "file:///w/a.py", 1, 11)
        assert server.status()["generations"] == 1 and len(messages(server)) == 1
        assert server.shutdown() == 0


@pytest.mark.slow
def test_generation_timeout_end_to_end(tiny_model):
    with RawServer() as server:
        # 4000 tokens take seconds on the tiny model; the timeout stops the loop after 100 ms.
        opts = {"model": str(tiny_model), "debounceMs": 0, "maxNewTokens": 4000, "generationTimeoutMs": 100}
        server.initialize(opts)
        assert server.wait_state({"ready", "failed"})["state"] == "ready"
        server.open("file:///w/t.py", "import os\n")
        assert inline(server, "file:///w/t.py", 1, 0) == []
        assert inline(server, "file:///w/t.py", 1, 0) == []
        assert server.status()["last"]["stopReason"] == "timeout"
        assert [t for t, _ in messages(server)] == [2]  # one Warning
        assert "generationTimeoutMs" in messages(server)[0][1]
        server.notify(
            "workspace/didChangeConfiguration",
            {"settings": {"codellama": {"maxNewTokens": 3, "generationTimeoutMs": 600000}}},
        )
        inline(server, "file:///w/t.py", 1, 0)
        assert server.status()["last"]["stopReason"] != "timeout" and len(messages(server)) == 1
        assert server.shutdown() == 0


@pytest.mark.slow
def test_exit_without_shutdown_is_code_1():
    with RawServer() as server:
        server.notify("exit")
        assert server.wait(30) == 1
