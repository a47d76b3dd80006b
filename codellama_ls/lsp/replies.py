"""The LSP reply: suggestions as inline items and completion items.

Positions come from the cursor line as the request saw it (``Answer.line_text``), in the
negotiated encoding. Every item carries ``codellama.accepted`` so that the editor reports an
accept (counted locally, see ``acceptance.py``).
"""

from __future__ import annotations

import re

from lsprotocol import types

from codellama_ls.pipeline.completion import Answer

ACCEPTED_COMMAND = "codellama.accepted"  # [item id, kind, accepted length]: the editor took a suggestion


def accepted_command(answer: Answer) -> types.Command:
    """What the editor runs when the user accepts the whole suggestion (acceptance.py counts it)."""
    return types.Command(title="Accept", command=ACCEPTED_COMMAND, arguments=[answer.id, "full", len(answer.text)])


def inline_item(answer: Answer, encoding: str) -> types.InlineCompletionItem:
    return types.InlineCompletionItem(
        insert_text=answer.text, range=answer.range(encoding), command=accepted_command(answer)
    )


_WORD_BEFORE = re.compile(r"\w+$")


def completion_item(answer: Answer, encoding: str, index: int = 0) -> types.CompletionItem:
    """The suggestion as a completion item whose edit starts at the word before the cursor.

    Clients filter completion items by the text between the edit's start and the cursor;
    eglot and Helix by the symbol at point. Starting the edit at that word and repeating the
    word in ``newText`` (and so in the label) lets the item through every such filter and
    still inserts exactly the suggestion. The label is the first non-blank line.
    """
    match = _WORD_BEFORE.search(answer.line_text[: answer.start])
    word = match.group(0) if match else ""
    new_text = word + answer.text
    label = next((part.strip() for part in new_text.splitlines() if part.strip()), new_text)
    edit_range = types.Range(
        start=answer.position(answer.start - len(word), encoding), end=answer.position(answer.end, encoding)
    )
    return types.CompletionItem(
        label=label,
        kind=types.CompletionItemKind.Text,
        detail="Code Llama",
        documentation=types.MarkupContent(kind=types.MarkupKind.PlainText, value=answer.text),
        insert_text_format=types.InsertTextFormat.PlainText,
        text_edit=types.TextEdit(range=edit_range, new_text=new_text),
        sort_text=f"{index:02d}",  # the model's order: the first (greedy) one on top
        preselect=index == 0,
        command=accepted_command(answer),
    )
