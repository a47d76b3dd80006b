"""Post-processing details the golden table does not spell out, and early stop on random output."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsprotocol import types

from codellama_ls.documents import Document
from codellama_ls.engines.base import GenerationResult
from codellama_ls.pipeline.completion import edit
from codellama_ls.postprocess import STEPS, Context, Suggestion, line_loop, postprocess, stop_check


def ctx_at(doc: str, lang: str = "") -> Context:
    before, after = doc.split("█")
    return Context(before, after, lang)


def test_quality_page_table_lists_every_step_in_order() -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "quality.md").read_text(encoding="utf-8")
    table = page[page.index("# Quality") :].split("**Early stop.**")[0]
    rows = [line.split("`")[1] for line in table.splitlines() if line.startswith("| `")]
    assert rows == [step.__name__ for step in STEPS]


def test_modes_follow_the_rest_of_the_line() -> None:
    assert ctx_at("x = f(█, 2)").mode == "single"
    assert ctx_at("x = f(█)").mode == "closers"
    assert ctx_at('x = f("█");').mode == "closers"
    assert ctx_at("x = █   \ny").mode == "multi"
    assert ctx_at("x = f(█)").single_line is False


def test_language_id_travels_from_the_document() -> None:
    doc = Document("file:///a.go", "package main\n", 0, "go")
    cursor = doc.cursor(types.Position(line=1, character=0), types.PositionEncodingKind.Utf16)
    assert Context.from_cursor(cursor).language_id == "go"


def test_indent_style() -> None:
    assert ctx_at("if x:\n    y\n█").indent_style == (False, 4)
    assert ctx_at("if (x) {\n  y;\n  if (z) {\n    w;\n  }\n}\n█").indent_style == (False, 2)
    assert ctx_at("func f() {\n\tx()\n}\n█").indent_style[0] is True
    assert ctx_at("█", "go").indent_style[0] is True
    assert ctx_at("█", "python").indent_style[0] is None  # nothing to go by: leave the model's


def test_nested_auto_closed_brackets() -> None:
    # The model closed the inner call only: the outer `)` still comes from the line.
    s = postprocess("val)", ctx_at("print(foo(█))"))
    assert s == Suggestion("val))", 2)
    # A FIM model leaves both out.
    assert postprocess("val", ctx_at("print(foo(█))")) == Suggestion("val))", 2)
    # A prefix model writes both, and the `;` after them.
    assert postprocess("val));\nmore()", ctx_at("print(foo(█));")) == Suggestion("val));", 3)


def test_auto_closed_keeps_its_own_brackets_before_the_line_end() -> None:
    assert postprocess("f(x)", ctx_at("print(█)")) == Suggestion("f(x))", 1)
    assert postprocess("a[0]", ctx_at("x[█]")) == Suggestion("a[0]]", 1)


def test_auto_closed_signature_keeps_its_body() -> None:
    # The user typed the `:` too: it is on the closing line, so nothing is appended after the body.
    ctx = ctx_at("def fib(█):", "python")
    assert postprocess("n):\n    return n\n\nprint(1)", ctx) == Suggestion("n):\n    return n", 2)
    # A call whose line does not open a block still ends at that line.
    assert postprocess('"a")\nprint("b")', ctx_at("print(█)", "python")) == Suggestion('"a")', 1)


def test_crlf_document_gets_crlf_suggestion_and_range() -> None:
    doc = Document("file:///a.js", "function f() {\r\n  █\r\n}\r\n".replace("█", ""), 0, "javascript")
    cursor = doc.cursor(types.Position(line=1, character=2), types.PositionEncodingKind.Utf16)
    result = GenerationResult("if (a) {\r\n    b();\r\n  }\r\n}", 0, 0, 0, "eot")
    suggestion = postprocess(result.text, Context.from_cursor(cursor))
    answer = None if suggestion is None else edit(cursor, suggestion, result)
    assert answer is not None
    assert answer.text == "if (a) {\r\n    b();\r\n  }"
    assert (answer.start, answer.end) == (2, 2)


def test_token_limit_drops_only_a_half_line_after_others() -> None:
    ctx = ctx_at("def f(x):\n    █\n", "python")
    assert postprocess("y = x\n    return y +", ctx, truncated=True) == Suggestion("y = x")
    assert postprocess("y = x\n    return y +", ctx) == Suggestion("y = x\n    return y +")  # ended at <EOT>
    assert postprocess("return x +", ctx, truncated=True) == Suggestion("return x +")  # the only line stays
    assert postprocess("\n    return x +", ctx_at("def f(x):█", "python"), truncated=True) == Suggestion(
        "\n    return x +"
    )
    assert postprocess("y = x\n    return y\n", ctx, truncated=True) == Suggestion("y = x\n    return y")  # complete


def test_line_comment_needs_the_language_marker_outside_strings() -> None:
    assert ctx_at("x = 1  # the █", "python").in_line_comment
    assert ctx_at('print("# no")  # but here █', "python").in_line_comment
    assert not ctx_at('url = "http://█', "javascript").in_line_comment  # in a string
    assert not ctx_at("q = a // █", "python").in_line_comment  # floor division
    assert not ctx_at("#include █", "c").in_line_comment  # a directive
    assert not ctx_at("#[derive(Debug)]█", "rust").in_line_comment
    assert ctx_at("fn f<'a>(x: &'a str) // lifetime, not a quote █", "rust").in_line_comment
    assert ctx_at("# a note █", "").in_line_comment and ctx_at("// a note █", "").in_line_comment
    # The suggestion ends with the comment's line; a string with `#` in it is code.
    assert postprocess("line\nx = 1", ctx_at("# the next █", "python")) == Suggestion("line")
    assert postprocess("a # b\nx = 1", ctx_at('s = "#"; █', "python")) == Suggestion("a # b\nx = 1")


LEGIT_REPETITIVE_LINES = [
    '"===="',
    "---",
    "0x0000",
    "[[0, 0], [0, 0]]",
    "aaa",
    "# " + "-" * 76,
    "/* " + "*" * 70 + " */",
    "0x00, " * 15 + "0x00",  # a row of a byte table
    "    int a[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};",
    "0b" + "1" * 64,
    "0xFFFFFFFFFFFFFFFF",
    "'" + "a" * 60 + "'",
    "[" + "(0, 0), " * 10 + "]",
    "assert f(f(f(x))) == 1",
    '"' + "ACGT" * 8 + '"',  # test data in a string (a bare line ending so is a loop, see below)
    'b"' + "QUFB" * 10 + '",',
    '    return self.client.request("GET", url, params=params, headers=headers, timeout=timeout, verify=verify)',
]
LOOPING_LINES = ["foo(" * 5, "0, " * 34, "dens" * 25, "self.x = self.x; " * 6, "x = " + "Some(" * 5, "1" * 102]


def test_line_loop_spares_legitimate_repetition() -> None:
    ctx = ctx_at("█", "python")
    for line in LEGIT_REPETITIVE_LINES:
        assert line_loop.find(line + "\n", ctx, True) is None, line
    for line in LOOPING_LINES:
        assert line_loop.find("ok\n" + line, ctx, False) == 2, line


# The last line of a suggestion: Tabby's rule (a unit of 3+ characters 5 times, of 10+ 3 times at
# the end), with the look-alikes that stay.
LOOPING_TAILS = [
    "cier" + "END ro" * 5,
    "print(c niveau" + "dens" * 6 + " vie vie vie",  # the run, then garbage that closes nothing
    "foo = " * 6,
    "1" + "0" * 45,
    "return self.items" + ".append(x)" * 3,
]
LEGIT_TAILS = [
    "x = [0, 0, 0, 0, 0, 0, 0, 0]",
    "0, 0, 0, 0, 0, 0, 0, 0",  # data before an auto-closed `]`, decoding ended by itself
    "seq = '" + "ACGT" * 8 + "'",
    "mask = 0b" + "1" * 64,
    "mask = 0x" + "F" * 32,
    "# " + "-" * 70,
    'print("=" * 80)',
    "...",
    "1000000000000",
    "ha ha ha",
]


def test_line_loop_drops_a_last_line_ending_in_a_loop() -> None:
    ctx = ctx_at("def f(x):\n    █\n", "python")
    for line in LOOPING_TAILS:
        assert line_loop.find("y = 1\n    " + line, ctx, True) == len("y = 1"), line
        assert line_loop.find("y = 1\n    " + line, ctx, False) is None, line  # not certain while decoding
        assert postprocess(line, ctx) is None, line  # the only line: no suggestion
    for line in LEGIT_TAILS:
        assert line_loop.find("y = 1\n    " + line, ctx, True) is None, line
    # Data counts when decoding was cut off in it; a run the document has is its style.
    cut_off = Context(ctx.prefix, ctx.suffix, "python", truncated=True)
    assert line_loop.find("0, 0, 0, 0, 0, 0, 0, 0", cut_off, True) == 0
    assert line_loop.find("0, 0, 0, 0, 0, 0, 0, 0]", cut_off, True) is None
    styled = ctx_at("# END roEND roEND ro\nx = █", "python")
    assert line_loop.find("cier" + "END ro" * 5, styled, True) is None


def test_echo_needs_the_same_indentation_and_a_whole_line() -> None:
    ctx = ctx_at("def f(x):\n    █\n    return result\n", "python")
    check = stop_check(ctx)
    # An early return inside a new block is not the echo of the outer `return result`.
    inner = "if x is None:\n        return result\n    result = x * 2"
    assert postprocess(inner, ctx) == Suggestion(inner)
    assert not any(check(inner[:end]) for end in range(1, len(inner) + 1))
    # Whitespace inside the line does not matter; decoding stops once the echoed line has ended.
    echo = "result = x\n    return  result \n    print(result)"
    assert not check(echo[: echo.index("\n    print")])
    assert check(echo[: echo.index("\n    print") + 1])
    assert postprocess(echo, ctx) == Suggestion("result = x")
    # Tabs count as four columns, like the rest of post-processing.
    assert postprocess("result = x\n\treturn result\n\tlog()", ctx) == Suggestion("result = x")


def test_stop_check_single_line() -> None:
    check = stop_check(ctx_at("x = f(█, 2)"))
    assert not check("abc")
    assert check("abc\n")


def test_stop_check_waits_for_possible_continuations() -> None:
    check = stop_check(ctx_at("def f(x):\n    if x:\n        █\n", "python"))
    assert not check("return 1\n    el")  # may become `else:`
    assert not check("return 1\n    else:\n        return 2\n")
    assert check("return 1\n    else:\n        return 2\n    x")  # `x` starts no continuation
    brace = stop_check(ctx_at("function f() {\n  █\n}", "javascript"))
    assert not brace("a();\n}")  # may become `} else {`
    assert brace("a();\n}\n")


def test_stop_check_top_level_blank_line() -> None:
    check = stop_check(ctx_at("import os\n█", "python"))
    assert not check("import sys\n")
    assert not check("import sys\n   ")
    assert check("import sys\n\n")
    # ... but not while the statement goes on
    assert not stop_check(ctx_at("█", "python"))("x = [\n\n")


def test_stop_check_never_fires_on_clean_fim_output() -> None:
    check = stop_check(ctx_at("def f(a):\n    █\n    return a\n", "python"))
    assert not check("a = a * 2")
    assert not check("a = a * 2\n    a += 1")


# -- early stop on random output -----------------------------------------------------------
CONTEXTS = [
    ctx_at("def f(x):\n    if x:\n        █\n    return x\n", "python"),
    ctx_at("def f(x):\n    y = 1█", "python"),
    ctx_at("import os\n█", "python"),
    ctx_at("function f() {\n  █\n}\n", "javascript"),
    ctx_at("function f() {█", "javascript"),
    ctx_at("func f() {\n\tif x {\n\t\t█\n\t}\n}\n", "go"),
    ctx_at("    foo(█);", "c"),
    ctx_at('    puts("█");', "c"),
    ctx_at("    let v = vec![█];", "rust"),
    ctx_at("x = f(█, 2)", "python"),
    ctx_at("items = [\n    1,█", "python"),
    ctx_at("class A:\n    █", "python"),
    ctx_at("class A {\n  █\n}", "typescript"),
    # issue 12: echo of the next line, a line comment, an auto-closed signature, a mid-line string
    ctx_at("def f(x):\n    y = 1\n    █\n    return x\n", "python"),
    ctx_at("func f() {\n\t█\n\tx := 1\n}\n", "go"),
    ctx_at("    # note █\n    return x\n", "python"),
    ctx_at("  // note █\n}\n", "typescript"),
    ctx_at("def fib(█)\n", "python"),
    ctx_at("fn f(█)", "rust"),
    ctx_at('    println!("x:█", x);', "rust"),
    # issue 18: fences (in code, in Markdown prose and blocks, in a string), a cursor on a line of
    # its own after a statement (a closing line ends the block), keys, a cut-off answer
    ctx_at("def add(a, b):\n    █\n", "python"),
    ctx_at("# Title\n\n█", "markdown"),
    ctx_at("```python\nx = 1\n█\n```\n", "markdown"),
    ctx_at('s = """\n█', "python"),
    ctx_at("    public void add(double n) {\n        result += n;\n█", "java"),
    ctx_at("env:\n  A: 1█\n", "yaml"),
    ctx_at("## █\n### Next\n", "markdown"),
    Context("let label = ", "", "javascript", truncated=True),
]
PIECES = [
    "foo()",
    "x = 1",
    "}",
    "} else {",
    "else:",
    "elif y:",
    "return x",
    ")",
    "]",
    "});",
    "end",
    "",
    "def g():",
    "if x:",
    "for (i = 0; i < n; i++) {",
    '"a")',
    "a);",
    "x++;",
    "catch (e) {",
    "  ",
    "1, 2];",
    "# note",
    "print('x')",
    "x = (",
    "a,",
    "'",
    "{",
    "done",
    "x = 1  # c:",
    "]:",
    "case 1:",
    "finally:",
    "def h(self):",
    "bar() {",
    "return x",
    "x := 1",
    "n):",
    "a) {",
    "n int) int {",
    '{}", x);',
    "foo(foo(foo(foo(foo(",
    "0, " * 34,
    "foo(foo(",
    "dens" * 13,
    "} else {",
    "else:",
    "```",
    "```python",
    "~~~",
    "``",
    "`x`",
    "KEY: value",
    "port = 8080",
    "dens" * 6 + " vie vie",
    "END ro" * 5,
    "0, 0, 0, 0, 0, 0, ",
    "1" + "0" * 30,
    "- item",
]
LINE = st.tuples(st.sampled_from(["", "  ", "    ", "        ", "\t", "\t\t"]), st.sampled_from(PIECES)).map("".join)
RAW = st.tuples(st.sampled_from(PIECES), st.lists(LINE, max_size=10), st.booleans()).map(
    lambda t: "\n".join([t[0], *t[1]]) + ("\n" if t[2] else "")
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ctx=st.sampled_from(CONTEXTS), raw=RAW)
def test_early_stop_never_changes_the_suggestion(ctx: Context, raw: str) -> None:
    check = stop_check(ctx)
    full = postprocess(raw, ctx)
    for end in range(1, len(raw) + 1):
        if check(raw[:end]):
            assert postprocess(raw[:end], ctx) == full, raw[:end]
            # once complete, a suggestion stays complete
            assert all(check(raw[:later]) for later in range(end, len(raw) + 1))
            break
