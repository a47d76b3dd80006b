"""Several suggestions and acceptance counts through the real server (tiny model, over LSP)."""

from __future__ import annotations

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.support.lsp import inline_params, lsp_session, open_doc, status

pytestmark = pytest.mark.slow

URI = "file:///w/calc.py"
TEXT = "def add(a, b):\n    return \n\nprint(add(1, 2))\n"


def inline(kind: types.InlineCompletionTriggerKind, line: int = 1, character: int = 11) -> types.InlineCompletionParams:
    return inline_params(URI, line, character, kind)


def menu(kind: types.CompletionTriggerKind) -> types.CompletionParams:
    return types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=URI),
        position=types.Position(line=1, character=11),
        context=types.CompletionContext(trigger_kind=kind),
    )


async def accept(client, command: types.Command | None, kind: str | None = None, length: int | None = None) -> bool:
    assert command is not None and command.command == "codellama.accepted"
    item_id, full, size = command.arguments
    assert full == "full"
    arguments = [item_id, kind or full, size if length is None else length]
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=command.command, arguments=arguments)
    )


async def test_asking_gives_several_suggestions_typing_one_and_accepts_are_counted(tiny_model):
    options = {"model": str(tiny_model), "maxNewTokens": 6, "debounceMs": 0, "suggestions": 6}
    async with lsp_session(options) as client:
        open_doc(client, URI, TEXT)
        typing = await client.text_document_inline_completion_async(inline(types.InlineCompletionTriggerKind.Automatic))
        assert len(typing.items) == 1
        # Typing on in an open menu (TriggerForIncompleteCompletions) asks for no more than typing.
        again = await client.text_document_completion_async(
            menu(types.CompletionTriggerKind.TriggerForIncompleteCompletions)
        )
        assert [i.text_edit.new_text for i in again.items] == [typing.items[0].insert_text]
        generations = (await status(client))["generations"]
        assert generations == 1
        asked = await client.text_document_inline_completion_async(inline(types.InlineCompletionTriggerKind.Invoked))
        texts = [item.insert_text for item in asked.items]
        assert 2 <= len(texts) <= 6 and len(set(texts)) == len(texts), texts  # distinct, within the setting
        assert texts[0] == typing.items[0].insert_text  # the first is the greedy one typing got
        st = await status(client)
        assert st["generations"] == generations + 1  # one model call for all of them
        assert st["decode"]["tokens"] >= st["last"]["newTokens"] > 6  # several samples were decoded
        assert len({item.command.arguments[0] for item in asked.items}) == len(texts)

        # The menu opened explicitly: the same suggestions as items, the first preselected, no model call.
        items = (await client.text_document_completion_async(menu(types.CompletionTriggerKind.Invoked))).items
        assert [i.text_edit.new_text for i in items] == texts
        assert [i.preselect for i in items] == [True] + [False] * (len(items) - 1)
        assert (await status(client))["generations"] == generations + 1

        # The editor reports what the user took: the second suggestion, and one word of another answer.
        assert await accept(client, asked.items[1].command)
        assert await accept(client, typing.items[0].command, "word", 2)
        counts = (await status(client))["acceptance"]["byLanguage"]["python"]
        model = counts["model"]
        assert (model["shown"], model["accepted"], model["partlyAccepted"], model["acceptedAlternatives"]) == (
            2,
            1,
            1,
            1,
        )
        assert model["rate"] == 0.5 and model["medianAcceptedMs"] > 0
        assert sum(source["shown"] for source in counts.values()) == 4  # and two answers without the model
        # An id the server never gave is refused, and bad arguments are the client's error.
        unknown = types.Command("x", "codellama.accepted", arguments=["999.0", "full", 3])
        assert await accept(client, unknown) is False
        with pytest.raises(JsonRpcException):
            await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="codellama.accepted", arguments=["1.0", "all", "3"])
            )
        assert (await status(client))["acceptance"]["bySource"]["model"]["accepted"] == 1
