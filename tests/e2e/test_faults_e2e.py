"""Faults through the real server process.

Real causes: a corrupt weights file, fixed and followed by ``codellama.restartEngine``; a
generation that outlives ``generationTimeoutMs``; ``exit`` without ``shutdown``; documents
closed while their request waits or generates. Injected causes (``tests/support/fault_site``):
each stage of a request raising an exception whose text holds a path and a secret. Every
request is answered (empty), each kind of failure is shown once, and no answer carries a
traceback, a path of the server or a secret.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path

import pytest

from tests.support.rawlsp import RawServer

FAULT_SITE = Path(__file__).resolve().parents[1] / "support" / "fault_site"
SECRET = "hf_FAULTYsecret123"  # the fault site's exception text holds it, and it is the apiToken
LEAKS = ("Traceback", "traceback", "/srv/codellama", SECRET, str(Path(__file__).resolve().parents[2]))


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


# -- a stage of a request fails ----------------------------------------------------------------
def _position(uri: str, line: int, character: int) -> dict:
    return {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}


def _no_leak(server: RawServer) -> None:
    """Nothing the server wrote (answers, messages) holds a traceback, a server path or the secret."""
    written = server.raw.decode("utf-8", "replace")
    for leak in LEAKS:
        assert leak not in written, f"{leak!r} reached the client"


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["tokenizer", "prompt", "engine", "postprocess", "cache", "answer"])
def test_a_failing_stage_answers_every_request_empty_and_says_so_once(stage: str, tiny_model: Path) -> None:
    env = {"CODELLAMA_LS_FAULT": stage, "PYTHONPATH": str(FAULT_SITE)}
    uri = "file:///w/fault.py"
    with RawServer(env=env) as server:
        server.initialize({"model": str(tiny_model), "debounceMs": 0, "maxNewTokens": 4, "apiToken": SECRET})
        assert server.wait_state({"ready", "failed"})["state"] == "ready"
        server.open(uri, "def f(x):\n    return \n")
        for _ in range(3):  # a user typing on: one message, not one per request
            inline = server.request(
                "textDocument/inlineCompletion", {**_position(uri, 1, 11), "context": {"triggerKind": 1}}
            )
            assert inline.get("result") == {"items": []}, inline
            listed = server.request("textDocument/completion", _position(uri, 1, 11))
            assert listed.get("result", {}).get("items") == [], listed
        shown = messages(server)
        assert len(shown) == 1 and shown[0][0] == 1, shown  # one Error for this kind of failure
        assert server.status()["state"] == "ready"  # still serving
        _no_leak(server)


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["status", "sync"])
def test_failing_handlers_outside_the_pipeline(stage: str, tiny_model: Path) -> None:
    env = {"CODELLAMA_LS_FAULT": stage, "PYTHONPATH": str(FAULT_SITE)}
    uri = "file:///w/fault.py"
    with RawServer(env=env) as server:
        server.initialize({"model": str(tiny_model), "debounceMs": 0, "maxNewTokens": 4, "apiToken": SECRET})
        server.open(uri, "def f(x):\n    return \n")
        for version in (2, 3):
            server.change(uri, version, [{"text": "def g(x):\n    return \n"}])
        status = server.request("codellama/status")
        assert "result" in status, status  # answered, even if empty
        if stage == "sync":  # the failed edits changed nothing: the document is the opened one
            assert server.prompt(uri, 1, 11)["prefix"].startswith("def f(x):")
        server.request("codellama/status")
        assert len(messages(server)) == 1
        _no_leak(server)


@pytest.mark.slow
def test_documents_closed_while_their_requests_wait_or_generate(tiny_model: Path) -> None:
    """Closing a document answers its pending request empty at once (never an error)."""
    with RawServer() as server:
        opts = {"model": str(tiny_model), "debounceMs": 300, "maxNewTokens": 3000, "generationTimeoutMs": 60000}
        server.initialize(opts)
        assert server.wait_state({"ready", "failed"})["state"] == "ready"
        for delay in (0.05, 0.6):  # inside the debounce; then while the model generates
            uri = f"file:///w/closing-{delay}.py"
            server.open(uri, "def f(x):\n    return \n")
            msg_id = server.send_request(
                "textDocument/inlineCompletion", {**_position(uri, 1, 11), "context": {"triggerKind": 2}}
            )
            time.sleep(delay)
            server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
            answer = server.response(msg_id, timeout=10)  # closing stops the decoding: no 3000-token wait
            assert answer.get("result") == {"items": []}, answer
        assert messages(server) == []
        _no_leak(server)


@pytest.mark.slow
def test_random_session_of_opens_edits_closes_cancels_and_reloads(tiny_model: Path) -> None:
    """The session that found KeyErrors: every answer is a result, InvalidParams (a request for a
    document already closed when it was sent) or RequestCancelled, never an internal error."""
    rng = random.Random(7)
    uris = [f"file:///w/r{i}.py" for i in range(4)]
    is_open = dict.fromkeys(uris, False)
    versions = dict.fromkeys(uris, 1)
    with RawServer() as server:
        server.initialize({"model": str(tiny_model), "debounceMs": 0, "maxNewTokens": 6})
        assert server.wait_state({"ready", "failed"})["state"] == "ready"
        pending: list = []
        for step in range(240):
            uri = rng.choice(uris)
            roll = rng.random()
            if not is_open[uri] or roll < 0.1:
                server.open(uri, "def f(x):\n    return \n", version=versions[uri])
                is_open[uri] = True
            elif roll < 0.2:
                server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
                is_open[uri] = False
            elif roll < 0.35:
                versions[uri] += 1
                text = "def f(x):\n    return " + "x" * rng.randint(0, 5) + "\n"
                server.change(uri, versions[uri], [{"text": text}])
            elif roll < 0.4 and pending:
                server.notify("$/cancelRequest", {"id": rng.choice(pending)})
            elif roll < 0.42:
                tokens = 6 + step % 3  # a settings change that does not reload, then one that does
                server.notify("workspace/didChangeConfiguration", {"settings": {"maxNewTokens": tokens}})
                server.send_request("workspace/executeCommand", {"command": "codellama.restartEngine"})
            else:
                method = rng.choice(["textDocument/inlineCompletion", "textDocument/completion"])
                params = _position(uri, 1, 11)
                if method.endswith("inlineCompletion"):
                    params["context"] = {"triggerKind": 2}
                pending.append(server.send_request(method, params))
            time.sleep(rng.uniform(0, 0.02))
        for msg_id in pending:
            answer = server.response(msg_id, timeout=120)
            error = answer.get("error")
            assert error is None or error["code"] in (-32602, -32800), json.dumps(answer)[:300]
        assert [m for m in messages(server) if m[0] == 1] == []
        _no_leak(server)
