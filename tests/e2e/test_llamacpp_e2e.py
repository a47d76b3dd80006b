"""Against a real llama-server (built by ``.ci/llama-server.sh``) serving the tiny model's own weights.

The GGUF is made from the same ``save_pretrained`` folder the local engine loads (f32, with the
vendored ``convert_hf_to_gguf.py``), so greedy answers must be the same token for token. Servers
run on 127.0.0.1 with a free port and are killed (process group) after each test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from codellama_ls.config import Settings
from codellama_ls.engines.base import GenerationRequest
from codellama_ls.engines.llamacpp import LlamaCppEngine
from codellama_ls.engines.local import LocalEngine
from codellama_ls.prompt.fim import Prompt, build_prompt
from codellama_ls.prompt.tokens import CodeTokenizer
from tests.support.llama_server import SKIP_REASON as LLAMA_SKIP_REASON
from tests.support.llama_server import LlamaServer, have_llama_server
from tests.support.lsp import inline_params, lsp_session, open_doc, status
from tests.support.rawlsp import server_env
from tests.support.tiny_model import VECTORS

pytestmark = pytest.mark.slow

URI = "file:///w/calc.py"
OTHER = "file:///w/other.py"
TEXT = "def add(a, b):\n    return \n\nprint(add(1, 2))\n"
LINE, COL = 1, 11


def vectors(count: int) -> list[dict[str, Any]]:
    """FIM vectors spread over the file: ordinary cursors and the edge cases at its end."""
    lines = VECTORS.read_text(encoding="utf-8").splitlines()
    step = max(len(lines) // count, 1)
    return [json.loads(line) for line in lines[::step][:count]]


@pytest.fixture(scope="module")
def server(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """One server with two slots for the tests that do not stop or restart it."""
    with LlamaServer(tiny_gguf, ctx=4096, parallel=2, log=tmp_path_factory.mktemp("llama") / "server.log") as srv:
        yield srv


def llamacpp(url: str, **changes: Any) -> LlamaCppEngine:
    settings, errors = Settings().updated({"engine": "llamacpp", "url": url, **changes})
    assert not errors
    engine = LlamaCppEngine(settings)
    engine.load()
    return engine


def greedy(prompt: Prompt, new: int = 16, **kw: Any) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, max_new_tokens=new, **kw)


def test_server_tokenizer_gives_the_reference_ids(server: LlamaServer, tokenizer_dir: Path) -> None:
    """Without a local tokenizer the engine tokenizes with /tokenize: the prompts are Meta's reference
    ids (psm and spm) for ordinary code and the edge cases (literal <PRE>, astral characters, CRLF)."""
    engine = llamacpp(server.url)
    try:
        assert engine.tokenizer_source == "server"
        tok = engine.tokenizer
        assert tok is not None and tok.exact
        for case in vectors(24):
            for fmt in ("psm", "spm"):
                ids = build_prompt(tok, case["prefix"], case["suffix"], fmt=fmt, budget=100_000).ids
                assert ids == case[f"{fmt}_ids"], (case["source"], fmt)
    finally:
        engine.close()


def min_greedy_gap(model_dir: Path, ids: list[int], steps: int) -> float:
    """The smallest top-2 logit gap along the local model's greedy path (a near-tie flips on rounding)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    x, gap = torch.tensor([ids]), float("inf")
    with torch.no_grad():
        for _ in range(steps):
            top = torch.topk(model(x).logits[0, -1], 2)
            gap = min(gap, float(top.values[0] - top.values[1]))
            x = torch.cat([x, top.indices[:1].view(1, 1)], 1)
    return gap


def test_greedy_answers_equal_the_local_engines_on_the_same_weights(
    server: LlamaServer, tiny_model: Path, tokenizer_dir: Path
) -> None:
    """Same weights, same prompt ids, greedy: the same text. The random tiny model has near-ties (top-2
    logits 5e-4 apart in one of these 8 cases), which llama.cpp's and torch's f32 rounding may break
    either way; equality is asserted where the local model's greedy path has no gap under 2e-3."""
    local = LocalEngine(Settings(model=str(tiny_model), device="cpu"))
    local.load()
    remote = llamacpp(server.url)
    tok = CodeTokenizer.load(str(tokenizer_dir))
    try:
        compared = 0
        for case in vectors(8):
            prompt = build_prompt(tok, case["prefix"], case["suffix"], fmt="spm", budget=1024)
            want = local.generate(greedy(prompt, key="a"))
            got = remote.generate(greedy(prompt, key="a"))
            assert got.new_tokens > 0 and got.stop_reason in ("length", "eos", "eot")
            if got.text != want.text:
                assert min_greedy_gap(tiny_model, prompt.ids, 16) < 2e-3, case["source"]  # only at a near-tie
                continue
            compared += 1
        assert compared >= 6
        # The same prompt again on the same slot: llama-server's prompt cache computes (almost) nothing.
        again = remote.generate(greedy(prompt, key="a"))
        assert again.prompt_tokens == len(prompt.ids) and again.prefill_tokens <= 1
    finally:
        remote.close()
        local.close()


def test_each_document_keeps_its_slot_and_warm_fills_it(server: LlamaServer, tokenizer_dir: Path) -> None:
    engine = llamacpp(server.url)
    tok = engine.tokenizer
    assert tok is not None and engine.total_slots == 2
    try:
        a = build_prompt(tok, "def add(a, b):\n    return ", "\n", fmt="spm")
        b = build_prompt(tok, "class Stack:\n    def push(self, x):\n        ", "\n", fmt="spm")
        assert 0 < engine.warm(greedy(a, key=URI)) <= len(a.ids)  # computed ahead into the document's slot
        first = engine.generate(greedy(a, key=URI))
        assert first.prefill_tokens <= 1  # nothing left to compute
        engine.generate(greedy(b, key=OTHER))  # another file, on its own slot
        back = engine.generate(greedy(a, key=URI))
        assert back.prefill_tokens <= 1 and back.text == first.text  # switching files kept the first file's cache
        assert engine.slot(URI) != engine.slot(OTHER)
    finally:
        engine.close()


def test_closing_the_stream_stops_the_servers_decoding(server: LlamaServer, tokenizer_dir: Path) -> None:
    """Cancelling a long generation: the server's own counters show it stopped decoding at once."""
    engine = llamacpp(server.url)
    tok = engine.tokenizer
    assert tok is not None
    prompt = build_prompt(tok, "import os\n", "\n", fmt="spm")
    try:
        before = server.metrics()["tokens_predicted_total"]
        request = greedy(prompt, 3000, key=URI)
        result: list[Any] = []
        worker = threading.Thread(target=lambda: result.append(engine.generate(request)))
        worker.start()
        deadline = time.monotonic() + 30
        while not any(s["is_processing"] and s["next_token"][0]["n_decoded"] > 0 for s in server.slots()):
            assert time.monotonic() < deadline, "the server never started decoding"
            time.sleep(0.01)
        request.cancel.set()
        worker.join(10)
        assert result and result[0].stop_reason == "cancelled"
        settled = _settled(server)
        decoded = settled - before
        assert 0 < decoded < 3000  # stopped well before the 3000 tokens asked for
        time.sleep(0.5)
        assert server.metrics()["tokens_predicted_total"] == settled  # and stays stopped
        assert not any(s["is_processing"] for s in server.slots())
    finally:
        engine.close()


def _settled(server: LlamaServer, timeout: float = 10.0) -> float:
    """tokens_predicted_total once no slot is processing (the server counts a request when it ends)."""
    deadline = time.monotonic() + timeout
    while any(s["is_processing"] for s in server.slots()):
        assert time.monotonic() < deadline, "a slot kept processing"
        time.sleep(0.02)
    return server.metrics()["tokens_predicted_total"]


# -- over LSP --------------------------------------------------------------------------------


async def suggestions(options: dict[str, Any], text: str = TEXT, line: int = LINE, col: int = COL) -> list[str]:
    async with lsp_session({"debounceMs": 0, "maxNewTokens": 12, **options}) as client:
        open_doc(client, URI, text)
        result = await client.text_document_inline_completion_async(
            inline_params(URI, line, col, types.InlineCompletionTriggerKind.Invoked)
        )
        st = await status(client)
        assert st["state"] == "ready" and st["generations"] == 1, st
        assert not [m for m in client.messages if m.type == types.MessageType.Error], client.messages
        return [item.insert_text for item in result.items][:1]  # the greedy one (the others are sampled)


@pytest.mark.parametrize("local_tokenizer", [False, True], ids=["server-tokenizer", "tokenizer-setting"])
async def test_suggestions_over_lsp_equal_the_local_engines(
    server: LlamaServer, tiny_model: Path, tokenizer_dir: Path, local_tokenizer: bool
) -> None:
    want = await suggestions({"model": str(tiny_model)})
    options: dict[str, Any] = {"engine": "llamacpp", "url": server.url}
    if local_tokenizer:
        options["tokenizer"] = str(tokenizer_dir)
    assert await suggestions(options) == want


LONG = "".join(f"def f{i}(x):\n    return x * {i} + {i * 7}\n\n" for i in range(120))


@pytest.mark.parametrize("engine", ["llamacpp", "openai"])
async def test_a_512_token_server_still_gets_suggestions(
    tiny_gguf: Path, tokenizer_dir: Path, engine: str, tmp_path: Path
) -> None:
    """A server whose context (512) is smaller than the prompt budget: the prompt is fitted with room
    for the answer, ids are still sent, and every cursor gets its suggestion."""
    text = LONG + "def total(values):\n    return \n" + LONG
    line = LONG.count("\n") + 1
    with LlamaServer(tiny_gguf, ctx=512, log=tmp_path / "server.log") as srv:
        options: dict[str, Any] = {"engine": engine, "url": srv.url, "maxNewTokens": 64, "maxRetries": 0}
        if engine == "openai":
            options["tokenizer"] = str(tokenizer_dir)
        async with lsp_session({"debounceMs": 0, **options}) as client:
            open_doc(client, URI, text)
            for col in (4, 11, 8):
                result = await client.text_document_inline_completion_async(
                    inline_params(URI, line, col, types.InlineCompletionTriggerKind.Invoked)
                )
                assert result is not None
            st = await status(client)
            assert st["generations"] == 3 and st["contextLength"] == 512, st
            assert st["last"]["promptTokens"] + 64 <= 512 and st["last"]["newTokens"] > 0
            assert st["prompts"].get("ids", 0) >= 3 and "adjusted" not in st["prompts"]  # ids, never text
            assert not client.messages, client.messages


async def test_cancel_request_stops_the_servers_decoding(tiny_gguf: Path, tmp_path: Path) -> None:
    """Over LSP: a long generation, then the user types on and the editor sends $/cancelRequest for
    it; llama-server's counters show that it stopped decoding at once."""
    with LlamaServer(tiny_gguf, ctx=4096, log=tmp_path / "server.log") as srv:
        options = {"engine": "llamacpp", "url": srv.url, "debounceMs": 0, "maxNewTokens": 3000}
        async with lsp_session(options) as client:
            open_doc(client, URI, "import os\n\n")
            before = srv.metrics()["tokens_predicted_total"]
            params = inline_params(URI, 1, 0, types.InlineCompletionTriggerKind.Automatic)  # one suggestion
            pending = asyncio.ensure_future(
                client.protocol.send_request_async(types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id="long-1")
            )
            deadline = time.monotonic() + 30
            while not any(s["is_processing"] and s["next_token"][0]["n_decoded"] > 0 for s in srv.slots()):
                assert time.monotonic() < deadline, "the server never started decoding"
                await asyncio.sleep(0.01)
            client.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
                    content_changes=[types.TextDocumentContentChangeWholeDocument(text="import os\nx\n")],
                )
            )
            client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="long-1"))
            with contextlib.suppress(JsonRpcException):
                await asyncio.wait_for(pending, 10)  # cancelled (or answered empty): nobody waits for it
            settled = await asyncio.to_thread(_settled, srv)
            assert 0 < settled - before < 3000  # stopped well before the 3000 tokens asked for
            await asyncio.sleep(0.5)
            assert srv.metrics()["tokens_predicted_total"] == settled  # and stays stopped
            st = await status(client)
            assert st["last"]["stopReason"] == "cancelled", st
            assert not [m for m in client.messages if m.type == types.MessageType.Error]


async def test_server_killed_and_restarted_mid_session(tiny_gguf: Path, tmp_path: Path) -> None:
    """The server dies: one message, the language server keeps answering; it comes back on the same
    port: suggestions resume without a reload."""
    srv = LlamaServer(tiny_gguf, ctx=4096, log=tmp_path / "server.log")
    with srv:
        options = {"engine": "llamacpp", "url": srv.url, "debounceMs": 0, "maxNewTokens": 8, "maxRetries": 0}
        async with lsp_session(options) as client:
            open_doc(client, URI, TEXT)

            async def ask(col: int = COL) -> Any:
                return await client.text_document_inline_completion_async(
                    inline_params(URI, LINE, col, types.InlineCompletionTriggerKind.Automatic)
                )

            assert (await ask()) is not None
            before = (await status(client))["generations"]
            srv.stop()
            for col in (4, 5, 6):  # every request while it is down is answered (empty: no model, no cache)
                down = await ask(col)
                assert down is not None and list(down.items) == []
            errors = [m for m in client.messages if m.type == types.MessageType.Error]
            assert len(errors) == 1 and "Suggestions resume when it is back" in errors[0].message, errors
            await asyncio.to_thread(srv.start)
            assert (await ask(8)) is not None
            st = await status(client)
            assert st["state"] == "ready" and st["generations"] > before and st["error"] is None
            assert len([m for m in client.messages if m.type == types.MessageType.Error]) == 1


@pytest.mark.skipif(not have_llama_server(), reason=LLAMA_SKIP_REASON)
def test_latency_bench_llamacpp_column_runs(tmp_path: Path, tokenizer_dir: Path) -> None:
    """``bench/latency.py --quick --engine llamacpp`` from an empty cache: both columns in one table."""
    root = Path(__file__).resolve().parents[2]
    env = server_env(CODELLAMA_BENCH_CACHE=str(tmp_path / "cache"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, str(root / "bench" / "latency.py"), "--quick", "--engine", "llamacpp"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith(("| local |", "| llamacpp |"))]
    assert len(rows) == 2, done.stdout[-2000:]
