"""Code actions over LSP with the real server: a stand-in TGI server serving an Instruct model id
answers with canned text; the server lists, resolves and applies the actions like an editor sees them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient, client_capabilities

from codellama_ls.actions import TextEdit, apply_edits
from tests.support.fake_remote import FakeServer, Stream, tokens
from tests.support.lsp import lsp_session, open_doc, request, status
from tests.support.tiny_model import SHARED

pytestmark = pytest.mark.slow

INSTRUCT_ID = "codellama/CodeLlama-7b-Instruct-hf"
BASE_ID = "codellama/CodeLlama-7b-hf"

GEOMETRY = """import math


def hyp(a, b):
    return math.sqrt(a * a + b * b)
"""
DOCSTRING_ANSWER = '```python\n"""Return the length of the hypotenuse of a right triangle with legs a and b."""\n```'
TESTS_ANSWER = """```python
import math

from geometry import hyp


def test_hyp_of_a_3_4_triangle():
    assert hyp(3, 4) == 5


def test_hyp_with_a_zero_leg():
    assert math.isclose(hyp(0, 2.5), 2.5)
```"""
BROKEN = """def mean(values):
    total = sum(values)
    return total / len(value)
"""
FIX_ANSWER = """The name `value` is not defined; it should be `values`:

```python
def mean(values):
    total = sum(values)
    return total / len(values)
```"""
EDIT_ANSWER = """```python
def hyp(a, b):
    return math.hypot(a, b)
```"""
EXPLAIN_ANSWER = "`hyp` returns the hypotenuse: the square root of `a² + b²` (Pythagoras)."


def answer(text: str, *, delay: float = 0.0) -> Stream:
    """An Instruct answer streamed word by word, ending with EOS (TGI's ``eos_token``)."""
    pieces = re.findall(r"\s*\S+|\s+$", text)
    assert "".join(pieces) == text
    return Stream(tokens(*pieces), finish="eos_token", delay=delay)


def options(url: str, tokenizer_dir: Path, **more: Any) -> dict[str, Any]:
    return {"engine": "tgi", "url": url, "tokenizer": str(tokenizer_dir), "debounceMs": 0, "maxRetries": 0, **more}


def record_edits(client: LanguageClient) -> list[types.ApplyWorkspaceEditParams]:
    """Answer the server's ``workspace/applyEdit`` as an editor that applies it, and keep what came."""
    seen: list[types.ApplyWorkspaceEditParams] = []

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        seen.append(params)
        return types.ApplyWorkspaceEditResult(applied=True)

    return seen


def tell_actions_from_commands(client: LanguageClient) -> None:
    """lsprotocol's converter reads every object with a ``command`` field as a ``Command``, so a
    ``CodeAction`` that carries one would reach the test as a garbled Command; editors tell them
    apart by the field's type (a Command's is a string), and so does this client now."""

    def structure(obj: Any, _: Any) -> types.Command | types.CodeAction:
        kind = types.Command if isinstance(obj.get("command"), str) else types.CodeAction
        return client.protocol._converter.structure(obj, kind)

    client.protocol._converter.register_structure_hook(types.Command | types.CodeAction, structure)


def range_(sl: int, sc: int, el: int, ec: int) -> types.Range:
    return types.Range(start=types.Position(line=sl, character=sc), end=types.Position(line=el, character=ec))


async def code_actions(
    client: LanguageClient, uri: str, rng: types.Range, diagnostics: list[types.Diagnostic] | None = None
) -> list[Any]:
    params = types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=rng,
        context=types.CodeActionContext(diagnostics=diagnostics or []),
    )
    return list(await client.text_document_code_action_async(params) or [])


def applied(text: str, edits: list[types.TextEdit]) -> str:
    """``text`` after LSP edits (ASCII text: characters are code units)."""
    plain = [
        TextEdit(e.range.start.line, e.range.start.character, e.range.end.line, e.range.end.character, e.new_text)
        for e in edits
    ]
    return apply_edits(text, plain)


def by_kind(actions: list[Any], kind: str) -> Any:
    found = [a for a in actions if a.kind == kind]
    assert len(found) == 1, [(a.title, a.kind) for a in actions]
    return found[0]


def warnings(client: LanguageClient) -> list[str]:
    return [m.message for m in client.messages]


@pytest.fixture
def instruct_server(tokenizer_dir: Path):
    with FakeServer(tokenizer_dir, model_id=INSTRUCT_ID) as server:
        yield server


async def test_docstring_resolved_with_progress(instruct_server: FakeServer, tokenizer_dir: Path, tmp_path: Path):
    uri = (tmp_path / "geometry.py").as_uri()
    async with lsp_session(options(instruct_server.url, tokenizer_dir)) as client:
        st = await status(client)
        assert st["actions"]["available"] and st["actions"]["engine"] == "completion", st["actions"]
        open_doc(client, uri, GEOMETRY)
        actions = await code_actions(client, uri, range_(3, 6, 3, 6))
        assert [a.title for a in actions] == [
            "Write docstring for `hyp`",
            "Write unit tests for `hyp` (in test_geometry.py)",
        ]
        doc_action = by_kind(actions, "refactor.rewrite.codellama.docstring")
        assert doc_action.edit is None and doc_action.command is None  # VS Code resolves the edit later
        assert not instruct_server.seen_on("/generate_stream")  # listing asked no model

        instruct_server.queue("/generate_stream", answer(DOCSTRING_ANSWER))
        resolved = await client.code_action_resolve_async(doc_action)
        [change] = resolved.edit.document_changes
        assert change.text_document.uri == uri and change.text_document.version == 1
        assert applied(GEOMETRY, change.edits) == GEOMETRY.replace(
            "def hyp(a, b):\n",
            'def hyp(a, b):\n    """Return the length of the hypotenuse of a right triangle with legs a and b."""\n',
        )
        # The chat prompt went out as text without BOS (TGI adds it), to EOS: no <EOT> stop.
        body = instruct_server.seen_on("/generate_stream")[-1].body
        assert body["inputs"].startswith("[INST] Write a docstring") and body["inputs"].endswith(" [/INST]")
        assert body["parameters"]["stop"] == [] and body["parameters"]["max_new_tokens"] == 512
        # $/progress from the server: a cancellable begin with the action's title, then an end.
        reports = [r for token, r in client.progress_reports.items() if str(token).startswith("codellama-ls/action/")]
        [(begin, *_, end)] = reports
        assert begin.title == "Code Llama: Write docstring for `hyp`" and begin.cancellable
        assert end.kind == "end" and end.message == "Done"
        st = await status(client)
        assert st["actions"]["finished"] == 1 and st["prompts"] == {"chatExact": 1}
        assert not warnings(client)


async def test_unit_tests_into_a_new_file_with_create_file(
    instruct_server: FakeServer, tokenizer_dir: Path, tmp_path: Path
):
    source_uri = (tmp_path / "geometry.py").as_uri()
    test_uri = (tmp_path / "test_geometry.py").as_uri()
    async with lsp_session(options(instruct_server.url, tokenizer_dir)) as client:
        open_doc(client, source_uri, GEOMETRY)
        action = by_kind(await code_actions(client, source_uri, range_(4, 8, 4, 8)), "refactor.rewrite.codellama.tests")
        instruct_server.queue("/generate_stream", answer(TESTS_ANSWER))
        resolved = await client.code_action_resolve_async(action)
        create, edit = resolved.edit.document_changes
        assert isinstance(create, types.CreateFile) and create.uri == test_uri and create.options.ignore_if_exists
        assert edit.text_document.uri == test_uri and edit.text_document.version is None
        assert applied("", edit.edits) == TESTS_ANSWER.removeprefix("```python\n").removesuffix("```")
        assert not (tmp_path / "test_geometry.py").exists()  # the editor creates it, not the server

        # A test file on disk that is not open: the tests go after its own, by its current text.
        existing = "from geometry import hyp\n\n\ndef test_hyp_of_a_3_4_triangle():\n    assert hyp(3, 4) == 5\n"
        (tmp_path / "test_geometry.py").write_text(existing)
        action = by_kind(await code_actions(client, source_uri, range_(4, 8, 4, 8)), "refactor.rewrite.codellama.tests")
        instruct_server.queue("/generate_stream", answer(TESTS_ANSWER))
        [edit] = (await client.code_action_resolve_async(action)).edit.document_changes
        assert edit.text_document.uri == test_uri and edit.text_document.version is None
        assert applied(existing, edit.edits) == (
            "from geometry import hyp\nimport math\n"  # the import the file lacked, after its own
            + existing.removeprefix("from geometry import hyp\n")
            + "\n\ndef test_hyp_of_a_3_4_triangle_2():\n    assert hyp(3, 4) == 5\n"  # a name it uses: renamed
            + "\n\ndef test_hyp_with_a_zero_leg():\n    assert math.isclose(hyp(0, 2.5), 2.5)\n"
        )


async def test_a_client_without_resolve_or_create_gets_a_command(
    instruct_server: FakeServer, tokenizer_dir: Path, tmp_path: Path
):
    """Emacs' eglot 29: no codeAction/resolve and no resource operations."""
    source_uri = (tmp_path / "geometry.py").as_uri()
    test_uri = (tmp_path / "test_geometry.py").as_uri()
    caps = client_capabilities("emacs")
    async with lsp_session(options(instruct_server.url, tokenizer_dir), caps=caps) as client:
        edits = record_edits(client)
        tell_actions_from_commands(client)
        open_doc(client, source_uri, GEOMETRY)
        action = by_kind(await code_actions(client, source_uri, range_(4, 8, 4, 8)), "refactor.rewrite.codellama.tests")
        assert action.edit is None and action.data is None and action.command.command == "codellama.runAction"
        instruct_server.queue("/generate_stream", answer(TESTS_ANSWER))
        result = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=action.command.command, arguments=action.command.arguments)
        )
        assert result.applied if hasattr(result, "applied") else result["applied"]
        [sent] = edits
        assert sent.label == "Write unit tests for `hyp` (in test_geometry.py)"
        [change] = sent.edit.document_changes  # no CreateFile: eglot opens the new file as a buffer
        assert change.text_document.uri == test_uri and change.text_document.version is None
        assert applied("", change.edits).startswith("import math\n\nfrom geometry import hyp\n")


async def test_fix_for_a_diagnostic_the_client_passes(instruct_server: FakeServer, tokenizer_dir: Path):
    uri = "file:///tmp/stats.py"
    diagnostic = types.Diagnostic(range=range_(2, 23, 2, 28), message="undefined name 'value'", source="pyflakes")
    async with lsp_session(options(instruct_server.url, tokenizer_dir)) as client:
        open_doc(client, uri, BROKEN)
        actions = await code_actions(client, uri, range_(2, 23, 2, 23), [diagnostic])
        fix = by_kind(actions, "quickfix")
        assert fix.title == "Fix: undefined name 'value'" and list(fix.diagnostics) == [diagnostic]
        instruct_server.queue("/generate_stream", answer(FIX_ANSWER))
        [change] = (await client.code_action_resolve_async(fix)).edit.document_changes
        assert applied(BROKEN, change.edits) == BROKEN.replace("len(value)", "len(values)")
        assert [(e.range.start.line, e.range.end.line) for e in change.edits] == [(2, 3)]  # only the line that changed
        prompt = instruct_server.seen_on("/generate_stream")[-1].body["inputs"]
        assert "undefined name 'value'" in prompt and "return total / len(value)" in prompt

        # Only the kinds asked for: a client that wants quick fixes gets no docstring action.
        params = types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=range_(2, 23, 2, 23),
            context=types.CodeActionContext(diagnostics=[diagnostic], only=[types.CodeActionKind.QuickFix]),
        )
        assert [a.kind for a in await client.text_document_code_action_async(params)] == ["quickfix"]


async def test_edit_and_explain_commands(instruct_server: FakeServer, tokenizer_dir: Path):
    uri = "file:///tmp/geometry.py"
    async with lsp_session(options(instruct_server.url, tokenizer_dir)) as client:
        edits = record_edits(client)
        open_doc(client, uri, GEOMETRY)
        instruct_server.queue("/generate_stream", answer(EDIT_ANSWER))
        args = {"uri": uri, "range": json.loads(json.dumps(_range_json(3, 0, 4, 35))), "instruction": "use math.hypot"}
        result = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="codellama.edit", arguments=[args])
        )
        assert _field(result, "applied") is True
        [sent] = edits
        assert sent.label == "Edit: use math.hypot"
        [change] = sent.edit.document_changes
        assert change.text_document.version == 1
        assert applied(GEOMETRY, change.edits) == GEOMETRY.replace("math.sqrt(a * a + b * b)", "math.hypot(a, b)")
        assert "use math.hypot" in instruct_server.seen_on("/generate_stream")[-1].body["inputs"]

        instruct_server.queue("/generate_stream", answer(EXPLAIN_ANSWER))
        result = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="codellama.explain", arguments=[{"uri": uri, "range": _range_json(3, 4, 3, 4)}]
            )
        )
        assert _field(result, "markdown") == EXPLAIN_ANSWER
        assert len(edits) == 1  # explaining changes nothing

        with pytest.raises(JsonRpcException, match="needs an instruction"):
            await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="codellama.edit", arguments=[{**args, "instruction": " "}])
            )


def _range_json(sl: int, sc: int, el: int, ec: int) -> dict[str, Any]:
    return {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}}


def _field(result: Any, name: str) -> Any:
    return result[name] if isinstance(result, dict) else getattr(result, name)


async def test_instruct_prompt_gives_the_reference_ids(instruct_server: FakeServer, tokenizer_dir: Path):
    vectors = SHARED / "instruct-vectors" / "codellama-instruct.jsonl"
    if not vectors.is_file():
        pytest.skip(f"needs {vectors}")
    cases = [json.loads(line) for line in vectors.read_text(encoding="utf-8").splitlines() if line.strip()]
    case = next(c for c in cases if len(c["messages"]) >= 3 and 200 < len(c["ids"]) < 1500)  # a dialog with turns
    async with lsp_session(options(instruct_server.url, tokenizer_dir)) as client:
        got = await request(client, "codellama/instructPrompt", {"messages": case["messages"]})
        assert got["ids"] == case["ids"] and got["truncated"] is False
        assert got["text"].startswith("<s>[INST]") and got["text"].endswith(" [/INST]")
        with pytest.raises(JsonRpcException, match="role"):
            await request(client, "codellama/instructPrompt", {"messages": [{"role": "bot", "content": "hi"}]})
        assert not instruct_server.seen_on("/generate_stream")  # a prompt, no generation
