"""The pieces of the code actions: answer extraction, edits, test file conventions, prompts, listing."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from codellama_ls.actions import (
    AnswerError,
    Diagnostic,
    TextEdit,
    apply_edits,
    code_actions,
    pick_code,
    plan_docstring,
    plan_edit,
    plan_explain,
    plan_fix,
    plan_tests,
    source,
    strip_eos,
)
from codellama_ls.actions.answer import code_blocks, drop_prose
from codellama_ls.actions.syntax import Source, language_key
from codellama_ls.actions.text import detect_unit, is_elision, line_edits, reindent
from codellama_ls.actions.unittests import test_file as find_test_file
from codellama_ls.lines import detect_eol, split_lines
from codellama_ls.prompt.chat import build_chat_prompt, chat_ids
from codellama_ls.prompt.tokens import CodeTokenizer
from tests.test_actions_golden import CASES, strip_markers

PY = """import math


class Shape:
    def area(self):
        return 0


def hyp(a, b):
    return math.sqrt(a * a + b * b)
"""


# -- answers --------------------------------------------------------------------------------------------


def test_strip_eos_only_at_the_end():
    assert strip_eos("x = 1\n</s>") == "x = 1"
    assert strip_eos("x = 1 </s></s> \n") == "x = 1"
    assert strip_eos("html = '<s>a</s>'") == "html = '<s>a</s>'"


def test_code_blocks():
    answer = (
        "Intro\n```Python title\n  a = 1\n\n```\n~~~\nb\n~~~\n"
        '````go\nx := "```"\n````\n   ```js\n   let c\n   ```\n```rust\nfn f'
    )
    blocks = code_blocks(answer + "</s>")
    assert [(b.tag, b.code) for b in blocks] == [
        ("python", "  a = 1"),
        ("", "b"),
        ("go", 'x := "```"'),
        ("js", "let c"),
        ("rust", "fn f"),  # an answer cut at maxNewTokens: the open block runs to the end
    ]


def test_pick_code_prefers_the_language_and_skips_unchanged_copies():
    answer = "```bash\npip install x\n```\n```python\nold()\n```\n```python\nnew()\n```"
    assert pick_code(answer, "python") == "old()"
    assert pick_code(answer, "python", unchanged="old()") == "new()"
    assert pick_code(answer, "python", prefer=lambda c: "new" in c) == "new()"
    assert pick_code("```ts\nlet a = 1;\n```", "javascript") == "let a = 1;"  # JS and TS tags are one family
    assert pick_code("```text\nplain\n```", "go") == "plain"  # no block in the language: the first one


def test_unfenced_answers_lose_their_prose():
    answer = "Here is the fix:\n\ndef f(x):\n    return x + 1\n\nThis adds one."
    assert pick_code(answer, "python") == "def f(x):\n    return x + 1"
    assert pick_code("`x.size()`", "go") == "x.size()"
    assert drop_prose("Only words here, no code at all.", "python") == "Only words here, no code at all."


# -- text ---------------------------------------------------------------------------------------------------


def test_line_endings():
    assert detect_eol("a\r\nb\n") == "\r\n" and detect_eol("a\rb") == "\r" and detect_eol("ab") == "\n"
    assert split_lines("a\r\nb\rc\nd\u2028e") == ["a", "b", "c", "d\u2028e"]


def test_apply_edits_keeps_crlf():
    text = "one\r\ntwo\r\nthree"
    edits = [TextEdit(1, 0, 2, 0, "TWO\r\n"), TextEdit(2, 5, 2, 5, "!")]
    assert apply_edits(text, edits) == "one\r\nTWO\r\nthree!"


def test_inserts_at_one_position_keep_their_order():
    edits = [TextEdit(0, 1, 0, 1, "A"), TextEdit(0, 1, 0, 1, "B"), TextEdit(0, 0, 0, 1, "x")]
    assert apply_edits("ab", edits) == "xABb"


def test_positions_are_string_indices_past_astral_characters():
    text = 'const s = "😀"; const label = "n: " + String(total);\n'
    src = source(text, "javascript")
    assert src is not None
    start = text.index("String")
    plan = plan_edit(src, (0, start), (0, start + len("String(total)")), "two decimals")
    (change,) = plan.apply("```js\ntotal.toFixed(2)\n```").changes
    assert change.edits == (TextEdit(0, start, 0, start + 13, "total.toFixed(2)"),)
    code = 'def f(s="😀𝔘"): return s\n'
    src = source(code, "python")
    assert src is not None
    plan = plan_docstring(src, 0, code.index("return") + 3)
    assert plan is not None and plan.target is not None and plan.target.name == "f"
    (change,) = plan.apply('"""Echo s."""').changes
    assert apply_edits(code, change.edits) == 'def f(s="😀𝔘"):\n    """Echo s."""\n    return s\n'


def test_indentation_units():
    assert detect_unit(["def f():", "\tx = 1", "\tif x:", "\t\ty()"]) == "\t"
    assert detect_unit(["a {", "  b {", "    c", "  }", "}"]) == "  "
    assert detect_unit(["x"], "\t") == "\t"
    assert reindent(["if x:", "  y()", "", "  z()"], "\t", "\t") == ["\tif x:", "\t\ty()", "", "\t\tz()"]


def test_line_edits_are_minimal_and_keep_elided_lines():
    lines = ["a", "b", "c", "d", "e"]
    assert line_edits(lines, 0, 5, ["a", "B", "c", "d", "e"], "\n") == [TextEdit(1, 0, 2, 0, "B\n")]
    assert line_edits(lines, 0, 5, ["a", "# ... existing code ...", "e"], "\n") == []
    assert line_edits(lines, 0, 5, ["a", "...", "D", "e"], "\n") == [TextEdit(3, 0, 4, 0, "D\n")]
    # the last line has no line ending after it
    assert apply_edits("a\nb", line_edits(["a", "b"], 0, 2, ["a"], "\n")) == "a"
    assert is_elision("    // ... rest of the function unchanged ...") and not is_elision("x = a[...]")


# -- targets and test files --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language_id", "path", "key"),
    [
        ("python", None, "python"),
        ("typescriptreact", None, "tsx"),
        ("javascriptreact", None, "javascript"),
        ("", "a/b.rs", "rust"),
        ("plaintext", "x.mts", "typescript"),
        ("c", "x.c", None),
    ],
)
def test_language_keys(language_id, path, key):
    assert language_key(language_id, path) == key


def test_no_actions_for_other_languages():
    assert source("int main() {}", "c", "main.c") is None


def test_test_file_conventions(tmp_path: Path):
    def src(name: str, text: str = "", lang: str = "") -> Source:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        found = source(text, lang, path)
        assert found is not None
        return found

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    found = find_test_file(src("pkg/calc.py"))
    assert found is not None and found.path == tmp_path / "pkg" / "test_calc.py" and not found.exists
    assert found.module == "pkg.calc"
    assert find_test_file(src("pkg/test_calc.py")) is None
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "util.spec.ts").write_text("")
    found = find_test_file(src("web/util.ts"))
    assert found is not None and found.path == tmp_path / "web" / "util.spec.ts" and found.exists
    assert found.module == "./util"
    (tmp_path / "web" / "__tests__").mkdir()
    (tmp_path / "web" / "__tests__" / "list.test.js").write_text("")
    found = find_test_file(src("web/list.js"))
    assert found is not None and found.module == "../list"
    found = find_test_file(src("srv/main.go", "package server\n"))
    assert found is not None and found.path == tmp_path / "srv" / "main_test.go" and found.module == "server"
    found = find_test_file(src("lib.rs"))
    assert found is not None and found.path is None


def test_unsaved_documents_get_no_tests_action():
    src = source("def f():\n    return 1\n", "python")
    assert src is not None
    assert plan_tests(src, 1, 4) is None and plan_docstring(src, 1, 4) is not None


# -- plans -------------------------------------------------------------------------------------------------------


def test_listing_needs_no_model(tmp_path: Path):
    path = tmp_path / "geo.py"
    path.write_text(PY)
    src = source(PY, "python", path)
    assert src is not None
    diagnostic = Diagnostic((9, 11), (9, 15), '"sqrt" is\n deprecated')
    titles = [p.title for p in code_actions(src, (9, 4), (9, 4), [diagnostic])]
    assert titles == [
        "Write docstring for `hyp`",
        "Write unit tests for `hyp` (in test_geo.py)",
        'Fix: "sqrt" is deprecated',
    ]
    assert [p.title for p in code_actions(src, (0, 0), (0, 0))] == []


def test_prompts_hold_the_code_in_a_tagged_fence(tmp_path: Path):
    path = tmp_path / "geo.py"
    path.write_text(PY)
    src = source(PY, "python", path)
    assert src is not None
    doc = plan_docstring(src, 4, 8)
    assert doc is not None and doc.title == "Write docstring for `area`"
    (message,) = doc.messages
    assert message.role == "user"
    assert "only the docstring" in message.content
    assert message.content.endswith("```python\ndef area(self):\n    return 0\n```")
    tests = plan_tests(src, 4, 8)
    assert tests is not None and "from geo import Shape" in tests.messages[0].content
    fix = plan_fix(src, Diagnostic((9, 11), (9, 15), "use math.hypot"))
    assert "use math.hypot" in fix.messages[0].content and "```python\ndef hyp(a, b):" in fix.messages[0].content
    edit = plan_edit(src, (9, 11), (9, 35), "use hypot")
    assert "```python\nmath.sqrt(a * a + b * b)\n```" in edit.messages[0].content
    explain = plan_explain(src, (4, 8), (4, 8))
    assert explain.title == "Explain `area`" and "markdown" in explain.messages[0].content
    with pytest.raises(ValueError, match="empty"):
        plan_edit(src, (9, 0), (9, 5), "  ")


def test_prompts_fit_the_tokenizer(tokenizer_dir: Path, tmp_path: Path):
    tok = CodeTokenizer.load(str(tokenizer_dir))
    path = tmp_path / "geo.py"
    path.write_text(PY)
    src = source(PY, "python", path)
    assert src is not None
    plan = plan_docstring(src, 9, 4)
    assert plan is not None
    prompt = build_chat_prompt(tok, plan.messages, budget=2048)
    assert prompt.ids == chat_ids(tok, plan.messages) and not prompt.truncated
    assert prompt.text.startswith("<s>[INST] Write a docstring") and prompt.text.endswith("``` [/INST]")


def test_explain_is_the_markdown_answer():
    src = source(PY, "python")
    assert src is not None
    result = plan_explain(src, (9, 0), (9, 10)).apply("It computes **the hypotenuse**.\n</s>")
    assert result.markdown == "It computes **the hypotenuse**." and result.changes == ()


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ("```python\ndef hyp(a, b):\n    return 1\n```", "no docstring"),
        ("</s>", "empty"),
    ],
)
def test_useless_answers_change_nothing(answer, error):
    src = source(PY, "python")
    assert src is not None
    plan = plan_docstring(src, 9, 4)
    assert plan is not None
    with pytest.raises(AnswerError, match=error):
        plan.apply(answer)


def test_tests_answer_without_code_is_an_error(tmp_path: Path):
    path = tmp_path / "geo.py"
    path.write_text(PY)
    src = source(PY, "python", path)
    assert src is not None
    plan = plan_tests(src, 9, 4)
    assert plan is not None
    with pytest.raises(AnswerError):
        plan.apply("```python\n```")


def _check_edits(base: str, edits: tuple[TextEdit, ...]) -> None:
    lines = split_lines(base)
    ordered = sorted(edits, key=lambda e: (e.start_line, e.start_char))
    for e in ordered:
        assert (e.start_line, e.start_char) <= (e.end_line, e.end_char) and e.end_line < len(lines)
        assert e.start_char <= len(lines[e.start_line]) and e.end_char <= len(lines[e.end_line])
    for a, b in itertools.pairwise(ordered):
        assert (a.end_line, a.end_char) <= (b.start_line, b.start_char)


def test_any_answer_anywhere_gives_valid_edits_or_an_answer_error(tmp_path: Path):
    """Every golden document, random ranges, every golden answer (and broken ones): never a crash, and
    edits always lie inside the file, in order, without overlap."""
    rng = random.Random(13)
    answers = [c.answer for c in CASES] + ["", "</s>", "```\n```", "words only", "```python\n", "...", "}\n}"]
    for index, c in enumerate(CASES):
        text, _, _ = strip_markers(c.text(c.doc))
        folder = tmp_path / str(index)
        folder.mkdir()
        (folder / c.path).write_text(text, encoding="utf-8", newline="")
        src = source(text, c.lang, folder / c.path)
        assert src is not None
        lines = split_lines(text)
        for _ in range(12):
            l1 = rng.randrange(len(lines))
            l2 = rng.randrange(l1, len(lines))
            start = (l1, rng.randrange(len(lines[l1]) + 1))
            end = max(start, (l2, rng.randrange(len(lines[l2]) + 1)))
            plans = [
                plan_docstring(src, *start),
                plan_tests(src, *start),
                plan_fix(src, Diagnostic(start, end, "problem")),
                plan_edit(src, start, end, "change it"),
                plan_explain(src, start, end),
            ]
            for plan in plans:
                if plan is None:
                    continue
                try:
                    result = plan.apply(rng.choice(answers))
                except AnswerError:
                    continue
                for change in result.changes:
                    if change.path is None:
                        _check_edits(text, change.edits)
                    else:
                        _check_edits("" if change.create else change.path.read_text(encoding="utf-8"), change.edits)
