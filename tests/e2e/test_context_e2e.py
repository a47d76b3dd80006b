"""Context from other files through the real server process, driven like an editor (pytest-lsp).

A workspace folder holds a package whose ``page.py`` imports ``Style`` from ``style.py``, ``Token``
from a secret-looking ``credentials.py``, ``Gen`` from a ``.gitignore``d ``generated.py`` and
``Extra`` from a file that appears on disk later. ``codellama/prompt`` shows what the model sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.support.fake_remote import FakeServer, Stream, tokens
from tests.support.lsp import capabilities, get_prompt, inline_params, open_doc, plain, status
from tests.support.rawlsp import server_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FAULT_SITE = Path(__file__).resolve().parents[1] / "support" / "fault_site"
SECRET = "sk_live_CANARY_never_in_a_prompt"

PAGE = '''"""Pages of the shop."""

from shop.credentials import Token
from shop.extra import Extra
from shop.generated import Gen
from shop.style import Style


def secret():
    return Token()


def generated():
    return Gen()


def extra():
    return Extra()


def styled():
    return Style()
'''

STYLE = '''"""How things look."""


class Style:
    """A look."""

    color: str = "black"
    bold: bool = False
'''


def fault_path() -> str:
    """PYTHONPATH for the fault site, with this checkout's code first (not another editable install's)."""
    return os.pathsep.join(filter(None, [str(FAULT_SITE), str(ROOT), os.environ.get("PYTHONPATH")]))


def make_project(root: Path) -> Path:
    shop = root / "shop"
    shop.mkdir(parents=True)
    (root / ".gitignore").write_text("generated.py\n")
    (root / ".env").write_text(f"API_KEY={SECRET}\n")
    (shop / "__init__.py").write_text("")
    (shop / "page.py").write_text(PAGE)
    (shop / "style.py").write_text(STYLE)
    (shop / "credentials.py").write_text(f'class Token:\n    """Holds {SECRET}."""\n\n    key = "{SECRET}"\n')
    (shop / "generated.py").write_text('class Gen:\n    """Made by a tool, ignored by git."""\n')
    return root


@contextlib.asynccontextmanager
async def session(
    folders: list[Path],
    options: dict[str, Any],
    *,
    env: dict[str, str] | None = None,
    wait_ready: bool = True,
) -> AsyncIterator[LanguageClient]:
    """A server with workspace folders and VS Code's capabilities; ``client.registered`` records the
    server's ``client/registerCapability`` requests (the client accepts them)."""
    config = ClientServerConfig(
        server_command=[sys.executable, "-m", "codellama_ls", "--log-level", "WARNING"],
        server_env=server_env(**(env or {})),
    )
    client = await config.start()
    registered: list[Any] = []
    client.registered = registered  # type: ignore[attr-defined]

    @client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def on_register(params: types.RegistrationParams) -> None:
        registered.append(params)

    try:
        await client.initialize_session(
            types.InitializeParams(
                capabilities=capabilities(),
                workspace_folders=[types.WorkspaceFolder(uri=f.as_uri(), name=f.name) for f in folders],
                initialization_options=options,
            )
        )
        if wait_ready:
            while (await status(client))["state"] not in ("ready", "failed"):
                await asyncio.sleep(0.05)
        yield client
        await asyncio.wait_for(client.shutdown_session(), 20)
    finally:
        server = client._server
        if server is not None and server.returncode is None:
            server.kill()
        await client.stop()


def at(text: str, marker: str) -> tuple[int, int]:
    """(line, character) right after the last ``marker``."""
    lines = text.split("\n")
    row = max(i for i, line in enumerate(lines) if marker in line)
    return row, lines[row].index(marker) + len(marker)


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 30) -> Any:
    """Ask again (as the next keystroke would) until ``check`` gives something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


async def settled(value: Any) -> Any:
    """``value`` after letting the client read what the server sent meanwhile."""
    await asyncio.sleep(0)
    return value


async def index_ready(client: LanguageClient) -> None:
    assert await until(lambda: _context_ready(client)), "the workspace index never became ready"


async def _context_ready(client: LanguageClient) -> bool:
    return bool((await status(client))["context"].get("ready"))


def entries(prompt: dict[str, Any], file: str) -> list[dict[str, Any]]:
    return [c for c in prompt["context"] if c["uri"].endswith("/" + file)]


async def prompt_at(client: LanguageClient, uri: str, text: str, marker: str) -> dict[str, Any]:
    return await get_prompt(client, uri, *at(text, marker))


def tokenizer_only(tokenizer_dir: Path, **more: Any) -> dict[str, Any]:
    """``codellama/prompt`` needs only the tokenizer (the engine fails to load: no weights)."""
    return {"model": str(tokenizer_dir), **more}


async def test_definitions_from_closed_and_open_files_secrets_and_ignored_files_never(
    tmp_path: Path, tokenizer_dir: Path
) -> None:
    root = make_project(tmp_path / "proj")
    page = root / "shop" / "page.py"
    uri = page.as_uri()
    async with session([root], tokenizer_only(tokenizer_dir)) as client:
        open_doc(client, uri, PAGE)
        # Open in the editor too: a secret-looking file and a .gitignored one (never shown), and a file
        # with the same code and an ordinary name (shown as similar code: the rules are what hide the others).
        credentials = (root / "shop" / "credentials.py").read_text()
        open_doc(client, (root / "shop" / "credentials.py").as_uri(), credentials + PAGE)
        open_doc(client, (root / "shop" / "generated.py").as_uri(), "class Gen:\n    pass\n" + PAGE)
        open_doc(client, (root / "shop" / "twin.py").as_uri(), PAGE.replace("def ", "def twin_"))

        async def style_shown() -> dict[str, Any] | None:
            prompt = await prompt_at(client, uri, PAGE, "Style(")
            return prompt if entries(prompt, "shop/style.py") else None

        prompt = await until(style_shown)
        assert prompt, "the definition of Style never reached the prompt"
        [style] = entries(prompt, "shop/style.py")  # style.py is closed: read from the disk
        assert style["reason"] == "definition" and style["symbol"] == "Style" and style["startLine"] == 3
        assert style["uri"] == (root / "shop" / "style.py").as_uri()
        assert "# Path: shop/style.py\n# class Style:\n" in prompt["contextText"]
        assert prompt["contextText"].endswith("# Path: shop/page.py\n")
        assert '#     color: str = "black"' in prompt["contextText"]

        # Open, with unsaved changes: the editor's text wins over the disk.
        edited = STYLE.replace('color: str = "black"', 'colour: str = "navy"')
        open_doc(client, (root / "shop" / "style.py").as_uri(), edited)

        async def edit_shown() -> dict[str, Any] | None:
            prompt = await prompt_at(client, uri, PAGE, "Style(")
            return prompt if 'colour: str = "navy"' in prompt["contextText"] else None

        prompt = await until(edit_shown)
        assert prompt and '"black"' not in prompt["contextText"] and entries(prompt, "shop/style.py")
        assert "black" in (root / "shop" / "style.py").read_text()
        twin = entries(prompt, "shop/twin.py")  # the block was made again for the edit, with every document parsed
        assert twin and twin[0]["reason"] == "similar", prompt["context"]

        await index_ready(client)
        for marker in ("Token(", "Gen(", "Style(", "Extra("):
            prompt = await prompt_at(client, uri, PAGE, marker)
            shown = [c["uri"].rsplit("/", 1)[-1] for c in prompt["context"]]
            assert "credentials.py" not in shown and "generated.py" not in shown and ".env" not in shown, marker
            assert SECRET not in prompt["contextText"] and "class Token" not in prompt["contextText"], marker
            assert "class Gen" not in prompt["contextText"], marker


async def test_watched_files_and_workspace_folders(tmp_path: Path, tokenizer_dir: Path) -> None:
    root = make_project(tmp_path / "proj")
    other = tmp_path / "other"
    other.mkdir()
    (other / "helpers.py").write_text("class Helper:\n    def run(self, n: int) -> int:\n        return n\n")
    main_text = "from helpers import Helper\n\n\ndef main():\n    return Helper()\n"
    (other / "main.py").write_text(main_text)
    uri = (root / "shop" / "page.py").as_uri()
    async with session([root], tokenizer_only(tokenizer_dir)) as client:
        # The server asked to be told about the files it indexes.
        registered: list[Any] = client.registered  # type: ignore[attr-defined]
        assert await until(lambda: settled(registered))
        [registration] = [r for p in registered for r in p.registrations]
        assert registration.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES
        globs = [w["globPattern"] for w in plain(registration.register_options)["watchers"]]
        assert "**/.gitignore" in globs and any(",py," in g for g in globs if isinstance(g, str))

        open_doc(client, uri, PAGE)
        await index_ready(client)
        assert not entries(await prompt_at(client, uri, PAGE, "Extra("), "shop/extra.py")
        extra = root / "shop" / "extra.py"
        extra.write_text("class Extra:\n    size: int = 1\n")
        await index_ready(client)
        # Created behind the editor's back, after the walk: unknown until the client reports it.
        assert not entries(await prompt_at(client, uri, PAGE, "Extra("), "shop/extra.py")
        client.workspace_did_change_watched_files(
            types.DidChangeWatchedFilesParams(
                changes=[types.FileEvent(uri=extra.as_uri(), type=types.FileChangeType.Created)]
            )
        )

        async def extra_shown() -> list[dict[str, Any]]:
            return entries(await prompt_at(client, uri, PAGE, "Extra("), "shop/extra.py")

        assert await until(extra_shown), "a file reported by didChangeWatchedFiles was not picked up"

        # A file outside every workspace folder gets no context; adding its folder changes that.
        main_uri = (other / "main.py").as_uri()
        open_doc(client, main_uri, main_text)
        await index_ready(client)
        assert (await prompt_at(client, main_uri, main_text, "Helper("))["context"] == []
        client.workspace_did_change_workspace_folders(
            types.DidChangeWorkspaceFoldersParams(
                event=types.WorkspaceFoldersChangeEvent(
                    added=[types.WorkspaceFolder(uri=other.as_uri(), name="other")], removed=[]
                )
            )
        )

        async def helper_shown() -> list[dict[str, Any]]:
            return entries(await prompt_at(client, main_uri, main_text, "Helper("), "other/helpers.py")

        shown = await until(helper_shown)
        assert shown and shown[0]["symbol"] == "Helper"
        assert (await status(client))["context"]["folders"] == 2


async def test_typing_keeps_the_block_and_settings_change_it(tmp_path: Path, tokenizer_dir: Path) -> None:
    root = make_project(tmp_path / "proj")
    uri = (root / "shop" / "page.py").as_uri()
    async with session([root], tokenizer_only(tokenizer_dir)) as client:
        open_doc(client, uri, PAGE)
        await index_ready(client)
        line, col = at(PAGE, "Style(")

        async def style_prompt() -> dict[str, Any] | None:
            prompt = await get_prompt(client, uri, line, col)
            return prompt if entries(prompt, "shop/style.py") else None

        old = await until(style_prompt)
        assert old
        for version, ch in enumerate("color=", start=2):  # the user types at the cursor
            client.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                    content_changes=[
                        types.TextDocumentContentChangePartial(
                            range=types.Range(start=types.Position(line, col), end=types.Position(line, col)),
                            text=ch,
                        )
                    ],
                )
            )
            col += 1
            new = await get_prompt(client, uri, line, col)
            assert new["contextText"] == old["contextText"] and new["context"] == old["context"]
            # spm: the ids of the previous prompt (but a word re-merging with the typed character) come first
            keep = len(old["ids"]) - 2
            assert new["ids"][:keep] == old["ids"][:keep] and len(new["ids"]) >= len(old["ids"])
            old = new

        # contextExclude: takes the file out; a bad glob is reported and the old value stays.
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"codellama": {"contextExclude": ["shop/sty*.py"]}})
        )

        async def style_gone() -> bool:
            return not entries(await get_prompt(client, uri, line, col), "shop/style.py")

        assert await until(style_gone)
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"codellama": {"contextExclude": ["shop/\\"]}})
        )
        assert await until(lambda: settled([m for m in client.messages if "contextExclude" in m.message]))
        assert (await status(client))["settings"]["contextExclude"] == ["shop/sty*.py"]

        # contextTokens 0 turns context off: nothing in the prompt, no index.
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"codellama": {"contextExclude": [], "contextTokens": 0}})
        )
        assert await until(lambda: _off(client))
        prompt = await get_prompt(client, uri, line, col)
        assert prompt["context"] == [] and prompt["contextText"] == ""


async def _off(client: LanguageClient) -> bool:
    return (await status(client))["context"]["enabled"] is False


async def test_context_tokens_zero_from_the_start(tmp_path: Path, tokenizer_dir: Path) -> None:
    root = make_project(tmp_path / "proj")
    uri = (root / "shop" / "page.py").as_uri()
    async with session([root], tokenizer_only(tokenizer_dir, contextTokens=0)) as client:
        open_doc(client, uri, PAGE)
        for _ in range(5):
            assert (await prompt_at(client, uri, PAGE, "Style("))["context"] == []
            await asyncio.sleep(0.2)
        assert (await status(client))["context"] == {"enabled": False, "folders": 1}


async def test_a_remote_engine_gets_the_block_in_its_request(tmp_path: Path, tokenizer_dir: Path) -> None:
    root = make_project(tmp_path / "proj")
    uri = (root / "shop" / "page.py").as_uri()
    with FakeServer(tokenizer_dir) as server:
        options = {"engine": "tgi", "url": server.url, "tokenizer": str(tokenizer_dir), "debounceMs": 0}
        async with session([root], options) as client:
            open_doc(client, uri, PAGE)
            line, col = at(PAGE, "Style(")

            async def style_prompt() -> dict[str, Any] | None:
                prompt = await get_prompt(client, uri, line, col)
                return prompt if entries(prompt, "shop/style.py") else None

            prompt = await until(style_prompt)
            assert prompt
            server.queue(
                "/generate_stream", Stream([*tokens("color", "=", "'red'"), (32010, " <EOT>")], "stop_sequence")
            )
            result = await client.text_document_inline_completion_async(inline_params(uri, line, col))
            assert result is not None and [i.insert_text for i in result.items] == [
                "color='red')"
            ]  # the `)` after the cursor is covered, not doubled
            sent = server.seen_on("/generate_stream")[-1].body["inputs"]
            assert " <MID> " + prompt["contextText"] + '"""Pages' in sent  # spm as text: the block starts the prefix
            assert "# Path: shop/style.py\n# class Style:\n" in sent


async def test_requests_before_the_index_is_ready_do_not_wait(tmp_path: Path, tiny_model: Path) -> None:
    """Every parse takes 3 s here (tests/support/fault_site ``slow-index``); answers come at once."""
    root = make_project(tmp_path / "proj")
    uri = (root / "shop" / "page.py").as_uri()
    env = {"CODELLAMA_LS_FAULT": "slow-index", "PYTHONPATH": fault_path()}
    options = {"model": str(tiny_model), "debounceMs": 0, "maxNewTokens": 4}
    async with session([root], options, env=env) as client:
        open_doc(client, uri, PAGE)
        line, col = at(PAGE, "Style(")
        started = time.monotonic()
        prompt = await get_prompt(client, uri, line, col)
        result = await client.text_document_inline_completion_async(inline_params(uri, line, col))
        waited = time.monotonic() - started
        assert waited < 2.0, f"requests waited {waited:.1f} s for the index"
        assert prompt["context"] == [] and result is not None and result.items  # answered, with less context
        assert (await status(client))["context"]["ready"] is False

        async def style_shown() -> list[dict[str, Any]]:
            return entries(await get_prompt(client, uri, line, col), "shop/style.py")

        assert await until(style_shown, timeout=60), "the context never arrived"


async def test_a_failing_context_costs_only_the_context(tmp_path: Path, tiny_model: Path) -> None:
    root = make_project(tmp_path / "proj")
    uri = (root / "shop" / "page.py").as_uri()
    env = {"CODELLAMA_LS_FAULT": "context", "PYTHONPATH": fault_path()}
    options = {"model": str(tiny_model), "debounceMs": 0, "maxNewTokens": 4}
    async with session([root], options, env=env) as client:
        open_doc(client, uri, PAGE)
        line, col = at(PAGE, "Style(")
        for _ in range(3):
            result = await client.text_document_inline_completion_async(inline_params(uri, line, col))
            assert result is not None and [i.insert_text.startswith("x + 1") for i in result.items] == [True]
            assert (await get_prompt(client, uri, line, col))["context"] == []
        shown = [m.message for m in client.messages]
        assert len(shown) == 1 and "context from other files failed (RuntimeError)" in shown[0], shown
        assert "/srv/codellama" not in shown[0] and "hf_FAULTY" not in shown[0]
