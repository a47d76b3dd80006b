"""The server's context service in-process: fed like the LSP handlers feed it, asked like a request.

What a user would notice: the definition of the name at the cursor shows up in the prompt, the
editor's unsaved text wins over the disk, ``contextTokens: 0`` reads nothing, a new
``contextExclude`` takes a file out, and a failing context costs the context, not the suggestion.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from lsprotocol import types

from codellama_ls.config import Settings
from codellama_ls.context.service import ProjectContext, folder_paths, watch_globs
from codellama_ls.documents import path_to_uri
from codellama_ls.notify import Notifier
from codellama_ls.pipeline.completion import Pipeline
from codellama_ls.prompt.tokens import CodeTokenizer
from codellama_ls.session import Session
from tests.context_helpers import FIXTURES
from tests.support.fake_engine import FakeEngine


@pytest.fixture(scope="module")
def tok(tokenizer_dir: Path) -> CodeTokenizer:
    return CodeTokenizer.load(str(tokenizer_dir))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "py"
    shutil.copytree(FIXTURES / "python", root)
    return root


def service_with(tok: CodeTokenizer, shown: list[str] | None = None, **settings: object) -> Pipeline:
    notifier = Notifier(lambda message, kind: shown.append(message) if shown is not None else None)
    service = Pipeline(Session(Settings(debounce_ms=0, **settings), notifier))  # type: ignore[arg-type]
    service.session.host.use(FakeEngine(tok, "color='red')"))
    return service


def open_file(service: Pipeline, path: Path, text: str | None = None) -> str:
    uri = path_to_uri(str(path))
    doc = service.session.documents.open(
        types.TextDocumentItem(
            uri=uri, language_id="python", version=1, text=path.read_text() if text is None else text
        )
    )
    service.session.context.opened(uri, "\n".join(doc.lines), "python")
    return uri


def cursor_after(service: Pipeline, uri: str, marker: str) -> types.Position:
    lines = service.session.documents.get(uri).lines
    row = max(i for i, line in enumerate(lines) if marker in line)
    return types.Position(line=row, character=lines[row].index(marker) + len(marker))


def settled_prompt(service: Pipeline, uri: str, position: types.Position, tok: CodeTokenizer) -> dict:
    """The prompt once the index has parsed what it was asked for (a server gets there by the next keystroke)."""
    _, cursor = service.session.cursor(uri, position)
    for _ in range(5):
        prompt = service.build(cursor, tok)
        if service.session.context.ready:
            return prompt.to_json()
        assert service.session.context.wait_ready(10)
    return prompt.to_json()


def test_the_definition_at_the_cursor_comes_from_another_file(project: Path, tok: CodeTokenizer) -> None:
    service = service_with(tok)
    service.session.context.begin([str(project)], service.session.settings)
    try:
        uri = open_file(service, project / "app" / "render.py")
        prompt = settled_prompt(service, uri, cursor_after(service, uri, "style_=Style("), tok)
        style = [c for c in prompt["context"] if c["uri"].endswith("/app/style.py")]
        assert style and style[0]["reason"] == "definition" and "Style" in style[0]["symbol"]
        assert "# class Style:\n" in prompt["contextText"]
        assert service.session.status()["context"]["enabled"] is True
    finally:
        service.session.shutdown()
    assert service.session.context.index is None  # shutdown stopped the index thread


def test_unsaved_text_of_an_open_document_wins_over_the_disk(project: Path, tok: CodeTokenizer) -> None:
    service = service_with(tok)
    service.session.context.begin([str(project)], service.session.settings)
    try:
        uri = open_file(service, project / "app" / "render.py")
        style_path = project / "app" / "style.py"
        style_uri = open_file(service, style_path)
        edited = style_path.read_text().replace('color: str = "black"', 'colour: str = "navy"')
        service.session.documents.change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=style_uri, version=2),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=edited)],
            ),
            service.session.encoding,
        )
        service.session.context.changed(style_uri)
        assert service.session.context.index is not None
        index_doc = service.session.context.index.document(style_uri)
        assert index_doc is not None and "colour" not in index_doc.text  # a keystroke only marks it ...
        deadline = time.monotonic() + 10
        while True:  # ... the next request hands the text over; its parse follows within doc_refresh_s
            text = settled_prompt(service, uri, cursor_after(service, uri, "style_=Style("), tok)["contextText"]
            if 'colour: str = "navy"' in text or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert '#     colour: str = "navy"' in text and "black" not in text
        assert "black" in style_path.read_text()  # nothing was written
    finally:
        service.session.shutdown()


def test_context_tokens_zero_reads_nothing_and_turning_it_on_indexes(project: Path, tok: CodeTokenizer) -> None:
    service = service_with(tok, context_tokens=0)
    service.session.context.begin([str(project)], service.session.settings)
    try:
        uri = open_file(service, project / "app" / "render.py")
        assert service.session.context.index is None and service.session.status()["context"] == {
            "enabled": False,
            "folders": 1,
        }
        position = cursor_after(service, uri, "style_=Style(")
        assert settled_prompt(service, uri, position, tok)["context"] == []
        service.session.configure({"contextTokens": 256})  # the document opened while it was off is indexed too
        prompt = settled_prompt(service, uri, position, tok)
        assert any(c["uri"].endswith("/app/style.py") for c in prompt["context"])
        assert sum(c["tokens"] for c in prompt["context"]) <= 256
        service.session.configure({"contextTokens": 0})
        assert service.session.context.index is None and settled_prompt(service, uri, position, tok)["context"] == []
    finally:
        service.session.shutdown()


def test_a_new_context_exclude_takes_files_out(project: Path, tok: CodeTokenizer) -> None:
    shown: list[str] = []
    service = service_with(tok, shown)
    service.session.context.begin([str(project)], service.session.settings)
    try:
        uri = open_file(service, project / "app" / "render.py")
        position = cursor_after(service, uri, "style_=Style(")
        assert any(c["uri"].endswith("/style.py") for c in settled_prompt(service, uri, position, tok)["context"])
        service.session.configure({"contextExclude": ["app/sty*.py"]})
        assert not any(c["uri"].endswith("/style.py") for c in settled_prompt(service, uri, position, tok)["context"])
        service.session.configure({"contextExclude": ["ok/**", "bad\\"]})  # a bad glob: reported, the old globs stay
        assert service.session.settings.context_exclude == ("app/sty*.py",)
        assert len(shown) == 1 and "contextExclude" in shown[0] and "bad" in shown[0]
    finally:
        service.session.shutdown()


def test_file_events_outside_the_workspace_are_ignored(project: Path, tmp_path: Path, tok: CodeTokenizer) -> None:
    service = service_with(tok)
    service.session.context.begin([str(project)], service.session.settings)
    try:
        assert service.session.context.wait_ready(10)
        index = service.session.context.index
        assert index is not None
        generation = index.generation
        outside = tmp_path / "elsewhere.py"
        outside.write_text("def f(): pass\n")
        service.session.context.files_changed([(outside.as_uri(), 1), ("untitled:Untitled-1", 1)])
        assert index.ready and index.generation == generation  # no event was queued
        inside = project / "app" / "new.py"
        inside.write_text("def g(): pass\n")
        service.session.context.files_changed([(inside.as_uri(), 1)])
        assert index.wait_ready(10) and index.exists(str(inside))
    finally:
        service.session.shutdown()


async def test_a_failing_context_costs_the_context_not_the_suggestion(
    project: Path, tok: CodeTokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown: list[str] = []
    service = service_with(tok, shown)
    service.session.context.begin([str(project)], service.session.settings)
    try:
        uri = open_file(service, project / "app" / "render.py")

        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("index broke")

        monkeypatch.setattr(ProjectContext, "block", broken)
        engine = service.session.engine
        assert isinstance(engine, FakeEngine)
        position = cursor_after(service, uri, "style_=Style(")
        for _ in range(2):
            answer = await service.suggest(uri, position)
            assert answer is not None and answer.text.startswith("color='red'")
        assert len(shown) == 1 and "context from other files failed (RuntimeError)" in shown[0]
        assert "go on without it" in shown[0]
        assert engine.requests[-1].prompt.context_text == ""
    finally:
        service.session.shutdown()


def test_the_block_is_part_of_the_cache_key(project: Path, tok: CodeTokenizer) -> None:
    service = service_with(tok)
    service.session.context.begin([str(project)], service.session.settings)
    try:
        uri = open_file(service, project / "app" / "render.py")
        _, cursor = service.session.cursor(uri, cursor_after(service, uri, "style_=Style("))
        settled_prompt(service, uri, cursor_after(service, uri, "style_=Style("), tok)
        with_context = service.build(cursor, tok)
        service.session.configure({"contextTokens": 0})
        without = service.build(cursor, tok)
        assert with_context.context_text and not without.context_text
        assert with_context.prefix == without.prefix
        assert service._result_key(with_context) != service._result_key(without)
    finally:
        service.session.shutdown()


def test_folder_uris_and_watched_globs() -> None:
    assert folder_paths(["file:///w/a", "vscode-vfs://github/x/y", "file:///w/a", "file:///w/b%20c"]) == [
        "/w/a",
        "/w/b c",
    ]
    globs = watch_globs()
    assert globs[0].startswith("**/*.{") and ",py," in globs[0] and ",go," in globs[0]
    assert "**/.gitignore" in globs
