"""The completion item clients filter and apply: its edit starts at the word before the cursor.

eglot (1.9) and Helix filter completion items by the symbol at point; an item whose label
does not start with that symbol is dropped. tests/test_emacs_eglot.py checks this in Emacs.
"""

from __future__ import annotations

from lsprotocol import types

from codellama_ls.documents import Document
from codellama_ls.lsp.replies import completion_item
from codellama_ls.pipeline.completion import Answer

UTF16 = types.PositionEncodingKind.Utf16
UTF8 = types.PositionEncodingKind.Utf8


def _apply(doc: Document, item: types.CompletionItem, encoding: str = UTF16) -> str:
    """The document text after a client applies the item's textEdit."""
    edit = item.text_edit
    assert isinstance(edit, types.TextEdit)
    line, start = doc.index_of(edit.range.start, encoding)
    end_line, end = doc.index_of(edit.range.end, encoding)
    assert line == end_line
    lines = list(doc.lines)
    lines[line] = lines[line][:start] + edit.new_text + lines[line][end:]
    return "\n".join(lines)


def _item(text: str, line: int, index: int, suggestion: str, replace: int = 0, encoding: str = UTF16):
    doc = Document("file:///a.py", text)
    return doc, completion_item(Answer(suggestion, line, index, index + replace, None, doc.lines[line]), encoding)


def test_edit_starts_at_the_word_before_the_cursor():
    doc, item = _item("def add(a, b):\n    return a\n", 1, 12, " + b")
    assert item.text_edit.range.start == types.Position(line=1, character=11)
    assert item.text_edit.range.end == types.Position(line=1, character=12)
    assert item.text_edit.new_text == "a + b"
    assert item.label == "a + b"
    assert _apply(doc, item) == "def add(a, b):\n    return a + b\n"


def test_a_word_the_model_completes_is_one_label():
    doc, item = _item("x = 1\nprint(x)\nret\n", 2, 3, "urn x")
    assert item.label == "return x"
    assert item.text_edit.range.start.character == 0
    assert _apply(doc, item) == "x = 1\nprint(x)\nreturn x\n"


def test_after_a_space_or_bracket_the_edit_starts_at_the_cursor():
    _, item = _item("def add(a, b):\n    return \n", 1, 11, "a + b")
    assert item.text_edit.range.start == item.text_edit.range.end == types.Position(line=1, character=11)
    assert item.text_edit.new_text == item.label == "a + b"
    doc, item = _item("print(", 0, 6, "x)")
    assert (item.text_edit.range.start.character, item.label) == (6, "x)")
    assert _apply(doc, item) == "print(x)"


def test_replaced_text_after_the_cursor_stays_replaced():
    doc, item = _item("foo(ba)\n", 0, 6, "r, 1)", replace=1)
    assert item.text_edit.new_text == "bar, 1)"
    assert _apply(doc, item) == "foo(bar, 1)\n"


def test_multi_line_suggestion_label_is_its_first_non_blank_line():
    doc, item = _item("def f():\n    ", 1, 4, "\n    return 1")
    assert item.label == "return 1"
    assert item.text_edit.new_text == "\n    return 1"
    doc, item = _item("if ok\n", 0, 5, ":\n    go()")
    assert item.label == "ok:"
    assert _apply(doc, item) == "if ok:\n    go()\n"


def test_word_start_is_a_client_position_in_the_negotiated_encoding():
    # "😀" is 2 UTF-16 code units and 4 UTF-8 bytes before the word "ab".
    text = "s = '😀' + ab\n"
    doc, item = _item(text, 0, 12, "c")
    assert item.text_edit.range.start.character == 12 - 2 + 1
    assert _apply(doc, item) == "s = '😀' + abc\n"
    doc, item = _item(text, 0, 12, "c", encoding=UTF8)
    assert item.text_edit.range.start.character == 12 - 2 + 3
    assert _apply(doc, item, UTF8) == "s = '😀' + abc\n"


def test_unicode_identifiers_count_as_words():
    _, item = _item("größe = 1\nprint(grö", 1, 9, "ße)")
    assert item.text_edit.new_text == "größe)"
    assert item.label == "größe)"
