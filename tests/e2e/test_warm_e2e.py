"""Through the real server: `codellama/warm` computes a resting cursor's prompt ahead, and the suggestion
that follows accepting the shown one is ready before Tab (a prefetch)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from tests.support.lsp import inline_params, insert, lsp_session, open_doc, status

URI = "file:///tmp/warm.py"
TEXT = (
    "import os\n\n\ndef total(values):\n    result = 0\n"
    "    for value in values:\n        result += \n    return result\n"
)
LINE, CHAR = 6, 18  # after "result += "


async def _until(client: Any, what: str, check: Any, timeout: float = 60) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        st = await status(client)
        if check(st):
            return st
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} did not happen: {st['decode']}")
        await asyncio.sleep(0.05)


def _warm(client: Any, uri: str, line: int, character: int) -> None:
    client.protocol.notify(
        "codellama/warm", {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}
    )


@pytest.mark.slow
async def test_warm_computes_the_prompt_so_the_request_there_computes_one_token(tiny_model, tmp_path: Path):
    log = tmp_path / "server.log"
    options = {"model": str(tiny_model), "maxNewTokens": 8, "debounceMs": 0}
    async with lsp_session(options, args=["--log-level", "INFO", "--log-file", str(log)]) as client:
        open_doc(client, URI, TEXT)
        # bad input first: an unknown document, a position past the end, no position at all
        _warm(client, "file:///tmp/nothere.py", 0, 0)
        _warm(client, URI, 40, 0)
        client.protocol.notify("codellama/warm", {"textDocument": {"uri": URI}})
        _warm(client, URI, LINE, CHAR)
        st = await _until(client, "the warm prefill", lambda st: st["decode"]["warm"]["prefills"] == 1)
        prompt_tokens = st["decode"]["warm"]["tokens"]
        assert st["decode"]["warm"]["requests"] == 1  # the bad ones changed nothing
        assert st["generations"] == 0 and prompt_tokens > 20
        result = await client.text_document_inline_completion_async(inline_params(URI, LINE, CHAR))
        assert result is not None
        st = await status(client)
        assert st["generations"] == 1 and st["last"]["prefillTokens"] == 1
        assert st["last"]["promptTokens"] == prompt_tokens
    lines = [line for line in log.read_text().splitlines() if " warm " in line or "warm ignored" in line]
    assert any(f"warm {URI} {prompt_tokens} tokens" in line for line in lines), lines
    assert any("warm file:///tmp/nothere.py ignored" in line for line in lines), lines
    assert any("warm ignored: codellama/warm needs textDocument and position" in line for line in lines), lines
    assert not any("Traceback" in line for line in log.read_text().splitlines())


@pytest.mark.slow
async def test_the_suggestion_after_an_accept_is_prefetched_and_answered_from_memory(tiny_model):
    options = {"model": str(tiny_model), "maxNewTokens": 8, "debounceMs": 0}
    async with lsp_session(options) as client:
        open_doc(client, URI, TEXT)
        result = await client.text_document_inline_completion_async(inline_params(URI, LINE, CHAR))
        assert result is not None and result.items
        shown = str(result.items[0].insert_text)
        assert "\n" not in shown, shown  # the position after it is then simple to compute
        st = await _until(client, "the prefetch", lambda st: st["decode"]["prefetch"]["made"] == 1)
        assert st["generations"] == 1  # a prefetch is not a request's generation
        insert(client, URI, 2, LINE, CHAR, shown)  # Tab: the editor inserts the suggestion, then asks at its end
        result = await client.text_document_inline_completion_async(inline_params(URI, LINE, CHAR + len(shown)))
        st = await status(client)
        assert (st["lastSource"], st["generations"]) == ("cache", 1)
        assert st["decode"]["prefetch"]["used"] == 1


@pytest.mark.slow
async def test_typing_past_a_step_of_the_prompts_cut_computes_what_was_typed(tiny_model):
    """After an answer the server computes the prompt as it will be after the next step of its cut (a
    look-ahead); typing on past that step then computes what was typed, not the whole prefix again."""
    from codellama_ls.engines.kvcache import common_prefix
    from codellama_ls.prompt.fim import build_prompt
    from codellama_ls.prompt.tokens import CodeTokenizer

    source = (Path(__file__).parent.parent / "fixtures" / "kv_reuse_sample.py.txt").read_text(encoding="utf-8")
    cursor = source.index("    def status")
    line = source[:cursor].count("\n")
    options = {"model": str(tiny_model), "maxNewTokens": 8, "debounceMs": 0, "maxPromptTokens": 500}
    options["contextTokens"] = 0  # the prompt is then the file's alone, which this test rebuilds
    tok = CodeTokenizer.load(str(tiny_model))

    def prompt(typed: str):
        return build_prompt(tok, source[:cursor] + typed, source[cursor:], fmt="spm", budget=500, stable_cut=True)

    at_rest = prompt("")
    typing = "        value = compute(first, second)\n        if value:\n            return value\n" * 6
    typed = next(typing[:i] for i in range(1, len(typing)) if len(prompt(typing[:i]).prefix) < len(at_rest.prefix) + i)
    step = prompt(typed)
    assert len(step.ids) - common_prefix(at_rest.ids, step.ids) > 300  # the step's cost without a look-ahead
    async with lsp_session(options) as client:
        open_doc(client, URI, source)
        assert await client.text_document_inline_completion_async(inline_params(URI, line, 0)) is not None
        st = await status(client)
        assert st["last"]["promptTokens"] == len(at_rest.ids)  # the server's prompt is the one rebuilt here
        st = await _until(client, "the look-ahead", lambda st: st["decode"]["ahead"]["prefills"] == 1)
        insert(client, URI, 2, line, 0, typed)
        end = types.Position(line=line + typed.count("\n"), character=len(typed.rsplit("\n", 1)[-1]))
        assert await client.text_document_inline_completion_async(inline_params(URI, end.line, end.character))
        st = await status(client)
        assert st["last"]["promptTokens"] == len(step.ids)
        assert st["last"]["prefillTokens"] <= len(tok.encode(typed)) + 3
        assert st["kvCache"]["aheadUsed"] == 1
