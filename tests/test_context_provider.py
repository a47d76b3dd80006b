"""The context block of a request: rendering, budget, similar code, and stability while typing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from codellama_ls.context.block import EMPTY
from codellama_ls.context.index import WorkspaceIndex
from codellama_ls.context.provider import ContextProvider
from codellama_ls.documents import path_to_uri
from codellama_ls.prompt.fim import build_prompt
from codellama_ls.prompt.memo import MemoTokenizer
from codellama_ls.prompt.tokens import CodeTokenizer
from tests.context_helpers import FIXTURES, indexed, open_doc, split_at


@pytest.fixture(scope="module")
def tok(tokenizer_dir: Path) -> MemoTokenizer:
    return MemoTokenizer(CodeTokenizer.load(str(tokenizer_dir)))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the Python fixture project that tests may edit."""
    root = tmp_path / "py"
    shutil.copytree(FIXTURES / "python", root)
    return root


def _ready(index: WorkspaceIndex) -> None:
    assert index.wait_ready(10)


def test_definitions_render_as_comments_before_the_file(project: Path, tok: MemoTokenizer) -> None:
    index = indexed(project)
    try:
        path = project / "app" / "render.py"
        uri = open_doc(index, path)
        prefix, suffix = split_at(path.read_text(), "style_=Style(")
        block = ContextProvider(index).context(uri, "python", prefix, suffix, 512, tok)
        assert block.text.endswith(
            "# Path: app/style.py\n# @dataclass\n# class Style:\n"
            '#     """How a piece of text is drawn."""\n#\n#     color: str = "black"\n'
            "#     bold: bool = False\n#     size: int = 12\n# ...\n"
            "# def default_style() -> Style:\n#     return Style()\n# Path: app/render.py\n"
        )
        assert block.text.startswith("# Path: app/text.py\n# class Page:\n")  # less important: further away
        style = block.entries[-1]
        assert style.to_json() == {
            "uri": path_to_uri(str(project / "app" / "style.py")),
            "startLine": 5,
            "endLine": 15,
            "reason": "definition",
            "tokens": style.tokens,
            "symbol": "Style, default_style",
        }
        footer = len(tok.encode_infill("# Path: app/render.py")) + 1
        assert block.tokens == len(tok.encode(block.text)) == sum(e.tokens for e in block.entries) + footer
    finally:
        index.stop()


@pytest.mark.parametrize("budget", [0, 10, 24, 40, 64, 100, 200, 512, 2000])
def test_the_block_never_exceeds_its_budget(project: Path, tok: MemoTokenizer, budget: int) -> None:
    index = indexed(project)
    try:
        path = project / "app" / "render.py"
        uri = open_doc(index, path)
        open_doc(index, project / "libs" / "geometry" / "draw.py")
        prefix, suffix = split_at(path.read_text(), "style_=Style(")
        block = ContextProvider(index).context(uri, "python", prefix, suffix, budget, tok)
        assert block.tokens <= budget and len(tok.encode(block.text)) == block.tokens
        if budget < 16:
            assert block is EMPTY
        elif budget >= 40:
            assert "# class Style:\n" in block.text  # the signature line of the name at the cursor comes first
    finally:
        index.stop()


def test_a_long_class_is_shown_as_its_signatures(tmp_path: Path, tok: MemoTokenizer) -> None:
    body = "".join(
        f"    def method_{i}(self, value: int) -> int:\n" + "        x = value\n" * 8 + "        return x\n\n"
        for i in range(30)
    )
    (tmp_path / "big.py").write_text(f'class Big:\n    """A big class."""\n\n{body}')
    (tmp_path / "use.py").write_text("from big import Big\n\nBig().method_")
    index = indexed(tmp_path)
    try:
        uri = open_doc(index, tmp_path / "use.py")
        block = ContextProvider(index).context(uri, "python", "from big import Big\n\nBig().method_", "", 300, tok)
        lines = block.text.split("\n")
        assert lines[:4] == ["# Path: big.py", "# class Big:", '#     """A big class."""', "#     ..."]
        assert "#     def method_0(self, value: int) -> int:" in lines
        assert "#     def method_5(self, value: int) -> int:" in lines  # signatures, not the first bodies
        assert "#         x = value" not in lines
        assert block.tokens <= 300
    finally:
        index.stop()


def test_similar_code_from_other_open_documents(tmp_path: Path, tok: MemoTokenizer) -> None:
    (tmp_path / "orders.py").write_text("")
    index = indexed(tmp_path)
    try:
        other = (
            "import json\n\n\n"
            + "def unrelated():\n    return 42\n\n\n" * 6
            + "def load_orders(path):\n    with open(path) as fh:\n        orders = json.load(fh)\n"
            "    totals = [order['price'] * order['quantity'] for order in orders]\n    return sum(totals)\n"
        )
        open_doc(index, tmp_path / "orders.py", other)
        open_doc(index, tmp_path / "notes.ts", "const orders = load_orders(path); // another language\n")
        here = tmp_path / "invoices.py"
        text = (
            "import json\n\n\ndef load_invoices(path):\n    with open(path) as fh:\n"
            "        invoices = json.load(fh)\n    "
        )
        uri = open_doc(index, here, text)
        block = ContextProvider(index).context(uri, "python", text, "", 200, tok)
        assert [e.reason for e in block.entries] == ["similar"]
        entry = block.entries[0]
        assert entry.uri == path_to_uri(str(tmp_path / "orders.py")) and entry.score and entry.score > 0.2
        assert "# def load_orders(path):\n" in block.text and "another language" not in block.text
        assert block.tokens <= 200
        assert block.text.endswith("# Path: invoices.py\n")
    finally:
        index.stop()


def test_languages_render_with_their_own_comments(tok: MemoTokenizer) -> None:
    index = indexed(FIXTURES / "js")
    try:
        path = FIXTURES / "js" / "src" / "main.ts"
        uri = open_doc(index, path)
        prefix, suffix = split_at(path.read_text(), "util.clamp(")
        block = ContextProvider(index).context(uri, "typescript", prefix, suffix, 512, tok)
        assert block.text.endswith(
            "// Path: src/util/index.js\n// // Keep a value between two bounds.\n"
            "// export function clamp(value, low, high) {\n//   return Math.min(Math.max(value, low), high);\n// }\n"
            "// Path: src/main.ts\n"
        )
        assert ContextProvider(index).context("file:///x.txt", "plaintext", "a", "", 512, tok) is EMPTY
    finally:
        index.stop()


def _typing(project: Path, tok: MemoTokenizer, provider: ContextProvider, uri: str, start: str, typed: str) -> list:
    return [provider.context(uri, "python", start + typed[:i], "\n", 512, tok) for i in range(len(typed) + 1)]


def test_the_block_stays_while_typing_in_one_place(project: Path, tok: MemoTokenizer) -> None:
    index = indexed(project)
    try:
        path = project / "app" / "render.py"
        text = path.read_text()
        uri = open_doc(index, path, text)
        provider = ContextProvider(index)
        blocks = _typing(
            project, tok, provider, uri, text, "\n\ndef shade(page):\n    value = compute(page, 3)\n    ret"
        )
        assert all(b is blocks[0] for b in blocks)
        assert provider.stats["rebuilt"] == 1
        # the typed text only appends to the prompt: the block and everything before the cursor stay
        prompts = [build_prompt(tok, text + "x" * i, "\n", budget=2048, context=blocks[0]) for i in range(3)]  # type: ignore[arg-type]
        assert prompts[1].ids[: len(prompts[0].ids) - 1] == prompts[0].ids[:-1]
    finally:
        index.stop()


def test_a_new_name_rebuilds_once_and_a_removed_one_does_not(project: Path, tok: MemoTokenizer) -> None:
    index = indexed(project)
    try:
        path = project / "app" / "render.py"
        text = path.read_text() + "\n\ndef shade(page):\n    "
        uri = open_doc(index, path, text)
        provider = ContextProvider(index)
        first = provider.context(uri, "python", text, "\n", 512, tok)
        typed = "Sty"
        partial = provider.context(uri, "python", text + typed, "\n", 512, tok)
        assert partial is first  # a word that names nothing yet changes nothing
        named = provider.context(uri, "python", text + "Style(", "\n", 512, tok)
        assert named is not first and named.entries[-1].symbol and "Style" in named.entries[-1].symbol
        again = provider.context(uri, "python", text + "Style(color=", "\n", 512, tok)
        assert again is named
        back = provider.context(uri, "python", text + "Sty", "\n", 512, tok)
        assert back is named  # names that go away do not flap the block
        assert provider.stats["rebuilt"] == 2
    finally:
        index.stop()


def test_moving_elsewhere_rebuilds_and_coming_back_is_stable(project: Path, tok: MemoTokenizer) -> None:
    index = indexed(project)
    try:
        path = project / "app" / "render.py"
        text = path.read_text() + "".join(f"\ndef filler_{i}():\n    return {i}\n" for i in range(40))
        uri = open_doc(index, path, text)
        provider = ContextProvider(index)
        near = provider.context(uri, "python", *split_at(text, "style_=Style("), 512, tok)
        far = provider.context(uri, "python", *split_at(text, "return 39"), 512, tok)
        assert far is not near and "class Style" not in far.text
        assert provider.context(uri, "python", *split_at(text, "return 38"), 512, tok) is far  # within a few lines
        assert provider.stats["rebuilt"] == 2
    finally:
        index.stop()


def test_a_changed_definition_rebuilds_the_block(project: Path, tok: MemoTokenizer) -> None:
    index = indexed(project)
    try:
        path = project / "app" / "render.py"
        uri = open_doc(index, path)
        style_path = project / "app" / "style.py"
        style_uri = open_doc(index, style_path)
        provider = ContextProvider(index)
        cursor = split_at(path.read_text(), "style_=Style(")
        before = provider.context(uri, "python", *cursor, 512, tok)
        assert provider.context(uri, "python", *cursor, 512, tok) is before
        changed = style_path.read_text().replace("size: int = 12", "size: int = 12\n    italic: bool = False")
        index.change(style_uri, changed)
        provider.context(uri, "python", *cursor, 512, tok)  # asks for the new parse of the changed file
        _ready(index)
        after = provider.context(uri, "python", *cursor, 512, tok)
        assert after is not before and "#     italic: bool = False\n" in after.text
    finally:
        index.stop()


def test_a_file_parsed_late_rebuilds_the_block_once(project: Path, tok: MemoTokenizer) -> None:
    index = WorkspaceIndex([project])
    path = project / "app" / "render.py"
    uri = path_to_uri(str(path))
    text = path.read_text()
    index.open(uri, text, "python")
    provider = ContextProvider(index)
    cursor = split_at(text, "style_=Style(")
    assert provider.context(uri, "python", *cursor, 512, tok) is EMPTY  # nothing parsed yet; no waiting
    index.start()
    try:
        _ready(index)
        provider.context(uri, "python", *cursor, 512, tok)
        _ready(index)
        block = provider.context(uri, "python", *cursor, 512, tok)
        assert "class Style" in block.text
        assert provider.context(uri, "python", *cursor, 512, tok) is block
    finally:
        index.stop()


def test_budget_accounting_is_exact_on_real_code(tok: MemoTokenizer) -> None:
    """At many cursors of this package's own code and many budgets, the block's cost is known
    before rendering: nothing has to be dropped afterwards, and the entries add up."""
    import random

    root = Path(__file__).resolve().parent.parent / "codellama_ls"
    index = indexed(root)
    try:
        files = sorted(root.rglob("*.py"))
        rng = random.Random(5)
        provider = ContextProvider(index)
        for path in rng.sample(files, 8):
            uri = open_doc(index, path)
        checked = 0
        for path in rng.sample(files, 12):
            text = path.read_text()
            uri = open_doc(index, path)
            for _ in range(4):
                pos = rng.randrange(len(text) + 1)
                for budget in (48, 150, 512):
                    provider.forget(uri)
                    block = provider.context(uri, "python", text[:pos], text[pos:], budget, tok)
                    assert block.tokens <= budget and block.tokens == len(tok.encode(block.text))
                    if block:
                        footer = tok.encode_infill(block.text.split("\n")[-2])
                        assert sum(e.tokens for e in block.entries) + len(footer) + 1 == block.tokens
                        checked += 1
        assert provider.stats["trimmed"] == 0 and checked > 20
    finally:
        index.stop()
