"""The real server process with `engine: ollama` against the Ollama stand-in (tests/support/fake_remote.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from tests.support.actions import answer
from tests.support.fake_remote import FakeServer, Stream, tokens
from tests.support.lsp import inline_params, lsp_session, open_doc, status

pytestmark = pytest.mark.slow

URI = "file:///tmp/team.py"
ROUTE = "/api/generate"


def inline(client: Any, line: int, character: int) -> Any:
    return client.text_document_inline_completion_async(inline_params(URI, line, character))


def options(url: str, tokenizer_dir: Path, **more: Any) -> dict[str, Any]:
    return {"engine": "ollama", "url": url, "tokenizer": str(tokenizer_dir), "debounceMs": 0, "maxRetries": 0, **more}


def shown(client: Any, needle: str) -> list[str]:
    return [m.message for m in client.messages if needle in m.message]


async def test_suggestions_stream_from_ollama_and_failures_are_shown_once(tokenizer_dir: Path) -> None:
    with FakeServer(tokenizer_dir) as server:
        async with lsp_session(options(server.url, tokenizer_dir, keepAlive="30m")) as client:
            st = await status(client)
            assert (st["engine"], st["state"], st["model"]) == ("ollama", "ready", "codellama:7b-code")
            assert st["contextLength"] == 16384  # llama.context_length from /api/show
            assert st["numCtx"] == 2816  # maxPromptTokens 2048 + instructMaxNewTokens 512, and a margin
            open_doc(client, URI, "def add(a, b):\n    return \n")
            server.queue(ROUTE, Stream(tokens(" a", " +", " b"), "stop", prompt_eval_count=4))
            result = await inline(client, 1, 11)
            assert [i.insert_text for i in result.items] == ["a + b"]
            body = server.generations()[-1].body
            assert body["prompt"] == "<PRE> <SUF>\n <MID> def add(a, b):\n    return "
            assert body["raw"] is True and body["keep_alive"] == "30m" and body["options"]["stop"] == ["<EOT>"]
            assert body["options"]["num_ctx"] == 2816  # room for the prompt budget and the answer
            st = await status(client)
            assert (st["last"]["prefillTokens"], st["last"]["newTokens"]) == (4, 3)  # from the final chunk

            # An error line in the stream, then a stream cut off: one message each, empty answers, still serving.
            open_doc(client, URI, "def sub(a, b):\n    return \n", version=2)
            broken = Stream(tokens(" a"), error_event={"error": "an error was encountered while running the model"})
            server.queue(ROUTE, broken, broken)
            for _ in range(2):
                assert not (await inline(client, 1, 11)).items
            assert len(shown(client, "while running the model")) == 1
            server.queue(ROUTE, *[Stream(tokens(" a", " -", " b"), drop_after=1)] * 2)
            for _ in range(2):
                assert not (await inline(client, 1, 11)).items
            assert len([m for m in client.messages if m.type == types.MessageType.Error]) == 2
            server.queue(ROUTE, Stream(tokens(" a", " -", " b"), "stop"))
            assert [i.insert_text for i in (await inline(client, 1, 11)).items] == ["a - b"]


async def test_a_model_that_is_not_pulled_gives_one_message_and_suggestions_once_it_is(tokenizer_dir: Path) -> None:
    with FakeServer(tokenizer_dir) as server:
        server.ollama_models = {"llama3.1:8b": 131072}
        async with lsp_session(options(server.url, tokenizer_dir)) as client:
            assert (await status(client))["state"] == "ready"  # the server keeps answering
            open_doc(client, URI, "def add(a, b):\n    return \n")
            for _ in range(3):
                assert not (await inline(client, 1, 11)).items
            [message] = shown(client, "ollama pull")
            assert "`ollama pull codellama:7b-code`" in message and "llama3.1:8b" in message
            assert server.generations() == []
            # `ollama pull codellama:7b-code`; the check is repeated at most every few seconds.
            server.ollama_models["codellama:7b-code"] = 16384
            server.defaults[ROUTE] = Stream(tokens(" a", " +", " b"), "stop")
            for _ in range(40):
                result = await inline(client, 1, 11)
                if result.items:
                    break
                await asyncio.sleep(0.25)
            assert [i.insert_text for i in result.items] == ["a + b"]
            assert len(shown(client, "ollama pull")) == 1


async def test_a_newer_keystroke_closes_the_waiting_stream(tokenizer_dir: Path) -> None:
    with FakeServer(tokenizer_dir) as server:
        async with lsp_session(options(server.url, tokenizer_dir)) as client:
            open_doc(client, URI, "total = compute_all()\n")
            server.stream_started.clear()
            server.queue(ROUTE, Stream(tokens("slow"), first_delay=60.0))
            server.queue(ROUTE, Stream(tokens("args"), "length"))
            first = asyncio.ensure_future(inline(client, 0, 20))
            await asyncio.get_running_loop().run_in_executor(None, server.stream_started.wait, 20)
            second = await inline(client, 0, 20)
            assert not (await first).items
            assert [i.insert_text for i in second.items] == ["args)"]  # replacing the `)` after the cursor
            assert server.streams[0].done.wait(10) and server.streams[0].disconnected  # Ollama stops the request


async def test_code_actions_use_the_instruct_model_on_the_same_ollama(tokenizer_dir: Path) -> None:
    with FakeServer(tokenizer_dir) as server:
        server.responders[ROUTE] = lambda body: (
            answer("It adds two numbers.") if body.get("model") == "codellama:7b-instruct" else None
        )
        opts = options(server.url, tokenizer_dir, instructModel="codellama:7b-instruct")
        async with lsp_session(opts) as client:
            st = await status(client)
            assert st["actions"]["available"] and st["actions"]["engine"] == "instruct", st["actions"]
            open_doc(client, URI, "def add(a, b):\n    return a + b\n")
            result = await client.workspace_execute_command_async(
                types.ExecuteCommandParams(
                    command="codellama.explain",
                    arguments=[
                        {
                            "uri": URI,
                            "range": {"start": {"line": 0, "character": 4}, "end": {"line": 0, "character": 4}},
                        }
                    ],
                )
            )
            markdown = result["markdown"] if isinstance(result, dict) else result.markdown
            assert markdown == "It adds two numbers."
            [sent] = [s.body for s in server.generations() if s.body["model"] == "codellama:7b-instruct"]
            assert sent["raw"] is True and sent["prompt"].startswith("[INST] ") and sent["prompt"].endswith(" [/INST]")
            assert "stop" not in sent["options"] and sent["options"]["num_predict"] == 512
            assert {"model": "codellama:7b-instruct"} in [s.body for s in server.seen_on("/api/show")]
