"""The real server process over stdio, driven like an editor (pytest-lsp), with a tiny model."""

from __future__ import annotations

import asyncio
import time

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.support.lsp import get_prompt, inline_params, lsp_session, open_doc, request, status, wait_state

pytestmark = pytest.mark.slow

U8, U16 = types.PositionEncodingKind.Utf8, types.PositionEncodingKind.Utf16


def change(client, uri: str, version: int, start: tuple[int, int], end: tuple[int, int], text: str) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(
                        start=types.Position(line=start[0], character=start[1]),
                        end=types.Position(line=end[0], character=end[1]),
                    ),
                    text=text,
                )
            ],
        )
    )


async def test_completions_prompt_and_errors(tiny_model):
    async with lsp_session({"model": str(tiny_model), "maxNewTokens": 6, "debounceMs": 0}) as client:
        caps = client.init_result.capabilities
        assert caps.inline_completion_provider is not None and caps.completion_provider is not None
        assert caps.position_encoding == U16
        # Loading was reported as work-done progress, begin to end.
        kinds = [type(v).__name__ for reports in client.progress_reports.values() for v in reports]
        assert kinds[0] == "WorkDoneProgressBegin" and kinds[-1] == "WorkDoneProgressEnd"

        uri = "file:///w/calc.py"
        open_doc(client, uri, "def add(a, b):\n    return \n\nprint(add(1, 2))\n")
        inline = await client.text_document_inline_completion_async(inline_params(uri, 1, 11))
        assert inline is not None and len(inline.items) == 1
        item = inline.items[0]
        assert item.insert_text.strip()
        assert (item.range.start.line, item.range.start.character) == (1, 11)

        comp = await client.text_document_completion_async(
            types.CompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=1, character=11)
            )
        )
        # Without a trigger kind the menu was asked for explicitly: up to `suggestions` items (3), the
        # first the greedy one.
        assert isinstance(comp, types.CompletionList) and comp.is_incomplete and 1 <= len(comp.items) <= 3
        citem = comp.items[0]
        # Same prompt, greedy decoding: both methods suggest the same text.
        assert citem.text_edit.new_text == item.insert_text
        assert citem.label == item.insert_text.splitlines()[0].strip()
        assert citem.text_edit.range == item.range
        assert citem.insert_text_format == types.InsertTextFormat.PlainText

        prompt = await get_prompt(client, uri, 1, 11)
        assert prompt["format"] == "spm" and not prompt["truncated"]
        assert prompt["prefix"] == "def add(a, b):\n    return "
        assert prompt["suffix"] == "\n\nprint(add(1, 2))\n"
        assert prompt["ids"][:3] == [1, 32007, 32008]

        # Bad positions and unknown documents are InvalidParams errors, and the server lives on.
        for bad in (inline_params(uri, 1, 99), inline_params(uri, 40, 0), inline_params("file:///nope.py", 0, 0)):
            with pytest.raises(JsonRpcException) as err:
                await client.text_document_inline_completion_async(bad)
            assert err.value.code == -32602
        with pytest.raises(JsonRpcException):
            await get_prompt(client, uri, 7, 0)
        assert (await status(client))["state"] == "ready"


@pytest.mark.parametrize("encoding", [U16, U8])
async def test_incremental_sync_with_astral_characters(tiny_model, encoding):
    async with lsp_session({"model": str(tiny_model), "debounceMs": 0}, encodings=[encoding]) as client:
        assert client.init_result.capabilities.position_encoding == encoding
        uri = "file:///w/emoji.py"
        text = 's = "😀é"\nprint(s)\n'
        open_doc(client, uri, text)

        def col(s: str) -> int:
            return len(s.encode("utf-16-le")) // 2 if encoding == U16 else len(s.encode("utf-8"))

        # Type after the emoji and the accent: positions count code units of the negotiated encoding.
        change(client, uri, 2, (0, col('s = "😀é')), (0, col('s = "😀é')), "🎉!")
        change(client, uri, 3, (1, col("print(")), (1, col("print(s")), "len(s)")
        prompt = await get_prompt(client, uri, 0, col('s = "😀é🎉'))
        assert prompt["prefix"] == 's = "😀é🎉'
        assert prompt["suffix"] == '!"\nprint(len(s))\n'
        # A position inside the surrogate pair / UTF-8 sequence is rejected, not rounded.
        with pytest.raises(JsonRpcException):
            await get_prompt(client, uri, 0, col('s = "') + 1)


async def test_crlf_document(tiny_model):
    async with lsp_session({"model": str(tiny_model), "maxNewTokens": 4, "debounceMs": 0}) as client:
        uri = "file:///w/win.py"
        open_doc(client, uri, "import os\r\n\r\ndef f():\r\n    \r\n")
        change(client, uri, 2, (3, 4), (3, 4), "x = 1\r\n    ")
        prompt = await get_prompt(client, uri, 4, 4)
        assert prompt["prefix"] == "import os\n\ndef f():\n    x = 1\n    " and prompt["suffix"] == "\n"
        assert "\r" not in prompt["prefix"] + prompt["suffix"]


async def test_a_burst_with_the_local_engine_never_waits_and_the_newest_wins(tiny_model):
    # debounceMs is for remote engines: the local one starts each request at once.
    async with lsp_session({"model": str(tiny_model), "maxNewTokens": 4, "debounceMs": 5000}) as client:
        uri = "file:///w/burst.py"
        open_doc(client, uri, "def main():\n    \n")
        before = (await status(client))["generations"]
        tasks = []
        for i, ch in enumerate("value"):
            change(client, uri, i + 2, (1, 4 + i), (1, 4 + i), ch)
            tasks.append(
                asyncio.ensure_future(client.text_document_inline_completion_async(inline_params(uri, 1, 4 + i + 1)))
            )
            await asyncio.sleep(0.05)
        asked = time.monotonic()
        await asyncio.gather(*tasks)
        assert time.monotonic() - asked < 4  # not the 5 s debounce
        st = await status(client)
        assert st["wait"]["debounceMs"] == 0
        assert 1 <= st["generations"] - before <= 5
        prompt = await get_prompt(client, uri, 1, 9)
        assert prompt["prefix"].endswith("    value")
        # The last answer is for the text after the last keystroke: asked again there, the same
        # suggestion, without the model.
        again = await client.text_document_inline_completion_async(inline_params(uri, 1, 9))
        assert (await status(client))["generations"] == st["generations"]
        last = (await tasks[-1]).items
        assert [i.insert_text for i in again.items] == [i.insert_text for i in last] and last


async def test_cancel_and_supersede_stop_generation_early(tiny_model):
    # 4000 tokens would take many seconds on the tiny model; a cancelled run must stop at once.
    opts = {"model": str(tiny_model), "maxNewTokens": 3500, "debounceMs": 0, "generationTimeoutMs": 600000}
    async with lsp_session(opts) as client:
        uri = "file:///w/long.py"
        open_doc(client, uri, "x = 1\n")
        params = inline_params(uri, 1, 0)
        fut = asyncio.ensure_future(
            client.protocol.send_request_async(types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id="long-1")
        )
        await _wait_scheduled(client, 1)
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="long-1"))
        with pytest.raises(JsonRpcException):  # RequestCancelled
            await fut
        st = await _wait_generation(client, 1)
        assert st["last"]["stopReason"] == "cancelled"
        assert st["last"]["newTokens"] < 3500  # stopped long before maxNewTokens

        # A newer request for the same document answers the old one empty at once.
        first = asyncio.ensure_future(client.text_document_inline_completion_async(params))
        await _wait_scheduled(client, 2)
        started = time.monotonic()
        opts_short = {"codellama": {"maxNewTokens": 3}}
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=opts_short))
        second = await client.text_document_inline_completion_async(params)
        old = await first
        assert old.items == [] or old.items == ()
        assert second.items
        assert time.monotonic() - started < 30  # generous: the point is "not 3500 tokens"
        history = await request(client, "codellama/status", {})
        assert history["generations"] == 3


async def _wait_scheduled(client, n: int, timeout: float = 30) -> None:
    """Wait until the n-th generation is running in the engine, plus a few decoding steps."""
    deadline = time.monotonic() + timeout
    while (await status(client))["scheduled"] < n:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)


async def _wait_generation(client, n: int, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        st = await status(client)
        if st["generations"] >= n:
            return st
        assert time.monotonic() < deadline, st
        await asyncio.sleep(0.05)


async def test_invalid_settings_are_reported_and_ignored(tiny_model):
    opts = {"model": str(tiny_model), "maxNewTokens": -1, "fimFormat": "middle", "debounceMs": 0}
    async with lsp_session(opts) as client:
        st = await status(client)
        assert st["state"] == "ready"
        assert st["settings"]["maxNewTokens"] == 128 and st["settings"]["fimFormat"] == "spm"
        shown = "\n".join(m.message for m in client.messages)
        assert "maxNewTokens" in shown and "fimFormat" in shown

        n = len(client.messages)
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"codellama": {"debounceMs": "soon", "fimFormat": "psm"}})
        )
        await asyncio.sleep(0.3)
        st = await status(client)
        assert st["settings"]["debounceMs"] == 0 and st["settings"]["fimFormat"] == "psm"
        assert len(client.messages) == n + 1 and "debounceMs" in client.messages[-1].message
        assert st["state"] == "ready"  # a prompt setting does not reload the model


async def test_missing_model_keeps_serving_and_recovers(tiny_model, tmp_path):
    missing = tmp_path / "no-such-model"
    async with lsp_session({"model": str(missing), "debounceMs": 0}) as client:
        st = await wait_state(client, {"failed"})
        assert str(missing) in st["error"]
        await asyncio.sleep(0.2)
        # The progress the editor shows is ended, not left spinning.
        kinds = [type(v).__name__ for reports in client.progress_reports.values() for v in reports]
        assert kinds and kinds[-1] == "WorkDoneProgressEnd"
        errors = [m for m in client.messages if m.type == types.MessageType.Error]
        assert len(errors) == 1 and "hf download" in errors[0].message and "local folder" in errors[0].message
        uri = "file:///w/m.py"
        open_doc(client, uri, "x = \n")
        for _ in range(3):
            res = await client.text_document_inline_completion_async(inline_params(uri, 0, 4))
            assert not res.items
        assert len([m for m in client.messages if m.type == types.MessageType.Error]) == 1
        # Pointing the setting at a real model reloads it.
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"model": str(tiny_model)})
        )
        await wait_state(client, {"ready"})
        res = await client.text_document_inline_completion_async(inline_params(uri, 0, 4))
        assert res.items
