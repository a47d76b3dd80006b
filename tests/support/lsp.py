"""Drive a real ``python -m codellama_ls`` process with pytest-lsp, the way an editor does."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.support.rawlsp import server_env


def _log_args() -> list[str]:
    """Set CODELLAMA_LS_TEST_LOG=/path to get a DEBUG log of every server a test starts."""
    path = os.environ.get("CODELLAMA_LS_TEST_LOG")
    return ["--log-level", "DEBUG", "--log-file", path] if path else ["--log-level", "WARNING"]


def capabilities(encodings: list[str] | None = None, *, inline: bool = True) -> types.ClientCapabilities:
    caps = client_capabilities("visual-studio-code")
    if encodings is not None:
        caps.general = types.GeneralClientCapabilities(position_encodings=encodings)
    return caps


@contextlib.asynccontextmanager
async def lsp_session(
    init_options: dict[str, Any] | None = None,
    *,
    encodings: list[str] | None = None,
    args: list[str] | None = None,
    env: dict[str, str] | None = None,
    wait_ready: bool = True,
    caps: types.ClientCapabilities | None = None,
) -> AsyncIterator[LanguageClient]:
    """Start ``python -m codellama_ls`` and initialise it like an editor would (VS Code's capabilities
    unless ``caps`` says otherwise)."""
    config = ClientServerConfig(
        server_command=[sys.executable, "-m", "codellama_ls", *_log_args(), *(args or [])],
        server_env=server_env(**(env or {})),
    )
    client = await config.start()
    try:
        result = await client.initialize_session(
            types.InitializeParams(
                capabilities=caps or capabilities(encodings), initialization_options=init_options or {}
            )
        )
        client.init_result = result  # type: ignore[attr-defined]
        if wait_ready:
            await wait_state(client, {"ready", "failed"})
        yield client
        await asyncio.wait_for(client.shutdown_session(), 20)
    finally:
        server = client._server
        if server is not None and server.returncode is None:
            server.kill()  # a failed test must not leave the client waiting for the server
        await client.stop()


def plain(value: Any) -> Any:
    """pygls returns results of custom methods as namedtuples; turn them back into JSON values."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


async def request(client: LanguageClient, method: str, params: Any) -> Any:
    return plain(await client.protocol.send_request_async(method, params))


async def status(client: LanguageClient) -> dict[str, Any]:
    return await request(client, "codellama/status", {})


async def wait_state(client: LanguageClient, states: set[str], timeout: float = 60) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        st = await status(client)
        if st["state"] in states:
            return st
        if loop.time() > deadline:
            raise TimeoutError(f"server state stayed {st['state']}: {st}")
        await asyncio.sleep(0.05)


def open_doc(client: LanguageClient, uri: str, text: str, language: str = "python", version: int = 1) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id=language, version=version, text=text)
        )
    )


def insert(client: LanguageClient, uri: str, version: int, line: int, character: int, text: str) -> None:
    """``didChange``: ``text`` typed (or a suggestion accepted) at a position."""
    at = types.Position(line=line, character=character)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=at, end=at), text=text)],
        )
    )


def inline_params(
    uri: str,
    line: int,
    character: int,
    kind: types.InlineCompletionTriggerKind = types.InlineCompletionTriggerKind.Automatic,
) -> types.InlineCompletionParams:
    """An inline completion request at a position, as typing (``Automatic``) or asking (``Invoked``) sends it."""
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=kind),
    )


async def get_prompt(client: LanguageClient, uri: str, line: int, character: int) -> dict[str, Any]:
    return await request(
        client, "codellama/prompt", {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}
    )
