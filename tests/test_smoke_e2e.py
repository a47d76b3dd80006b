from __future__ import annotations

import pytest
from lsprotocol import types

from tests.conftest import get_prompt, lsp_session, open_doc, status


@pytest.mark.slow
async def test_inline_and_completion_smoke(tiny_model):
    async with lsp_session({"model": str(tiny_model), "maxNewTokens": 8, "debounceMs": 0}) as client:
        caps = client.init_result.capabilities
        assert caps.inline_completion_provider is not None
        uri = "file:///tmp/a.py"
        open_doc(client, uri, "def add(a, b):\n    return \n")
        res = await client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=1, character=11),
                context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
            )
        )
        print(res)
        st = await status(client)
        print(st)
        p = await get_prompt(client, uri, 1, 11)
        print(p)
        assert p["format"] == "spm"
