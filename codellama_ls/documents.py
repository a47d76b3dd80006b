"""Open documents and LSP positions, exact in every position encoding.

pygls' own workspace splits lines with ``str.splitlines`` (which also breaks on U+2028,
form feeds and other characters LSP does not count as line ends) and clamps bad positions
silently, so the server keeps its own store. Lines are split only on ``\\r\\n``, ``\\n`` and
``\\r``, as the LSP specification says.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from lsprotocol import types

from codellama_ls.lines import EOL

log = logging.getLogger(__name__)

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # a str holds a valid pair as one code point


class PositionError(ValueError):
    """A position does not exist in the document (past a line end, inside a character...)."""


def units(text: str, encoding: str) -> int:
    """Length of ``text`` in the code units of a position encoding."""
    if encoding == types.PositionEncodingKind.Utf32:
        return len(text)
    if encoding == types.PositionEncodingKind.Utf8:
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def column_to_index(line: str, character: int, encoding: str, *, strict: bool) -> int:
    """Convert a client column to a Python index into ``line``.

    ``strict`` (requests) raises on a column past the line end or inside a character;
    otherwise (edits from a client) the column is clamped, as the LSP specification asks.
    """
    if character < 0:
        if strict:
            raise PositionError(f"negative character {character}")
        return 0
    if encoding == types.PositionEncodingKind.Utf32:
        if character > len(line):
            if strict:
                raise PositionError(f"character {character} is past the line end ({len(line)})")
            return len(line)
        return character
    count = 0
    for index, ch in enumerate(line):
        if count == character:
            return index
        count += units(ch, encoding)
        if count > character:
            if strict:
                raise PositionError(f"character {character} falls inside a character")
            return index
    if count == character:
        return len(line)
    if strict:
        raise PositionError(f"character {character} is past the line end ({count})")
    return len(line)


@dataclass
class Cursor:
    """What the prompt needs from a position: LF text before and after it."""

    prefix: str
    suffix: str
    line: int
    index: int  # Python index of the cursor within its line
    line_text: str  # the cursor line without its ending
    eol: str  # the document's line ending, used for text sent back
    language_id: str = ""  # the client's languageId (post-processing adapts to it)
    uri: str = ""  # the document's (context from other files is looked up by it)


class Document:
    """One open text document: lines without their endings, plus each line's ending."""

    def __init__(self, uri: str, text: str, version: int = 0, language_id: str = "") -> None:
        self.uri = uri
        self.version = version
        self.language_id = language_id
        self.lines: list[str] = []
        self.eols: list[str] = []
        self._set_text(text)

    # -- text ----------------------------------------------------------------------------
    def _set_text(self, text: str) -> None:
        self.lines, self.eols = _split(text)

    @property
    def text(self) -> str:
        return "".join(line + eol for line, eol in zip(self.lines, self.eols, strict=False))

    @property
    def lf_text(self) -> str:
        """The text with LF line ends and no final one: what prompts and the context index see."""
        return "\n".join(self.lines)

    @property
    def eol(self) -> str:
        """The dominant line ending; suggestions use it so CRLF files stay CRLF."""
        counts: dict[str, int] = {}
        for eol in self.eols:
            if eol:
                counts[eol] = counts.get(eol, 0) + 1
        return max(counts, key=lambda k: counts[k]) if counts else "\n"

    # -- positions -----------------------------------------------------------------------
    def index_of(self, position: types.Position, encoding: str, *, strict: bool = True) -> tuple[int, int]:
        """(line, python index) of a client position."""
        line = position.line
        if line < 0 or line >= len(self.lines):
            if strict:
                raise PositionError(f"line {line} does not exist (document has {len(self.lines)} lines)")
            if line < 0:
                return 0, 0
            return len(self.lines) - 1, len(self.lines[-1])
        return line, column_to_index(self.lines[line], position.character, encoding, strict=strict)

    def position(self, line: int, index: int, encoding: str) -> types.Position:
        """Client position of (line, python index)."""
        return types.Position(line=line, character=units(self.lines[line][:index], encoding))

    def cursor(self, position: types.Position, encoding: str) -> Cursor:
        line, index = self.index_of(position, encoding, strict=True)
        before = "\n".join(self.lines[:line])
        after = "\n".join(self.lines[line + 1 :])
        text = self.lines[line]
        prefix = (before + "\n" if line else "") + text[:index]
        suffix = text[index:] + ("\n" + after if line + 1 < len(self.lines) else "")
        return Cursor(prefix, suffix, line, index, text, self.eol, self.language_id, self.uri)

    # -- edits ---------------------------------------------------------------------------
    def apply(self, change: types.TextDocumentContentChangeEvent, encoding: str) -> None:
        """Apply one full or incremental change (positions clamped like other servers do)."""
        if isinstance(change, types.TextDocumentContentChangeWholeDocument) or getattr(change, "range", None) is None:
            self._set_text(change.text)
            return
        start = self.index_of(change.range.start, encoding, strict=False)
        end = self.index_of(change.range.end, encoding, strict=False)
        if end < start:
            start, end = end, start
        (sl, si), (el, ei) = start, end
        # Re-split the touched lines together with one neighbour on each side, so an edit
        # that joins "\r" and "\n" (or splits them) gets the line structure the client sees.
        a, b = max(sl - 1, 0), min(el + 1, len(self.lines) - 1)
        region = "".join(self.lines[i] + self.eols[i] for i in range(a, b + 1))
        lead = sum(len(self.lines[i]) + len(self.eols[i]) for i in range(a, sl))
        s_off = lead + si
        e_off = lead + sum(len(self.lines[i]) + len(self.eols[i]) for i in range(sl, el)) + ei
        new_lines, new_eols = _split(region[:s_off] + change.text + region[e_off:])
        if self.eols[b]:  # the region ended with a line ending: drop the empty piece after it
            new_lines.pop()
            new_eols.pop()
        self.lines[a : b + 1] = new_lines
        self.eols[a : b + 1] = new_eols


def _split(text: str) -> tuple[list[str], list[str]]:
    # JSON can carry unpaired UTF-16 surrogates ("\\ud800"); the tokenizer rejects them. U+FFFD
    # has the same width in every position encoding, so positions stay exact.
    text = _LONE_SURROGATE.sub("\ufffd", text)
    lines: list[str] = []
    eols: list[str] = []
    pos = 0
    for match in EOL.finditer(text):
        lines.append(text[pos : match.start()])
        eols.append(match.group())
        pos = match.end()
    lines.append(text[pos:])
    eols.append("")
    return lines, eols


class DocumentStore:
    """Open documents by URI. Unknown URIs raise KeyError, mapped to InvalidParams by the server."""

    def __init__(self) -> None:
        self._docs: dict[str, Document] = {}

    def open(self, item: types.TextDocumentItem) -> Document:
        doc = Document(item.uri, item.text, item.version, item.language_id)
        self._docs[item.uri] = doc
        return doc

    def change(self, params: types.DidChangeTextDocumentParams, encoding: str) -> Document | None:
        doc = self._docs.get(params.text_document.uri)
        if doc is None:
            return None  # a change before didOpen: nothing to apply it to
        version = params.text_document.version
        if version <= doc.version:
            # Versions increase with every change (LSP); an older one is a stale or replayed
            # change, and applying its ranges to newer text would corrupt the document.
            log.warning("ignored change to %s: version %d is not after %d", doc.uri, version, doc.version)
            return None
        for change in params.content_changes:
            doc.apply(change, encoding)
        doc.version = params.text_document.version
        return doc

    def close(self, uri: str) -> None:
        self._docs.pop(uri, None)

    def get(self, uri: str) -> Document:
        try:
            return self._docs[uri]
        except KeyError:
            raise KeyError(f"document {uri} is not open") from None

    def __contains__(self, uri: object) -> bool:
        return uri in self._docs

    def __iter__(self) -> Iterator[Document]:
        return iter(self._docs.values())

    def __len__(self) -> int:
        return len(self._docs)


# -- names: the one place a URI becomes a path and back --------------------------------------
def uri_to_path(uri: str) -> str | None:
    """The absolute path of a ``file:`` URI, else None (``untitled:`` and other schemes)."""
    parts = urlsplit(uri)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        return None
    path = unquote(parts.path)
    if os.name == "nt" and len(path) > 2 and path[0] == "/" and path[2] == ":":
        path = path[1:]
    return os.path.normpath(path)


def path_to_uri(path: str) -> str:
    """The ``file:`` URI of an absolute path."""
    return "file://" + quote(path.replace(os.sep, "/"), safe="/:@!$&'()*+,;=-._~")
