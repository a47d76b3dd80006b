"""The command line: one-shot prompt/complete, and TCP serving bound to loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.rawlsp import server_env

SOURCE = "def area(r):\n    return 3.14 * r\n\nprint(area(2))\n"


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codellama_ls", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=server_env(),
    )


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "area.py"
    path.write_text(SOURCE, encoding="utf-8")
    return path


def test_prompt_json_loads_only_the_tokenizer(source, tokenizer_dir):
    # The tokenizer folder has no weights: `prompt` must not need them.
    res = run_cli("prompt", f"{source}:2:12", "--json", "--model", str(tokenizer_dir), "--fim-format", "psm")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["format"] == "psm" and data["prefix"] == "def area(r):\n    return " and not data["truncated"]
    assert data["suffix"] == "3.14 * r\n\nprint(area(2))\n"
    assert data["ids"][:2] == [1, 32007] and data["ids"][-1] == 32009


def test_complete_prints_the_suggestion(source, tiny_model):
    res = run_cli("complete", f"{source}:3:1", "--model", str(tiny_model), "--max-new-tokens", "4")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip()


def test_bad_location_and_missing_model(source, tmp_path):
    res = run_cli("prompt", f"{source}:99:1", "--model", str(tmp_path))
    assert res.returncode == 2 and "line 98 does not exist" in res.stderr
    res = run_cli("complete", f"{source}:1:1", "--model", str(tmp_path / "nothing"))
    assert res.returncode == 1 and "hf download" in res.stderr


def _listening(port: int) -> list[str]:
    """Local addresses listening on ``port``, from /proc/net/tcp{,6}."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.rsplit(":", 1)
            if int(hexport, 16) == port and state == "0A":
                found.append(addr)
    return found


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="needs Linux /proc/net/tcp")
def test_tcp_binds_loopback_by_default(tokenizer_dir):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "codellama_ls", "--tcp", str(port), "--model", str(tokenizer_dir)],
        env=server_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not _listening(port):
            assert proc.poll() is None and time.monotonic() < deadline, "server did not listen"
            time.sleep(0.1)
        assert _listening(port) == ["0100007F"]  # 127.0.0.1 only
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}})
            conn.sendall(f"Content-Length: {len(body)}\r\n\r\n{body}".encode())
            data = b""
            while b"inlineCompletionProvider" not in data:
                chunk = conn.recv(65536)
                assert chunk
                data += chunk
    finally:
        proc.kill()
        proc.wait()


def test_prompt_shows_context_from_the_project(tmp_path, tokenizer_dir):
    """The workspace is the nearest folder with a project marker; `--workspace` names another one."""
    import shutil

    project = tmp_path / "project"
    shutil.copytree(Path(__file__).resolve().parents[1] / "fixtures" / "context" / "python", project)
    (project / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    render = project / "app" / "render.py"
    row = next(i for i, line in enumerate(render.read_text().split("\n")) if "style_=Style(" in line)
    location = f"{render}:{row + 1}:{render.read_text().split(chr(10))[row].index('Style(') + 7}"
    res = run_cli("prompt", location, "--json", "--model", str(tokenizer_dir))
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    style = [c for c in data["context"] if c["uri"] == (project / "app" / "style.py").as_uri()]
    assert style and style[0]["reason"] == "definition" and "Style" in style[0]["symbol"]
    assert "# class Style:\n" in data["contextText"] and data["prefix"].endswith("style_=Style(")

    res = run_cli("prompt", location, "--model", str(tokenizer_dir))  # for people: paths and lines as in an editor
    assert res.returncode == 0, res.stderr
    assert f"app/style.py:{style[0]['startLine'] + 1}-{style[0]['endLine'] + 1}  definition of Style" in res.stdout
    assert "--- context text ---\n# Path: app/text.py\n" in res.stdout and f"(workspace {project})" in res.stdout

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for args in (["--workspace", str(elsewhere)], ["--context-tokens", "0"]):
        res = run_cli("prompt", location, "--json", "--model", str(tokenizer_dir), *args)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["context"] == [], args
