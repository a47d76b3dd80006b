"""The extension in a real VS Code (code-server 4.139, VS Code 1.139) in a real browser
(Debian's Chromium, driven by playwright-core), with the tiny model: as a new user tries it.

Installed by .ci/vscode.sh (node 24, code-server, playwright-core; cached outside the clone);
skipped with the reason where they are not installed. The server path is a User setting and
its arguments a Machine setting: a remote window (code-server is one) must read both.
To check something the server received, read ``session.server_log`` (its whole log).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import vscode_real

FOUND = vscode_real.tools()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(isinstance(FOUND, str), reason=str(FOUND)),
]

DEMO = "demo.py"
SOURCE = "def add(a, b):\n    return a + b\n\n\ndef scale(values, factor):\n    return [v * factor for v in values]\n\n"


@dataclass
class Session:
    steps: dict[str, dict[str, Any]]
    order: list[str]
    file_text: str
    server_log: str
    extension_log: str
    out: Path
    seconds: float


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Iterator[Session]:
    """One code-server session driven through every step (starting VS Code is the slow part)."""
    assert not isinstance(FOUND, str)
    started = time.monotonic()
    home = tmp_path_factory.mktemp("vscode-real")
    out = home / "out"
    out.mkdir()
    vsix = vscode_real.package(home / "codellama-ls.vsix")
    with vscode_real.code_server(FOUND, home) as server:
        server.install(vsix)
        server.settings(
            user={
                "codellama.server.path": str(vscode_real.venv_server()),
                "codellama.instructModel": str(tiny_model),  # nonsense, quickly: it stands in for Instruct
                "codellama.instructMaxNewTokens": 16,
                "codellama.maxNewTokens": 12,
                "workbench.startupEditor": "none",
                "workbench.tips.enabled": False,
                "workbench.secondarySideBar.defaultVisibility": "hidden",
                "security.workspace.trust.enabled": False,
                "extensions.autoUpdate": False,
                "extensions.autoCheckUpdates": False,
                "telemetry.telemetryLevel": "off",
                "chat.disableAIFeatures": True,
                "editor.inlineSuggest.enabled": True,
                "editor.inlineSuggest.showToolbar": "always",
            },
            machine={"codellama.server.args": ["--model", str(tiny_model), "--log-file", str(server.server_log)]},
        )
        server.workspace.mkdir(parents=True, exist_ok=True)
        (server.workspace / DEMO).write_text(SOURCE, encoding="utf-8")
        url = server.start()
        steps = server.drive(url, DEMO, out)
        time.sleep(1)
        file_text = (server.workspace / DEMO).read_text(encoding="utf-8")
        ext_log = server.extension_log()
        server_log = server.read_server_log()
    yield Session(
        steps={s["step"]: s for s in steps},
        order=[s["step"] for s in steps],
        file_text=file_text,
        server_log=server_log,
        extension_log=ext_log,
        out=out,
        seconds=time.monotonic() - started,
    )


def test_every_step_of_a_users_first_session(session: Session) -> None:
    failed = session.steps.get("failed", {}).get("error")
    assert failed is None, f"after {session.order}: {failed}\n(screenshots and driver.log in {session.out})"
    assert session.order[-1] == "done", session.order
    print(f"VS Code session: {session.seconds:.0f} s; ready after {session.steps['ready']['ms']} ms")


def test_status_item_ghost_text_and_tab(session: Session) -> None:
    assert "ready" in session.steps, session.order
    ghost = session.steps["ghost"]["ghost"]
    assert ghost.strip(), "no ghost text"
    assert (session.out / "ghost-text.png").stat().st_size > 10_000
    assert (session.out / "status-tooltip.png").stat().st_size > 10_000
    assert "total = add(" in session.file_text
    line = next(x for x in session.file_text.splitlines() if x.startswith("total = add("))
    # Tab inserted the suggestion (VS Code shows spaces as \xa0 in the DOM).
    assert line.startswith("total = add(" + ghost.splitlines()[0].replace("\xa0", " ").rstrip()[:8].rstrip())


def test_accept_a_word_and_cycle(session: Session) -> None:
    word = session.steps["word"]
    assert word["before"].strip() and word["after"] != word["before"], word
    cycled = session.steps["cycled"]
    assert cycled["ghost"].strip() and cycled["ghost"] != cycled["before"], cycled
    assert re.search(r"\b2/[2-9](?!\d)", cycled["hints"]), f"Alt+] did not show a second suggestion: {cycled}"
    assert "result = add(" in session.file_text


def test_docstring_code_action(session: Session) -> None:
    titles = "\n".join(session.steps["actions"]["titles"])
    assert re.search("docstring", titles, re.I), titles
    run = session.steps["action-run"]
    assert run["after"] != run["before"]
    assert len(session.file_text.splitlines()) > len(SOURCE.splitlines()) + 2, session.file_text


def test_tooltip_says_what_is_loaded(session: Session) -> None:
    tooltip = session.steps["tooltip"]["text"]
    assert tooltip.startswith("Ready:") and "tiny-llama" in tooltip, tooltip
    assert re.search(r"Accepted [1-9]\d* of \d+ suggestions", tooltip), tooltip


def test_output_log_has_server_lines_at_their_level_and_no_errors(session: Session) -> None:
    log = session.extension_log
    assert log, "the Code Llama output channel wrote no log"
    assert "[info]" in log and "codellama_ls" in log, log[-3000:]
    assert "[error]" not in log, log[-3000:]
    stamped_twice = [x for x in log.splitlines() if re.search(r"\[\w+\].*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", x)]
    assert not stamped_twice, stamped_twice[:3]
    assert "%|" not in log and "Loading weights" not in log


def test_server_log_has_what_the_server_received(session: Session) -> None:
    assert " INFO " in session.server_log, session.server_log[-2000:]


def test_the_extension_warms_the_resting_cursor(session: Session) -> None:
    """The cursor rested in the opened file: the extension sent ``codellama/warm`` and the server took it."""
    warm = [line for line in session.server_log.splitlines() if " warm file://" in line]
    assert warm, session.server_log[-2000:]
