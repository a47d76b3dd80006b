"""Document sync and positions: exact in utf-8/16/32, CRLF, astral characters, bad positions."""

from __future__ import annotations

import pytest
from lsprotocol import types

from codellama_ls.documents import Document, PositionError, column_to_index, units

U8, U16, U32 = (types.PositionEncodingKind.Utf8, types.PositionEncodingKind.Utf16, types.PositionEncodingKind.Utf32)


def pos(line: int, character: int) -> types.Position:
    return types.Position(line=line, character=character)


def edit(doc: Document, start: tuple[int, int], end: tuple[int, int], text: str, enc: str) -> None:
    doc.apply(
        types.TextDocumentContentChangePartial(range=types.Range(start=pos(*start), end=pos(*end)), text=text), enc
    )


def test_units_per_encoding():
    s = "a😀é"
    assert (units(s, U8), units(s, U16), units(s, U32)) == (1 + 4 + 2, 1 + 2 + 1, 3)


@pytest.mark.parametrize("enc,col", [(U8, 5), (U16, 3), (U32, 2)])
def test_column_after_astral_character(enc, col):
    # 'x😀|y': the cursor after the emoji is column 5 in utf-8, 3 in utf-16, 2 in utf-32.
    assert column_to_index("x😀y", col, enc, strict=True) == 2


@pytest.mark.parametrize("enc,col", [(U8, 2), (U16, 2)])
def test_column_inside_a_character_is_rejected(enc, col):
    with pytest.raises(PositionError):
        column_to_index("x😀y", col, enc, strict=True)


def test_positions_out_of_range():
    doc = Document("file:///a", "ab\ncd")
    with pytest.raises(PositionError):
        doc.cursor(pos(2, 0), U16)
    with pytest.raises(PositionError):
        doc.cursor(pos(0, 3), U16)
    assert doc.cursor(pos(1, 2), U16).prefix == "ab\ncd"


def test_only_lsp_line_endings_split_lines():
    doc = Document("file:///a", "a\u2028b\x0cc\r\nd\re\nf")
    assert doc.lines == ["a\u2028b\x0cc", "d", "e", "f"]
    cur = doc.cursor(pos(1, 1), U16)
    assert cur.prefix == "a\u2028b\x0cc\nd" and cur.suffix == "\ne\nf"


def test_crlf_document_gives_lf_text_and_crlf_eol():
    doc = Document("file:///a", "def f():\r\n    return 1\r\n")
    cur = doc.cursor(pos(1, 4), U16)
    assert cur.prefix == "def f():\n    " and cur.suffix == "return 1\n" and cur.eol == "\r\n"


@pytest.mark.parametrize("enc", [U8, U16, U32])
def test_incremental_edits_with_astral_text(enc):
    text = "s = '😀'\nprint(s)\n"
    doc = Document("file:///a", text)
    # Insert after the emoji on line 0 (column depends on the encoding).
    col = units("s = '😀", enc)
    edit(doc, (0, col), (0, col), "🎉x", enc)
    assert doc.text == "s = '😀🎉x'\nprint(s)\n"
    # Replace across lines: from after "s = " to after "print(".
    edit(doc, (0, 4), (1, 6), "len(", enc)
    assert doc.text == "s = len(s)\n"
    cur = doc.cursor(pos(0, units("s = len(", enc)), enc)
    assert cur.prefix == "s = len(" and cur.suffix == "s)\n"


def test_edits_that_join_and_split_crlf():
    doc = Document("file:///a", "a\rb")
    assert doc.lines == ["a", "b"]
    edit(doc, (1, 0), (1, 0), "\n", U16)  # "a\r" + "\n" + "b" -> one CRLF, then b
    assert doc.text == "a\r\nb" and doc.lines == ["a", "b"]
    edit(doc, (0, 1), (1, 0), "", U16)  # delete the line break
    assert doc.text == "ab" and doc.lines == ["ab"]


def test_edit_at_document_end_and_full_replace():
    doc = Document("file:///a", "x")
    edit(doc, (0, 1), (0, 1), "\ny\n", U16)
    assert doc.text == "x\ny\n" and doc.lines == ["x", "y", ""]
    doc.apply(types.TextDocumentContentChangeWholeDocument(text="new\r\ntext"), U16)
    assert doc.lines == ["new", "text"] and doc.eol == "\r\n"


def test_client_edit_positions_past_the_end_are_clamped():
    doc = Document("file:///a", "ab\ncd")
    edit(doc, (1, 99), (5, 0), "!", U16)
    assert doc.text == "ab\ncd!"
