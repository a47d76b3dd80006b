"""Which language a file is in, how it writes a line comment, and which grammar parses it.

A view of ``codellama_ls/languages.py`` for context; it serves the index (which files are worth
indexing), the import resolver (which grammar to parse with) and the renderer (how to turn a
snippet into comments of the edited file's language). Languages without a grammar still get
similar-code snippets from other open documents of their family.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from codellama_ls import languages as table


@dataclass(frozen=True)
class Lang:
    key: str
    family: str  # snippets are only taken from documents of the same family
    comment: str | None  # line comment marker; None: no context (no line comments)
    extensions: tuple[str, ...] = ()
    parsed: bool = False  # definitions and imports are resolved (a tree-sitter grammar exists)


# The table's languages that get context (those with a family), as the index sees them.
_LANGS = tuple(
    Lang(lang.id, lang.family, lang.comments[0] if lang.comments else None, lang.extensions, lang.grammar is not None)
    for lang in table.LANGUAGES
    if lang.family is not None
)

LANGUAGES: dict[str, Lang] = {lang.key: lang for lang in _LANGS}
_BY_EXTENSION = {ext: lang.key for lang in _LANGS for ext in lang.extensions}
# LSP language ids that differ from our keys.
_ALIASES = {alias: lang.key for lang in _LANGS for alias in table.BY_ID[lang.key].aliases}
# A ``.h`` file is parsed with the C++ grammar when the project is C++: it parses C as well.
HEADER_EXTENSIONS = (".h", ".hh", ".hpp", ".hxx", ".h++")


def language_of_path(path: str) -> str | None:
    """The language key of a file name, or None for files the index does not keep."""
    return _BY_EXTENSION.get(os.path.splitext(path)[1].lower())


def language_of_id(language_id: str, path: str | None = None) -> str | None:
    """The language key for an LSP ``languageId`` (falling back on the file name)."""
    key = _ALIASES.get(language_id.lower(), language_id.lower())
    if key in LANGUAGES:
        return key
    return language_of_path(path) if path else None


def comment_prefix(key: str | None) -> str | None:
    lang = LANGUAGES.get(key or "")
    return lang.comment if lang else None


def family(key: str | None) -> str | None:
    lang = LANGUAGES.get(key or "")
    return lang.family if lang else None


def is_parsed(key: str | None) -> bool:
    lang = LANGUAGES.get(key or "")
    return bool(lang and lang.parsed)


INDEXED_EXTENSIONS = frozenset(_BY_EXTENSION)
