"""Which grammar parses a file of the index (C headers with C++'s), through :mod:`codellama_ls.syntax`.

Trees are not kept (see :mod:`.analysis`)."""

from __future__ import annotations

from tree_sitter import Tree

from codellama_ls import syntax
from codellama_ls.context.languages import HEADER_EXTENSIONS


def grammar_for(lang: str, path: str | None = None) -> str:
    """The grammar that parses a file: headers with C++'s (it parses C headers too)."""
    if lang == "c" and path is not None and path.lower().endswith(HEADER_EXTENSIONS):
        return "cpp"
    return lang


def parse(lang: str, text: str, path: str | None = None) -> Tree | None:
    """A syntax tree of ``text``, or None when no grammar parses ``lang``."""
    return syntax.parse(text, grammar_for(lang, path))
