"""Code actions over LSP with the real server: a stand-in TGI server serving an Instruct model id
answers with canned text; the server lists, resolves and applies the actions like an editor sees them."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import attrs
import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient, client_capabilities

from tests.support.actions import INSTRUCT_ID, answer, applied, code_actions, options, range_, record_edits
from tests.support.fake_remote import FakeServer, Stream, tokens
from tests.support.lsp import lsp_session, open_doc, request, status
from tests.support.tiny_model import SHARED

pytestmark = pytest.mark.slow

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


def tell_actions_from_commands(client: LanguageClient) -> None:
    """lsprotocol's converter reads every object with a ``command`` field as a ``Command``, so a
    ``CodeAction`` that carries one would reach the test as a garbled Command; editors tell them
    apart by the field's type (a Command's is a string), and so does this client now."""

    def structure(obj: Any, _: Any) -> types.Command | types.CodeAction:
        kind = types.Command if isinstance(obj.get("command"), str) else types.CodeAction
        return client.protocol._converter.structure(obj, kind)

    client.protocol._converter.register_structure_hook(types.Command | types.CodeAction, structure)


def by_kind(actions: list[Any], kind: str) -> Any:
    found = [a for a in actions if a.kind == kind]
    assert len(found) == 1, [(a.title, a.kind) for a in actions]
    return found[0]


async def listed(client: LanguageClient, uri: str, line: int, character: int, kind: str) -> Any:
    """The one action of ``kind`` (docstring, tests) listed at a cursor."""
    rng = range_(line, character, line, character)
    return by_kind(await code_actions(client, uri, rng), f"refactor.rewrite.codellama.{kind}")


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
        action = await listed(client, source_uri, 4, 8, "tests")
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
        action = await listed(client, source_uri, 4, 8, "tests")
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
        action = await listed(client, source_uri, 4, 8, "tests")
        assert action.edit is None and action.data is None and action.command.command == "codellama.runAction"
        instruct_server.queue("/generate_stream", answer(TESTS_ANSWER))
        result = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=action.command.command, arguments=action.command.arguments)
        )
        assert _field(result, "started") is True  # at once: eglot gives a command 10 s, an answer takes longer
        await until("the edit", lambda: edits)
        [sent] = edits
        assert sent.label == "Write unit tests for `hyp` (in test_geometry.py)"
        [change] = sent.edit.document_changes  # no CreateFile: eglot opens the new file as a buffer
        assert change.text_document.uri == test_uri and change.text_document.version is None
        assert applied("", change.edits).startswith("import math\n\nfrom geometry import hyp\n")


async def test_fix_for_a_diagnostic_the_client_passes(instruct_server: FakeServer, tokenizer_dir: Path):
    uri = "file:///tmp/stats.py"
    diagnostic = types.Diagnostic(
        range=range_(2, 23, 2, 28),
        message="undefined name 'value'",
        source="pyflakes",
        severity=types.DiagnosticSeverity.Error,  # echoed back in the action: enums must survive the round trip
        tags=[types.DiagnosticTag.Unnecessary],
    )
    async with lsp_session(options(instruct_server.url, tokenizer_dir)) as client:
        open_doc(client, uri, BROKEN)
        actions = await code_actions(client, uri, range_(2, 23, 2, 23), [diagnostic])
        fix = by_kind(actions, "quickfix")
        [echoed] = fix.diagnostics  # the client's diagnostic, severity and tags included
        assert fix.title == "Fix: undefined name 'value'" and attrs.evolve(echoed, tags=list(echoed.tags)) == diagnostic
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
        # A bad request is the client's mistake: InvalidParams, and no generation.
        bad_range = {"start": {"line": 1.5, "character": 0}, "end": {"line": 2, "character": 0}}
        for arguments, error in [
            ([{"uri": uri, "range": bad_range}], "non-negative integers"),
            ([{"uri": "file:///tmp/closed.py", "range": _range_json(0, 0, 0, 0)}], "is not open"),
            ([], "takes one argument"),
        ]:
            with pytest.raises(JsonRpcException, match=error):
                await client.workspace_execute_command_async(
                    types.ExecuteCommandParams(command="codellama.explain", arguments=arguments)
                )
        assert len(instruct_server.seen_on("/generate_stream")) == 2


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


def action_progress(client: LanguageClient) -> dict[str, list[Any]]:
    return {str(t): r for t, r in client.progress_reports.items() if str(t).startswith("codellama-ls/action/")}


async def until(what: str, check: Any, timeout: float = 20) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (value := check()):
        if loop.time() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.02)
    return value


async def test_cancelling_stops_the_generation(instruct_server: FakeServer, tokenizer_dir: Path):
    uri = "file:///tmp/geometry.py"
    slow = Stream(tokens(*[" word"] * 400), finish="length", delay=0.05)  # 20 s if nobody stops it
    async with lsp_session(options(instruct_server.url, tokenizer_dir)) as client:
        open_doc(client, uri, GEOMETRY)
        action = await listed(client, uri, 3, 6, "docstring")

        # $/cancelRequest on the resolve: the request is cancelled and the server hangs up the stream.
        instruct_server.queue("/generate_stream", slow)
        pending = asyncio.ensure_future(
            client.protocol.send_request_async(types.CODE_ACTION_RESOLVE, action, msg_id="resolve-1")
        )
        await until("the stream", lambda: instruct_server.streams and instruct_server.streams[-1].sent > 2)
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="resolve-1"))
        with pytest.raises(JsonRpcException, match=r"[Cc]ancel"):
            await pending
        stream = instruct_server.streams[-1]
        assert stream.done.wait(10) and stream.disconnected and stream.sent < stream.total
        [(first, reports)] = action_progress(client).items()
        await until("the progress end", lambda: reports[-1].kind == "end")
        assert reports[-1].message == "Cancelled"

        # The progress's Cancel button (window/workDoneProgress/cancel): the action comes back without an edit.
        instruct_server.queue("/generate_stream", slow)
        pending = asyncio.ensure_future(client.code_action_resolve_async(action))
        await until("the second stream", lambda: len(instruct_server.streams) == 2 and instruct_server.streams[-1].sent)
        [token] = [t for t in action_progress(client) if t != first]
        client.protocol.notify(types.WINDOW_WORK_DONE_PROGRESS_CANCEL, types.WorkDoneProgressCancelParams(token=token))
        resolved = await asyncio.wait_for(pending, 20)
        assert resolved.edit is None
        stream = instruct_server.streams[-1]
        assert stream.done.wait(10) and stream.disconnected and stream.sent < stream.total
        assert action_progress(client)[token][-1].message == "Cancelled"
        st = await status(client)
        assert st["actions"]["running"] == 0 and st["last"]["stopReason"] == "cancelled"
        assert not warnings(client)  # the user cancelled: nothing to tell


async def test_a_changed_document_gets_no_edit(instruct_server: FakeServer, tokenizer_dir: Path):
    uri = "file:///tmp/geometry.py"
    async with lsp_session(options(instruct_server.url, tokenizer_dir)) as client:
        open_doc(client, uri, GEOMETRY)
        action = await listed(client, uri, 3, 6, "docstring")
        change = types.TextDocumentContentChangePartial(range=range_(0, 0, 0, 0), text="# top\n")
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2), content_changes=[change]
            )
        )
        resolved = await client.code_action_resolve_async(action)
        assert resolved.edit is None and not instruct_server.seen_on("/generate_stream")
        assert warnings(client) == [
            "codellama-ls: the document changed since this action was offered; nothing was changed. "
            "Ask for code actions again."
        ]

        # Changed while the model was writing: the answer is dropped too.
        action = await listed(client, uri, 4, 6, "docstring")
        instruct_server.queue("/generate_stream", answer(DOCSTRING_ANSWER, delay=0.1))
        pending = asyncio.ensure_future(client.code_action_resolve_async(action))
        await until("the stream", lambda: instruct_server.streams and instruct_server.streams[-1].sent)
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=3), content_changes=[change]
            )
        )
        assert (await pending).edit is None
        assert "the document changed while the answer was written" in warnings(client)[-1]


async def test_an_answer_without_what_was_asked_changes_nothing(instruct_server: FakeServer, tokenizer_dir: Path):
    uri = "file:///tmp/geometry.py"
    async with lsp_session(options(instruct_server.url, tokenizer_dir)) as client:
        open_doc(client, uri, GEOMETRY)
        action = await listed(client, uri, 3, 6, "docstring")
        instruct_server.queue("/generate_stream", answer(EDIT_ANSWER))  # code, but no docstring
        resolved = await client.code_action_resolve_async(action)
        assert resolved.edit is None
        assert warnings(client) == [
            "codellama-ls: Write docstring for `hyp`: the model's answer had nothing usable (the answer has no "
            "docstring)."
        ]
        [reports] = action_progress(client).values()
        assert reports[-1].message == "Nothing was changed"


async def test_no_instruct_model_no_actions_until_instruct_url(tokenizer_dir: Path):
    """A completion server with a base model offers no actions and says why; instructUrl adds a second
    server for them, and changing it restarts only that engine."""
    with (
        FakeServer(tokenizer_dir, model_id=BASE_ID) as base,
        FakeServer(tokenizer_dir, model_id=INSTRUCT_ID) as instruct,
        FakeServer(tokenizer_dir, model_id=INSTRUCT_ID) as other,
    ):
        uri = "file:///tmp/geometry.py"
        async with lsp_session(options(base.url, tokenizer_dir)) as client:
            st = (await status(client))["actions"]
            assert not st["available"] and st["engine"] is None
            assert st["reason"] == (
                f"no code actions: the tgi server at {base.url} serves {BASE_ID}, which is not an Instruct model; "
                "set instructUrl to a server that runs a Code Llama - Instruct model, or instructModel to load one here"
            )
            open_doc(client, uri, GEOMETRY)
            assert await code_actions(client, uri, range_(3, 6, 3, 6)) == []

            client.workspace_did_change_configuration(
                types.DidChangeConfigurationParams(settings={"codellama": {"instructUrl": instruct.url}})
            )
            action = await listed(client, uri, 3, 6, "docstring")
            assert (await status(client))["actions"]["state"] == "idle"  # started on the first action
            instruct.queue("/generate_stream", answer(DOCSTRING_ANSWER))
            resolved = await client.code_action_resolve_async(action)
            assert resolved.edit is not None
            assert len(instruct.seen_on("/generate_stream")) == 1 and not base.seen_on("/generate_stream")
            st = (await status(client))["actions"]
            assert (st["engine"], st["state"], st["model"]) == ("instruct", "ready", INSTRUCT_ID)

            # instructMaxNewTokens applies to the next action; a new instructUrl restarts only the Instruct engine.
            base_info = len(base.seen_on("/info"))
            client.workspace_did_change_configuration(
                types.DidChangeConfigurationParams(
                    settings={"codellama": {"instructMaxNewTokens": 64, "instructUrl": other.url}}
                )
            )
            action = await listed(client, uri, 3, 6, "docstring")
            other.queue("/generate_stream", answer(DOCSTRING_ANSWER))
            assert (await client.code_action_resolve_async(action)).edit is not None
            assert other.seen_on("/generate_stream")[-1].body["parameters"]["max_new_tokens"] == 64
            assert len(instruct.seen_on("/generate_stream")) == 1 and len(base.seen_on("/info")) == base_info
            assert (await status(client))["state"] == "ready"  # the completion engine was not reloaded
            assert not warnings(client)


async def test_local_tiny_model_as_the_instruct_model(tiny_model: Path, tmp_path: Path):
    """The local engine end to end: a second model loaded on the first action (with progress), then
    the completion model itself. The random model writes nonsense: the action ends in an edit or in
    the message that the answer had nothing usable, never in an error."""
    second = tmp_path / "instruct-copy"
    shutil.copytree(tiny_model, second)
    uri = (tmp_path / "geometry.py").as_uri()
    opts = {"model": str(tiny_model), "instructModel": str(second), "debounceMs": 0}
    async with lsp_session(opts) as client:
        st = await status(client)
        assert (st["actions"]["engine"], st["actions"]["state"]) == ("instruct", "idle")
        open_doc(client, uri, GEOMETRY)
        actions = await code_actions(client, uri, range_(3, 6, 3, 6))
        assert [a.kind for a in actions] == ["refactor.rewrite.codellama.docstring", "refactor.rewrite.codellama.tests"]
        generations = st["generations"]

        resolved = await asyncio.wait_for(client.code_action_resolve_async(actions[0]), 300)
        st = await status(client)
        assert (st["actions"]["state"], st["actions"]["finished"]) == ("ready", 1), st["actions"]
        assert st["generations"] == generations  # the second engine answered, not the completion model
        loads = [r for t, r in client.progress_reports.items() if str(t).startswith("codellama-ls/load/")]
        assert len(loads) == 2 and loads[-1][-1].kind == "end"  # the completion model, then the Instruct one
        assert [r[0].title for r in action_progress(client).values()] == ["Code Llama: Write docstring for `hyp`"]
        _edit_or_said_so(client, resolved)

        # instructModel naming the completion model: no second copy, the completion engine answers.
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"codellama": {"instructModel": str(tiny_model)}})
        )
        st = (await status(client))["actions"]
        assert (st["engine"], st["reason"]) == ("completion", "instructModel is the completion model")
        action = await listed(client, uri, 3, 6, "docstring")
        resolved = await asyncio.wait_for(client.code_action_resolve_async(action), 300)
        assert (await status(client))["generations"] == generations + 1
        _edit_or_said_so(client, resolved)


def _edit_or_said_so(client: LanguageClient, resolved: types.CodeAction) -> None:
    if resolved.edit is None:
        assert "the model's answer had nothing usable" in warnings(client)[-1], warnings(client)
    else:
        [change] = resolved.edit.document_changes
        assert change.text_document.version == 1 and change.edits


async def test_positions_in_utf16_and_crlf_line_endings(instruct_server: FakeServer, tokenizer_dir: Path):
    """Edits come back in the client's position encoding and the document's line endings."""
    uri = "file:///tmp/greet.py"
    text = 'def greet(name):\r\n    label = "😀 " + name.upper()\r\n    return label\r\n'
    line = text.split("\r\n")[1]
    start = line.index("name.upper()")
    u16 = start + 1  # the emoji before the selection is two UTF-16 code units
    async with lsp_session(options(instruct_server.url, tokenizer_dir)) as client:
        edits = record_edits(client)
        open_doc(client, uri, text)
        instruct_server.queue("/generate_stream", answer("```python\nname.title()\n```"))
        args = {"uri": uri, "range": _range_json(1, u16, 1, u16 + len("name.upper()")), "instruction": "title case"}
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="codellama.edit", arguments=[args])
        )
        [change] = edits[-1].edit.document_changes
        [edit] = change.edits
        assert (edit.range.start.character, edit.range.end.character, edit.new_text) == (u16, u16 + 12, "name.title()")
        assert "name.upper()" in instruct_server.seen_on("/generate_stream")[-1].body["inputs"]

        action = await listed(client, uri, 0, 5, "docstring")
        instruct_server.queue("/generate_stream", answer('```python\n"""Greet with a smile.\n\nname: who."""\n```'))
        [change] = (await client.code_action_resolve_async(action)).edit.document_changes
        [edit] = change.edits
        assert edit.new_text == '    """Greet with a smile.\r\n\r\n    name: who."""\r\n'
        assert (edit.range.start.line, edit.range.start.character) == (1, 0)
