"""The server's log in the editor: over stdio it arrives as window/logMessage at each record's
level, without a timestamp (the editor stamps it), and nothing but a crash goes to stderr, which
editors show as errors. No progress bars while serving LSP; `complete` in a terminal keeps its bar."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.support.rawlsp import RawServer, server_env

STAMP = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d")
SOURCE = "def area(r):\n    return 3.14 * r\n"
URI = "file:///tmp/area.py"


def _serve(tmp_path: Path, model: Path, *args: str, env: dict[str, str | None] | None = None) -> tuple[list, str]:
    """Initialize, load the model, ask once, shut down: (logMessage params, stderr)."""
    stderr = tmp_path / "stderr.txt"
    with RawServer(["--model", str(model), *args], env or {}, stderr=stderr) as server:
        server.initialize()
        assert server.wait_state({"ready"}, timeout=120)["state"] == "ready"
        server.open(URI, SOURCE)
        server.inline(URI, 1, 11)
        logged = server.notifications("window/logMessage")
        assert server.shutdown() == 0
    return logged, stderr.read_text(encoding="utf-8", errors="replace")


def test_log_reaches_the_editor_at_its_level_and_stderr_stays_quiet(tmp_path, tiny_model):
    logged, stderr = _serve(tmp_path, tiny_model, env={"CODELLAMA_LS_MAX_NEW_TOKENS": "lots"})
    assert stderr.strip() == "", f"stderr is shown as errors by editors:\n{stderr[-2000:]}"
    kinds = {m["type"] for m in logged}
    infos = [m["message"] for m in logged if m["type"] == 3]
    errors = [m["message"] for m in logged if m["type"] == 1]
    assert infos, logged
    # A bad setting logged before `initialize` arrives is sent after it, as an error.
    assert any("max_new_tokens" in e or "maxNewTokens" in e for e in errors), errors
    assert kinds <= {1, 2, 3, 5}, kinds
    assert not [m for m in logged if STAMP.match(m["message"])], "the editor adds the timestamp"
    assert not [m for m in logged if "%|" in m["message"] or "Loading weights" in m["message"]]


def test_log_file_keeps_everything_with_timestamps(tmp_path, tiny_model):
    log_file = tmp_path / "server.log"
    logged, stderr = _serve(tmp_path, tiny_model, "--log-file", str(log_file))
    lines = log_file.read_text(encoding="utf-8").splitlines()
    assert lines and all(STAMP.match(line) for line in lines if " INFO " in line)
    in_file = {line.split(" INFO ", 1)[1] for line in lines if " INFO " in line}
    assert {m["message"] for m in logged if m["type"] == 3} <= in_file
    assert stderr.strip() == ""


def test_a_debug_log_file_shows_each_record_once(tmp_path, tiny_model):
    """pygls traces each window/logMessage it sends at DEBUG; those echoes of our own records stay out."""
    log_file = tmp_path / "server.log"
    _serve(tmp_path, tiny_model, "--log-file", str(log_file), "--log-level", "DEBUG")
    text = log_file.read_text(encoding="utf-8")
    assert "codellama_ls" in text and "pygls" in text  # DEBUG: our records and pygls' traffic both
    assert "window/logMessage" not in text
    ours = [line for line in text.splitlines() if " INFO codellama_ls" in line]
    assert ours and len(ours) == len(set(ours))


def test_complete_in_a_terminal_keeps_its_progress_bar(tmp_path, tiny_model):
    source = tmp_path / "area.py"
    source.write_text(SOURCE, encoding="utf-8")
    res = subprocess.run(
        [sys.executable, "-m", "codellama_ls", "complete", f"{source}:2:12", "--model", str(tiny_model)],
        capture_output=True,
        text=True,
        timeout=120,
        env=server_env(),
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "%|" in res.stderr, res.stderr[-2000:]
