"""Shared helpers of the context tests: an index over a folder, a cursor at a marker."""

from __future__ import annotations

from pathlib import Path

from codellama_ls.context.index import WorkspaceIndex
from codellama_ls.context.provider import ContextProvider, Found
from codellama_ls.documents import path_to_uri

FIXTURES = Path(__file__).parent / "fixtures" / "context"

LANGUAGE_IDS = {
    ".py": "python",
    ".ts": "typescript",
    ".js": "javascript",
    ".go": "go",
    ".rs": "rust",
    ".c": "c",
    ".h": "c",
    ".cpp": "cpp",
    ".hpp": "cpp",
}


def indexed(*folders: Path, exclude: tuple[str, ...] = ()) -> WorkspaceIndex:
    index = WorkspaceIndex([str(f) for f in folders], exclude)
    index.start()
    assert index.wait_ready(30)
    return index


def split_at(text: str, marker: str, occurrence: int = 1) -> tuple[str, str]:
    """Prefix and suffix with the cursor right after the ``occurrence``-th ``marker``."""
    pos = -1
    for _ in range(occurrence):
        pos = text.index(marker, pos + 1)
    end = pos + len(marker)
    return text[:end], text[end:]


def open_doc(index: WorkspaceIndex, path: Path, text: str | None = None) -> str:
    uri = path_to_uri(str(path))
    index.open(uri, path.read_text() if text is None else text, LANGUAGE_IDS[path.suffix])
    assert index.wait_ready(30)
    return uri


def definitions_at(root: Path, file: str, marker: str, occurrence: int = 1) -> list[tuple[str, str, str]]:
    """(file relative to ``root``, symbol at the cursor, the definition's line) found at a marker."""
    index = indexed(root)
    try:
        path = root / file
        text = path.read_text()
        open_doc(index, path, text)
        prefix, suffix = split_at(text, marker, occurrence)
        provider = ContextProvider(index)
        for _ in range(4):  # files seen for the first time are parsed in the background
            found, pending = provider.definitions(str(path), str(path), LANGUAGE_IDS[path.suffix], prefix, suffix)
            if not pending:
                break
            index.wait_ready(10)
        return [_describe(root, f) for f in found]
    finally:
        index.stop()


def _describe(root: Path, found: Found) -> tuple[str, str, str]:
    line = found.analysis.lines[found.definition.line].strip()
    return str(Path(found.key).relative_to(root)), found.symbol, line
