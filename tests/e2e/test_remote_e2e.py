"""The real server process with `engine: tgi` against the local fake TGI server."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from tests.support.fake_remote import FakeServer, Reply, Stream, tokens
from tests.support.lsp import inline_params, lsp_session, open_doc, status

pytestmark = pytest.mark.slow

URI = "file:///tmp/team.py"


def inline(client, line: int, character: int):
    return client.text_document_inline_completion_async(inline_params(URI, line, character))


def options(url: str, tokenizer_dir: Path) -> dict[str, object]:
    return {"engine": "tgi", "url": url, "tokenizer": str(tokenizer_dir), "debounceMs": 0, "maxRetries": 1}


def shown(client, needle: str) -> list[str]:
    return [m.message for m in client.messages if needle in m.message]


async def test_completions_stream_from_tgi_and_errors_are_shown_once(tokenizer_dir: Path) -> None:
    with FakeServer(tokenizer_dir) as server:
        async with lsp_session(options(server.url, tokenizer_dir)) as client:
            st = await status(client)
            assert st["engine"] == "tgi" and st["state"] == "ready" and st["model"] == server.model_id
            open_doc(client, URI, "def add(a, b):\n    return \n")
            server.queue("/generate_stream", Stream([*tokens(" a", " +", " b"), (32010, " <EOT>")], "stop_sequence"))
            result = await inline(client, 1, 11)
            assert [i.insert_text for i in result.items] == ["a + b"]  # no doubled space after `return `
            body = server.seen_on("/generate_stream")[-1].body
            assert body["inputs"] == "<PRE> <SUF>\n <MID> def add(a, b):\n    return "
            assert "<EOT>" in body["parameters"]["stop"]

            # New text: the answer above is cached for the old one (codellama_ls/pipeline/cache.py).
            open_doc(client, URI, "def sub(a, b):\n    return \n", version=2)
            failure = Reply(500, {"error": "Incomplete generation", "error_type": "incomplete_generation"})
            server.queue("/generate_stream", failure, failure, failure)
            for _ in range(3):
                assert not (await inline(client, 1, 11)).items
            assert len(shown(client, "HTTP 500")) == 1  # one message per kind of failure, not per keystroke

            busy = Reply(503, {"error": "Model is overloaded", "error_type": "overloaded"}, {"Retry-After": "0"})
            server.queue("/generate_stream", *[busy] * 4)
            for _ in range(2):
                assert not (await inline(client, 1, 11)).items
            assert len(shown(client, "busy")) == 1
            assert len(server.seen_on("/generate_stream")) == 1 + 3 + 4  # 503s were retried once each


async def test_mid_line_early_stop_and_supersede_close_the_stream(tokenizer_dir: Path) -> None:
    with FakeServer(tokenizer_dir) as server:
        async with lsp_session(options(server.url, tokenizer_dir)) as client:
            open_doc(client, URI, "total = compute()\n")
            # Mid-line: only the rest of this line is wanted, so the newline ends generation.
            server.queue("/generate_stream", Stream(tokens("values", "\n", *["x = 1\n"] * 40), delay=0.05))
            result = await inline(client, 0, 16)
            assert [i.insert_text for i in result.items] == ["values)"]  # replacing the `)` after the cursor
            assert server.streams[-1].done.wait(10)
            assert server.streams[-1].disconnected and server.streams[-1].sent < server.streams[-1].total

            # A newer request for the same document cancels the one still waiting for its first token.
            # (New text: the answer above is cached for the old one.)
            open_doc(client, URI, "total = compute_all()\n", version=2)
            server.stream_started.clear()
            server.queue("/generate_stream", Stream(tokens("slow"), first_delay=60.0))
            server.queue("/generate_stream", Stream(tokens("args"), finish="length"))
            first = asyncio.ensure_future(inline(client, 0, 20))
            await asyncio.get_running_loop().run_in_executor(None, server.stream_started.wait, 20)
            second = await inline(client, 0, 20)
            assert not (await first).items
            assert [i.insert_text for i in second.items] == ["args)"]
            slow = next(log for log in server.streams if log.total == 1 and log.sent == 0)
            assert slow.done.wait(10) and slow.disconnected


async def test_unreachable_server_at_start_is_one_message(tokenizer_dir: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with lsp_session(options(f"http://127.0.0.1:{port}", tokenizer_dir)) as client:
        st = await status(client)
        assert st["state"] == "ready" and "cannot reach" in st["error"]
        open_doc(client, URI, "def add(a, b):\n    return \n")
        for _ in range(3):
            assert not (await inline(client, 1, 11)).items
        assert len(shown(client, "cannot reach")) == 1
        assert not [m for m in client.messages if "cannot reach" not in m.message]
