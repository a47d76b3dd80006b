"""Helpers for code-action tests over LSP: canned Instruct answers, the server options for the stand-in
TGI server, and an editor's side of ``workspace/applyEdit`` and ``textDocument/codeAction``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient

from codellama_ls.actions import TextEdit, apply_edits
from tests.support.fake_remote import Stream, tokens

INSTRUCT_ID = "codellama/CodeLlama-7b-Instruct-hf"


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
