"""Through the real server: typing a suggestion and returning to a position make no model call."""

from __future__ import annotations

import pytest
from lsprotocol import types

from tests.support.lsp import inline_params, lsp_session, open_doc, status

URI = "file:///tmp/caches.py"
TEXT = (
    "import os\n\n\ndef total(values):\n    result = 0\n"
    "    for value in values:\n        result += \n    return result\n"
)
LINE, CHAR = 6, 18  # after "result += "


def _after(line: int, character: int, text: str) -> tuple[int, int]:
    """The position after inserting ``text`` at (line, character), in UTF-16 units."""
    for ch in text:
        if ch == "\n":
            line, character = line + 1, 0
        else:
            character += 2 if ord(ch) > 0xFFFF else 1
    return line, character


class Editor:
    """Types into one document and asks for inline completions, like an editor does."""

    def __init__(self, client) -> None:
        self.client, self.version = client, 1

    def type(self, line: int, character: int, text: str, delete: int = 0) -> tuple[int, int]:
        """Insert ``text`` at the position (after deleting ``delete`` characters before it)."""
        self.version += 1
        start = types.Position(line=line, character=character - delete)
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=self.version),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(start=start, end=types.Position(line=line, character=character)), text=text
                    )
                ],
            )
        )
        return _after(line, character - delete, text)

    async def suggest(self, line: int, character: int) -> tuple[str | None, dict]:
        result = await self.client.text_document_inline_completion_async(inline_params(URI, line, character))
        items = result.items if result else []
        if items:  # the edit starts at the cursor
            assert items[0].range.start == types.Position(line=line, character=character)
        return (items[0].insert_text if items else None), await status(self.client)


@pytest.mark.slow
async def test_typed_through_and_cached_answers_make_no_model_call(tiny_model):
    options = {"model": str(tiny_model), "maxNewTokens": 8, "debounceMs": 0}
    async with lsp_session(options) as client:
        open_doc(client, URI, TEXT)
        editor = Editor(client)
        shown, st = await editor.suggest(LINE, CHAR)
        assert shown and len(shown.strip()) >= 4, shown
        calls = st["generations"]
        assert calls == 1 and st["lastSource"] == "model"

        # the user types the first two characters of the suggestion: its rest, at once
        pos = editor.type(LINE, CHAR, shown[:2])
        rest, st = await editor.suggest(*pos)
        assert rest == shown[2:]
        assert (st["generations"], st["lastSource"], st["typedThroughHits"]) == (calls, "typed", 1)

        # the editor accepts one more character of it (partial accept): the same
        pos = editor.type(*pos, shown[2])
        rest, st = await editor.suggest(*pos)
        assert rest == shown[3:] and st["generations"] == calls

        # a character that is not in the suggestion: a normal request
        other = "Z" if shown[3] != "Z" else "Q"
        typed_pos = pos
        pos = editor.type(*pos, other)
        _, st = await editor.suggest(*pos)
        assert st["generations"] == calls + 1 and st["lastSource"] == "model"

        # backspace: back where the editor showed the rest of the suggestion; that answer is cached
        pos = editor.type(*pos, "", delete=1)
        assert pos == typed_pos
        back, st = await editor.suggest(*pos)
        assert back == shown[3:]
        assert (st["generations"], st["lastSource"]) == (calls + 1, "cache")

        # undo everything typed: the first prompt again, answered from the completion cache
        pos = editor.type(*pos, "", delete=3)
        assert pos == (LINE, CHAR)
        again, st = await editor.suggest(*pos)
        assert again == shown
        assert (st["generations"], st["lastSource"]) == (calls + 1, "cache")

        # one more backspace reaches text no suggestion was made for: a model call
        pos = editor.type(*pos, "", delete=1)
        start, st = await editor.suggest(*pos)
        assert (st["generations"], st["lastSource"]) == (calls + 2, "model")

        # another line, then back and forth: only the first visit there calls the model
        there, st = await editor.suggest(4, 14)
        assert st["generations"] == calls + 3
        back, st = await editor.suggest(*pos)
        assert back == start and (st["generations"], st["lastSource"]) == (calls + 3, "cache")
        again, st = await editor.suggest(4, 14)
        assert again == there and (st["generations"], st["lastSource"]) == (calls + 3, "cache")
        assert st["completionCache"]["hits"] == 4
        assert st["kvCache"]["hits"] >= 2  # the model calls after the first reused the document's prefix
