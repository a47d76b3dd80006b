"""Document sync is exact: random edit sequences against a reference model, over real LSP.

One server per position encoding (utf-16, utf-8, utf-32) receives random sequences of full and
incremental changes — CRLF, LF and lone CR, tabs, combining marks, characters outside the BMP,
characters that ``str.splitlines`` wrongly treats as line breaks, edits at line ends and at the
document end, columns past a line end (which LSP clamps). Afterwards ``codellama/prompt`` at
random positions must give exactly the prefix and suffix of a reference model, and reject the
positions the reference says do not exist; completion items must apply to the reference text at
the cursor, on character boundaries. The reference below is written from the LSP specification
and shares no code with ``codellama_ls/documents.py``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.rawlsp import RawServer, RpcError

pytestmark = pytest.mark.slow

ENCODINGS = ("utf-16", "utf-8", "utf-32")
# Pieces that break naive implementations: multi-unit characters in every encoding, a combining
# mark, tabs, all three LSP line endings, and characters that are *not* LSP line ends.
PIECES = (
    "a",
    "Z",
    "x = 1",
    " ",
    "\t",
    "é",
    "e\u0301",
    "中",
    "😀",
    "𝕏",
    "\r\n",
    "\n",
    "\r",
    "\u2028",
    "\x85",
    "\x0c",
    "(",
    ")",
    '"',
)
texts = st.lists(st.sampled_from(PIECES), max_size=24).map("".join)


# -- reference model (LSP rules, independent of codellama_ls) -------------------------------
def ref_lines(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of each line's content; lines end at \\r\\n, \\n or \\r only."""
    lines, start, i = [], 0, 0
    while i < len(text):
        ch = text[i]
        if ch in "\r\n":
            lines.append((start, i))
            i += 2 if text[i : i + 2] == "\r\n" else 1
            start = i
        else:
            i += 1
    lines.append((start, len(text)))
    return lines


def width(text: str, encoding: str) -> int:
    """Length in code units of the position encoding."""
    if encoding == "utf-8":
        return len(text.encode("utf-8"))
    if encoding == "utf-16":
        return len(text.encode("utf-16-le")) // 2
    return len(text.encode("utf-32-le")) // 4


def ref_offset(text: str, line: int, col: int, encoding: str, *, clamp: bool) -> int | None:
    """Offset of an LSP position in ``text``; None if it does not exist (past the end, mid-character)."""
    start, end = ref_lines(text)[line]
    count = 0
    for offset in range(start, end + 1):
        if count == col:
            return offset
        if count > col or offset == end:
            break
        count += width(text[offset], encoding)
    if clamp and col >= width(text[start:end], encoding):
        return end  # LSP: a character past the line end means the line end
    return None


def ref_position(text: str, offset: int, encoding: str) -> tuple[int, int]:
    """LSP position of an offset (that is not inside a line ending)."""
    for line, (start, end) in enumerate(ref_lines(text)):
        if start <= offset <= end:
            return line, width(text[start:offset], encoding)
    raise ValueError(f"offset {offset} is inside a line ending")


def normalize(text: str) -> str:
    """The text with every LSP line end as \\n (what the prompt contains)."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\r":
            out.append("\n")
            i += 2 if text[i : i + 2] == "\r\n" else 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def apply_ref(text: str, change: dict, encoding: str) -> str:
    if "range" not in change:
        return change["text"]
    r = change["range"]
    a = ref_offset(text, r["start"]["line"], r["start"]["character"], encoding, clamp=True)
    b = ref_offset(text, r["end"]["line"], r["end"]["character"], encoding, clamp=True)
    assert a is not None and b is not None and a <= b
    return text[:a] + change["text"] + text[b:]


# -- strategies --------------------------------------------------------------------------
@st.composite
def positions(draw: st.DrawFn, text: str, encoding: str, *, past_end: bool = False) -> dict:
    """A position on a character boundary (optionally sometimes past the line end)."""
    lines = ref_lines(text)
    line = draw(st.integers(0, len(lines) - 1))
    start, end = lines[line]
    index = draw(st.integers(start, end))
    col = width(text[start:index], encoding)
    if past_end and index == end and draw(st.booleans()):
        col += draw(st.integers(1, 3))
    return {"line": line, "character": col}


@st.composite
def changes(draw: st.DrawFn, text: str, encoding: str) -> dict:
    if draw(st.integers(0, 9)) == 0:
        return {"text": draw(texts)}
    a = draw(positions(text, encoding, past_end=True))
    b = draw(positions(text, encoding, past_end=True))
    key = lambda p: (p["line"], p["character"])  # noqa: E731
    start, end = sorted((a, b), key=key)
    change: dict = {"range": {"start": start, "end": end}, "text": draw(texts)}
    if draw(st.integers(0, 4)) == 0:
        change["rangeLength"] = draw(st.integers(0, 50))  # deprecated and often wrong: must be ignored
    return change


# -- servers -----------------------------------------------------------------------------
_uris: Iterator[int] = itertools.count()


@pytest.fixture(scope="module", params=ENCODINGS)
def synced(request: pytest.FixtureRequest, tiny_model) -> Iterator[tuple[RawServer, str]]:
    """One server per encoding, shared by the examples (each example opens a fresh document)."""
    encoding = request.param
    # One suggestion for the menu too (it is asked without a trigger kind, i.e. explicitly), so the
    # inline item and the completion item are the same suggestion.
    opts = {"model": str(tiny_model), "maxPromptTokens": 100_000, "maxNewTokens": 4, "suggestions": 1}
    with RawServer(["--log-level", "WARNING"]) as server:
        result = server.initialize(opts, encodings=[encoding])
        assert result["capabilities"]["positionEncoding"] == encoding
        assert server.wait_state({"ready", "failed"})["state"] == "ready"
        yield server, encoding
        assert server.shutdown() == 0


def edit_session(server: RawServer, encoding: str, data: st.DataObject) -> tuple[str, str]:
    """Open a document and apply a random edit sequence; returns (uri, reference text)."""
    uri = f"file:///sync/{next(_uris)}.py"
    text = data.draw(texts, label="initial")
    server.open(uri, text, version=1)
    for version in range(2, 2 + data.draw(st.integers(0, 6), label="notifications")):
        batch = []
        for _ in range(data.draw(st.integers(1, 3))):
            change = data.draw(changes(text, encoding), label="change")
            batch.append(change)
            text = apply_ref(text, change, encoding)
        server.change(uri, version, batch)
    return uri, text


def cursor_probe(data: st.DataObject, text: str, encoding: str) -> tuple[int, int, int | None]:
    """A position, valid or not (mid-character, past the end), with its reference offset."""
    lines = ref_lines(text)
    line = data.draw(st.integers(0, len(lines) - 1), label="line")
    start, end = lines[line]
    col = data.draw(st.integers(0, width(text[start:end], encoding) + 2), label="col")
    return line, col, ref_offset(text, line, col, encoding, clamp=False)


def SETTINGS(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), print_blob=True)


def test_prompt_matches_reference(synced):
    server, encoding = synced

    @SETTINGS(40)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        uri, text = edit_session(server, encoding, data)
        for _ in range(4):
            line, col, offset = cursor_probe(data, text, encoding)
            if offset is None:
                with pytest.raises(RpcError) as err:
                    server.prompt(uri, line, col)
                assert err.value.code == -32602
                continue
            prompt = server.prompt(uri, line, col)
            assert not prompt["truncated"]
            assert prompt["prefix"] == normalize(text[:offset])
            assert prompt["suffix"] == normalize(text[offset:])
        with pytest.raises(RpcError):  # one line past the end never exists
            server.prompt(uri, len(ref_lines(text)), 0)
        server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})

    check()


def test_completion_items_apply_at_the_cursor(synced):
    server, encoding = synced
    applied = []

    @SETTINGS(12)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        uri, text = edit_session(server, encoding, data)
        lines = ref_lines(text)
        pos = data.draw(positions(text, encoding), label="cursor")
        cursor = ref_offset(text, pos["line"], pos["character"], encoding, clamp=False)
        assert cursor is not None
        inline = server.inline(uri, pos["line"], pos["character"])["items"]
        completion = server.call("textDocument/completion", {"textDocument": {"uri": uri}, "position": pos})["items"]
        assert len(inline) == len(completion) <= 1
        if inline:
            item = inline[0]
            rng, new_text = item["range"], item["insertText"]
            assert rng["start"] == pos and rng["end"]["line"] == pos["line"]
            end = ref_offset(text, pos["line"], rng["end"]["character"], encoding, clamp=False)
            assert end is not None, "the range ends inside a character or past the line"
            assert cursor <= end <= lines[pos["line"]][1]
            # The completion item may start earlier (at the word before the cursor, repeated in its
            # text): accepting either item must give the same document.
            edit = completion[0]["textEdit"]
            start_c, end_c = edit["range"]["start"], edit["range"]["end"]
            assert start_c["line"] == end_c["line"] == pos["line"]
            a = ref_offset(text, start_c["line"], start_c["character"], encoding, clamp=False)
            b = ref_offset(text, end_c["line"], end_c["character"], encoding, clamp=False)
            assert a is not None and b is not None and lines[pos["line"]][0] <= a <= cursor <= b
            assert text[:a] + edit["newText"] + text[b:] == text[:cursor] + new_text + text[end:]
            only_crlf = "\r\n" in text and not any(c in text.replace("\r\n", "") for c in "\r\n")
            if only_crlf:
                assert "\n" not in new_text.replace("\r\n", ""), f"LF in a suggestion for a CRLF file: {new_text!r}"
            # Accept it as an editor does, then look at the server's text at the end of the insertion.
            server.change(uri, 100, [{"range": rng, "text": new_text}])
            text = text[:cursor] + new_text + text[end:]
            after = cursor + len(new_text)
            if text[after - 1 : after + 1] == "\r\n":  # the suggestion ended with \r before a \n
                after += 1
            line, col = ref_position(text, after, encoding)
            prompt = server.prompt(uri, line, col)
            assert prompt["prefix"] == normalize(text[:after])
            assert prompt["suffix"] == normalize(text[after:])
            applied.append(new_text)
        server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})

    check()
    assert applied, "the tiny model never produced a suggestion: the property was not exercised"
