"""The one line-splitting, line-ending and indentation helper (``codellama_ls/lines.py``)."""

from __future__ import annotations

from codellama_ls.actions.text import detect_unit
from codellama_ls.documents import Document
from codellama_ls.lines import IndentStyle, detect_eol, detect_indent, split_lines


def test_lines_end_only_where_lsp_says() -> None:
    text = "a\r\nb\rc\nd\u2028e\x0cf"
    assert split_lines(text) == ["a", "b", "c", "d\u2028e\x0cf"]
    assert Document("file:///x.py", text, 1, "python").lines == split_lines(text)  # the store agrees
    assert detect_eol("x\r\ny\n") == "\r\n" and detect_eol("x\ry") == "\r" and detect_eol("one line") == "\n"


def test_indentation_width_counts_levels_in_and_out_not_alignment() -> None:
    code = ["def f(x,", "      y):", "  if x:", "    return y", "  return x"]
    # The 6-space continuation is alignment, not a level; 2-space steps in and out decide.
    assert detect_indent(code) == IndentStyle(False, 2)
    assert detect_unit(code) == "  "


def test_tabs_win_when_most_indented_lines_use_them() -> None:
    assert detect_indent(["func f() {", "\tif x {", "\t\treturn", "\t}", "}"]) == IndentStyle(True, 4)
    assert detect_unit(["func f() {", "\treturn", "}"]) == "\t"


def test_nothing_indented_keeps_the_default() -> None:
    assert detect_indent(["a = 1", "", "b = 2"], 2) == IndentStyle(None, 2)
    assert detect_unit(["a = 1"], "\t") == "\t" and detect_unit(["a = 1"]) == "    "
