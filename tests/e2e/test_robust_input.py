"""Bad input: raw bytes into a real server. Every request is answered with the error JSON-RPC/LSP
names, bad notifications are ignored, the server keeps running and its documents stay exact.

After each case the module's ``guard`` document is read back with ``codellama/prompt``: a
malformed message must neither kill the server nor touch any document.
"""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codellama_ls.prompt.fim import build_prompt
from codellama_ls.prompt.tokens import CodeTokenizer
from tests.support.rawlsp import RawServer, RpcError

pytestmark = pytest.mark.slow

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
NOT_INITIALIZED = -32002
GUARD = "file:///w/guard.py"
GUARD_TEXT = "def f(x):\r\n    return x\n\n😀 = 1\n"
DOC = "file:///w/doc.py"


@pytest.fixture(scope="module")
def server(tokenizer_dir):
    # Only the tokenizer is needed for codellama/prompt; loading the (absent) weights fails once.
    with RawServer(["--model", str(tokenizer_dir), "--log-level", "WARNING"]) as srv:
        pre = srv.request("codellama/status", {})
        assert pre["error"]["code"] == NOT_INITIALIZED  # requests before initialize: -32002
        srv.initialize({"debounceMs": 0})
        assert srv.wait_state({"failed"})["state"] == "failed"
        srv.open(GUARD, GUARD_TEXT)
        yield srv


def healthy(server: RawServer) -> None:
    """The server answers and the guard document is intact."""
    prompt = server.prompt(GUARD, 1, 4)
    assert prompt["prefix"] == "def f(x):\n    " and prompt["suffix"] == "return x\n\n😀 = 1\n"


def request(server: RawServer, body: dict) -> dict:
    server.send_body(json.dumps(body).encode())
    answer = server.response(body["id"], timeout=30)
    healthy(server)
    return answer


def null_id_error(server: RawServer, body: bytes) -> dict:
    """Send ``body``; the answer (id null) is the next error message the server writes."""
    before = len(server.received)
    server.send_body(body)
    healthy(server)  # the prompt's answer comes after the error: it has been read by now
    errors = [m for m in server.received[before:] if "error" in m and m.get("id") is None]
    assert len(errors) == 1, server.received[before:]
    return errors[0]["error"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"jsonrpc": "2.0", "id": 1, "method": ',  # cut short
        b"{'jsonrpc': '2.0'}",  # not JSON
        b'{"jsonrpc": "2.0", "id": 2, "method": "codellama/status", "params": "\xff\xfe"}',  # not UTF-8
        b'{"jsonrpc": "2.0", "id": 3, "params": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # too deep
        b"",  # empty body
    ],
    ids=["truncated", "single-quotes", "invalid-utf8", "deep-nesting", "empty"],
)
def test_unparsable_body_is_a_parse_error(server, body):
    if not body:  # Content-Length: 0 is no message at all: nothing to answer, nothing breaks
        server.send_body(body)
        healthy(server)
        return
    assert null_id_error(server, body)["code"] == PARSE_ERROR


@pytest.mark.parametrize("body", [b"42", b'"text"', b"null", b"[]", b'[{"jsonrpc": "2.0", "id": 7, "method": "x"}]'])
def test_json_that_is_not_a_message_is_an_invalid_request(server, body):
    assert null_id_error(server, body)["code"] == INVALID_REQUEST


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"id": 10, "method": "codellama/status", "params": {}}, INVALID_REQUEST),  # no "jsonrpc"
        ({"jsonrpc": "1.0", "id": 11, "method": "codellama/status"}, INVALID_REQUEST),
        ({"jsonrpc": "2.0", "id": 12, "method": 5, "params": {}}, INVALID_REQUEST),
        ({"jsonrpc": "2.0", "id": 13, "method": "no/such/method", "params": {}}, METHOD_NOT_FOUND),
        ({"jsonrpc": "2.0", "id": 14, "method": "$/unknown", "params": {}}, METHOD_NOT_FOUND),
    ],
)
def test_bad_envelopes(server, body, code):
    assert request(server, body)["error"]["code"] == code


def _pos(line, character, uri=GUARD):
    return {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}


BAD_PARAMS = [
    _pos("1", 0),  # wrong type
    _pos(1.5, 0),
    _pos(None, 0),
    {"textDocument": {"uri": GUARD}},  # missing position
    {"position": {"line": 0, "character": 0}},  # missing document
    {"textDocument": {"uri": 42}, "position": {"line": 0, "character": 0}},
    _pos(-1, 0),  # negative numbers
    _pos(0, -3),
    _pos(2**40, 0),  # beyond uinteger
    [1, 2],  # params of the wrong shape
    "text",
    None,
    _pos(99, 0),  # past the last line
    _pos(0, 99),  # past the line end
    _pos(3, 1),  # inside the surrogate pair of 😀 (utf-16)
    _pos(0, 0, "file:///w/never-opened.py"),
]
METHODS = ["textDocument/inlineCompletion", "textDocument/completion", "codellama/prompt"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("params", BAD_PARAMS, ids=[json.dumps(p)[:40] for p in BAD_PARAMS])
def test_bad_params_are_invalid_params(server, method, params):
    if method == "textDocument/inlineCompletion" and isinstance(params, dict):
        params = {**params, "context": {"triggerKind": 1}}
    answer = request(server, {"jsonrpc": "2.0", "id": f"{method}-bad", "method": method, "params": params})
    assert answer["error"]["code"] == INVALID_PARAMS, answer


def test_bad_notifications_are_ignored(server):
    server.open(DOC, "a = 1\nb = 2\n")
    bad = [
        {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"textDocument": {"uri": DOC}}},
        {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"contentChanges": "x"}},
        {
            "jsonrpc": "2.0",
            "method": "textDocument/didChange",
            "params": {"textDocument": {"uri": DOC, "version": "2"}, "contentChanges": [{"text": "zzz"}]},
        },
        {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": DOC}}},
        {"jsonrpc": "2.0", "method": "textDocument/didClose", "params": None},
        {"jsonrpc": "2.0", "method": "no/such/notification", "params": {"x": 1}},
        {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": "never-sent"}},
        {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": {"nested": 1}}},
        {"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration", "params": {"settings": [1, {"a": None}]}},
        {"jsonrpc": "2.0", "method": "initialized", "params": "x"},
        {"jsonrpc": "2.0", "id": 99_999, "result": {"unexpected": True}},  # a response nobody asked for
    ]
    for body in bad:
        server.send_body(json.dumps(body).encode())
    healthy(server)
    assert server.prompt(DOC, 1, 0)["prefix"] == "a = 1\n"
    assert server.alive()


def test_version_regressions_and_changes_before_open_are_ignored(server):
    uri = "file:///w/versions.py"
    # A change before didOpen has nothing to apply to; the later didOpen text is what counts.
    server.change(uri, 5, [{"text": "stale text\n"}])
    server.open(uri, "x = 1\n", version=3)
    assert server.prompt(uri, 1, 0)["prefix"] == "x = 1\n"
    server.change(uri, 4, [{"range": _range(0, 4, 0, 5), "text": "2"}])
    assert server.prompt(uri, 1, 0)["prefix"] == "x = 2\n"
    # Older or repeated versions are stale: applying them to newer text would corrupt it.
    server.change(uri, 2, [{"range": _range(0, 0, 0, 1), "text": "OLD"}])
    server.change(uri, 4, [{"range": _range(0, 0, 0, 1), "text": "SAME"}])
    assert server.prompt(uri, 1, 0)["prefix"] == "x = 2\n"
    server.change(uri, 9, [{"range": _range(0, 0, 0, 1), "text": "y"}])
    assert server.prompt(uri, 1, 0)["prefix"] == "y = 2\n"
    # Closed documents are gone: requests for them are InvalidParams, not stale answers.
    server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    with pytest.raises(RpcError) as err:
        server.prompt(uri, 0, 0)
    assert err.value.code == INVALID_PARAMS
    server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})  # closing twice is harmless
    healthy(server)


def _range(sl, sc, el, ec):
    return {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}}


def test_unpaired_surrogates_keep_positions(server):
    # JSON can escape half a surrogate pair; it becomes U+FFFD, one unit wide like the original.
    uri = "file:///w/surrogate.py"
    server.send_body(
        b'{"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": '
        b'{"uri": "' + uri.encode() + b'", "languageId": "python", "version": 1, "text": "a\\ud800b\\nc"}}}'
    )
    prompt = server.prompt(uri, 0, 2)
    assert (prompt["prefix"], prompt["suffix"]) == ("a\ufffd", "b\nc")
    server.send_body(
        b'{"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"textDocument": {"uri": "'
        + uri.encode()
        + b'", "version": 2}, "contentChanges": [{"range": {"start": {"line": 1, "character": 1}, '
        b'"end": {"line": 1, "character": 1}}, "text": "\\udc00!"}]}}'
    )
    assert server.prompt(uri, 1, 3)["prefix"] == "a\ufffdb\nc\ufffd!"


def test_huge_messages(server):
    size = 10 * 1024 * 1024
    # A 10 MB document on one line (a minified bundle) and one of many lines: opened, edited, prompted.
    line = "var a=[1,2,3].map(x=>x*2);" * (size // 26)
    server.open("file:///w/min.js", line, language="javascript")
    server.change("file:///w/min.js", 2, [{"range": _range(0, 4, 0, 5), "text": "b"}])
    half = len(line) // 2
    prompt = server.prompt("file:///w/min.js", 0, half)
    assert prompt["truncated"] and 0 < len(prompt["prefix"]) < 100_000
    assert prompt["prefix"].endswith(line[:half][-100:]) and prompt["suffix"].startswith(line[half:][:100])
    assert server.prompt("file:///w/min.js", 0, 10)["prefix"] == "var b=[1,2"
    many = "x = 1\n" * (size // 6)
    server.open("file:///w/many.py", many)
    end = many.count("\n")
    prompt = server.prompt("file:///w/many.py", end, 0)
    assert prompt["truncated"] and prompt["prefix"].endswith("x = 1\n") and prompt["suffix"] == ""
    # 10 MB of params to an unknown method, and 10 MB of invalid JSON.
    huge = {"jsonrpc": "2.0", "id": "huge", "method": "no/such", "params": {"blob": "z" * size}}
    assert request(server, huge)["error"]["code"] == METHOD_NOT_FOUND
    assert null_id_error(server, b"{" + b"z" * size)["code"] == PARSE_ERROR
    for uri in ("file:///w/min.js", "file:///w/many.py"):
        server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    healthy(server)


def test_unknown_commands_and_bad_arguments(server):
    answer = request(
        server,
        {"jsonrpc": "2.0", "id": "cmd", "method": "workspace/executeCommand", "params": {"command": "rm -rf"}},
    )
    assert answer["error"]["code"] == INVALID_PARAMS
    toggled = request(
        server,
        {
            "jsonrpc": "2.0",
            "id": "toggle",
            "method": "workspace/executeCommand",
            "params": {"command": "codellama.toggle", "arguments": [{"junk": [1, 2]}, 3]},
        },
    )
    assert toggled["result"] is False
    server.call("workspace/executeCommand", {"command": "codellama.toggle"})
    assert server.status()["enabled"] is True


def test_shutdown_then_exit(server):
    """Last in this module: after shutdown requests are InvalidRequest, and exit ends the process."""
    assert server.call("shutdown") is None
    answer = server.request("codellama/status", {})
    assert answer["error"]["code"] == INVALID_REQUEST
    server.notify("exit")
    assert server.wait(30) == 0


@pytest.fixture(scope="module")
def code_tokenizer(tokenizer_dir):
    return CodeTokenizer.load(str(tokenizer_dir))


CODE_PIECES = ["def f(x):", "    ", "return x", "😀", "é", "\n", "\n\n", "a" * 40, " = ", "(", ")"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(CODE_PIECES), max_size=80),
    st.integers(0, 80),
    st.integers(6, 48),
    st.sampled_from(["psm", "spm"]),
)
def test_huge_text_bound_keeps_prompts_exact(code_tokenizer, pieces, cut, budget, fmt):
    """Not tokenizing what cannot fit the budget must not change which lines a prompt keeps."""
    text = "".join(pieces)
    cut = min(cut * 30, len(text))
    unbounded = copy.copy(code_tokenizer)
    unbounded.max_token_chars = 10**9
    ours = build_prompt(code_tokenizer, text[:cut], text[cut:], fmt=fmt, budget=budget)
    line_start, line_end = text.rfind("\n", 0, cut) + 1, (text.find("\n", cut) + 1 or len(text) + 1) - 1
    if line_end - line_start <= budget:  # whole lines are kept or dropped: exactly as without the bound
        reference = build_prompt(unbounded, text[:cut], text[cut:], fmt=fmt, budget=budget)
        assert ours.ids == reference.ids and (ours.prefix, ours.suffix) == (reference.prefix, reference.suffix)
    else:  # a cursor line longer than the budget keeps a part of itself that fits (own policy)
        assert text[:cut].endswith(ours.prefix) and text[cut:].startswith(ours.suffix)
        assert len(ours.ids) <= budget
