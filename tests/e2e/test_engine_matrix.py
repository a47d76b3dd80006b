"""Every engine with every source of its prompt tokenizer, through the real server process.

A user can have: the local engine with a model folder; or a remote engine (``tgi``,
``openai``, ``ollama``) whose tokenizer comes from (a) the ``tokenizer`` setting, (b) the served
model id found in the Hugging Face cache (Ollama: the hub id its ``codellama:13b-code`` tag is
made from), (c) the server's ``/tokenize`` only (not Ollama: it has none), or (d) nothing at all.
Each combination must serve suggestions over LSP; (a)-(c) send the reference prompt, (d) a
text prompt cut by estimate, with one information message that says how to make it exact.
The fake servers answer ``/tokenize`` with byte offsets and, without a tokenizer, with TGI's
404 ``No fast tokenizer available``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from codellama_ls.prompt.fim import build_prompt
from codellama_ls.prompt.text import fim_text
from codellama_ls.prompt.tokens import CodeTokenizer
from tests.support.fake_remote import FakeServer, Stream, tokens
from tests.support.llama_server import LlamaServer
from tests.support.lsp import get_prompt, inline_params, lsp_session, open_doc, status

pytestmark = pytest.mark.slow

URI = "file:///tmp/matrix.py"
# Non-ASCII text before the cursor: /tokenize's byte offsets must be read as bytes.
TEXT = 'def greet(name):\n    """Grüße, 世界."""\n    return \n'
LINE, COL = 2, 11
SERVED = "codellama/CodeLlama-13b-hf"  # the model id the fake server reports
ROUTE = {"tgi": "/generate_stream", "openai": "/v1/completions", "ollama": "/api/generate"}
FINISH = {"tgi": "stop_sequence", "openai": "stop", "ollama": "stop"}
# The Ollama tag of SERVED, and one whose hub id (CodeLlama-7b-hf) is not in the cache.
OLLAMA_MODEL = {"setting": "codellama:13b-code", "cache": "codellama:13b-code", "estimate": "codellama:7b-code"}
COMBINATIONS = [
    (engine, source)
    for engine in ("tgi", "openai", "ollama")
    for source in ("setting", "cache", "server", "estimate")
    if (engine, source) != ("ollama", "server")
]


def hub_cache(root: Path, tokenizer_dir: Path, model_id: str) -> Path:
    """A Hugging Face cache (``HF_HOME``) holding ``model_id``'s tokenizer.json, as a download leaves it."""
    repo = root / "hub" / ("models--" + model_id.replace("/", "--"))
    revision = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    shutil.copy(tokenizer_dir / "tokenizer.json", snapshot / "tokenizer.json")
    return root


def inline(client: Any) -> Any:
    return client.text_document_inline_completion_async(
        inline_params(URI, LINE, COL, types.InlineCompletionTriggerKind.Invoked)
    )


@pytest.fixture(scope="module")
def reference(tokenizer_dir: Path) -> list[int]:
    """The reference spm prompt of TEXT at the cursor."""
    tok = CodeTokenizer.load(str(tokenizer_dir))
    prefix, suffix = TEXT[: TEXT.index("return ") + 7], TEXT[TEXT.index("return ") + 7 :]
    return build_prompt(tok, prefix, suffix, fmt="spm", budget=2048).ids


async def test_local_engine_with_a_model_folder(tiny_model: Path, reference: list[int]) -> None:
    opts = {"model": str(tiny_model), "debounceMs": 0, "maxNewTokens": 4}
    async with lsp_session(opts) as client:
        open_doc(client, URI, TEXT)
        result = await inline(client)
        assert result is not None  # a list (the random model may say nothing worth showing)
        st = await status(client)
        assert st["state"] == "ready" and st["generations"] == 1 and st["last"]["promptTokens"] == len(reference)
        assert (await get_prompt(client, URI, LINE, COL))["ids"] == reference


@pytest.mark.parametrize(("engine", "source"), COMBINATIONS)
async def test_remote_engine_with_each_tokenizer_source(
    engine: str, source: str, tokenizer_dir: Path, tmp_path: Path, reference: list[int]
) -> None:
    # (d) a server without a fast tokenizer: /tokenize answers 404.
    server_tok = None if source == "estimate" else tokenizer_dir
    model_id = SERVED if source == "cache" else "/srv/models/codellama-13b"
    env = {"HF_HOME": str(hub_cache(tmp_path / "hf", tokenizer_dir, SERVED))}
    opts: dict[str, Any] = {"engine": engine, "debounceMs": 0, "maxRetries": 0}
    if source == "setting":
        opts["tokenizer"] = str(tokenizer_dir)
    if engine == "ollama":
        opts["model"] = OLLAMA_MODEL[source]
    with FakeServer(server_tok, model_id=model_id) as server:
        opts["url"] = server.url
        server.ollama_models = {name: 16384 for name in OLLAMA_MODEL.values()}
        server.defaults[ROUTE[engine]] = Stream(tokens("name", " +", " '!'"), FINISH[engine])
        async with lsp_session(opts, env=env) as client:
            open_doc(client, URI, TEXT)
            result = await inline(client)
            assert [item.insert_text for item in result.items] == ["name + '!'"]
            st = await status(client)
            assert st["state"] == "ready" and st["tokenizer"] == source

            body = server.seen_on(ROUTE[engine])[-1].body
            sent = body["inputs"] if engine == "tgi" else body["prompt"]  # Ollama: raw text
            notices = [m.message for m in client.messages if "not token-exact" in m.message]
            if source == "estimate":
                prefix, suffix = TEXT[: TEXT.index("return ") + 7], TEXT[TEXT.index("return ") + 7 :]
                assert sent == fim_text("spm", prefix, suffix)  # text markers, as without a tokenizer
                assert len(notices) == 1 and "'tokenizer'" in notices[0]
                assert [m.type for m in client.messages if "not token-exact" in m.message] == [types.MessageType.Info]
            else:
                assert notices == []
                if engine == "openai":
                    assert sent == reference  # ids, exactly the reference prompt
                else:
                    assert FakeServer(tokenizer_dir).token_ids(sent) == reference  # re-tokenizes exactly
            if source == "server":
                assert server.seen_on("/tokenize")
            elif source in ("setting", "cache"):
                assert not server.seen_on("/tokenize")  # no round trip per prompt

            # Typing on keeps serving (the typed-through path and a second model call).
            client.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
                    content_changes=[types.TextDocumentContentChangeWholeDocument(text=TEXT.replace("return ", "x ="))],
                )
            )
            again = await client.text_document_inline_completion_async(
                inline_params(URI, LINE, 7, types.InlineCompletionTriggerKind.Invoked)
            )
            assert again is not None and not any(m.type == types.MessageType.Error for m in client.messages)


@pytest.mark.parametrize("source", ["setting", "server"])
async def test_llamacpp_engine_against_a_real_llama_server(
    source: str, tiny_gguf: Path, tokenizer_dir: Path, tmp_path: Path, reference: list[int]
) -> None:
    """``llamacpp`` with (a) the ``tokenizer`` setting or (c) llama-server's own /tokenize; (b) and (d)
    do not arise: its model id is a GGUF file name, and every llama-server has /tokenize."""
    with LlamaServer(tiny_gguf, log=tmp_path / "server.log") as server:
        opts: dict[str, Any] = {"engine": "llamacpp", "url": server.url, "debounceMs": 0, "maxRetries": 0}
        if source == "setting":
            opts["tokenizer"] = str(tokenizer_dir)
        async with lsp_session(opts) as client:
            open_doc(client, URI, TEXT)
            assert (await inline(client)) is not None
            st = await status(client)
            assert st["state"] == "ready" and st["tokenizer"] == source and st["generations"] == 1
            assert st["last"]["promptTokens"] == len(reference) and set(st["prompts"]) == {"ids"}  # never text
            assert (await get_prompt(client, URI, LINE, COL))["ids"] == reference
            assert not client.messages, [m.message for m in client.messages]
