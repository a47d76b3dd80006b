"""Parse a file once with tree-sitter and keep only what context needs: its imports and symbols.

Trees are not kept (they cost far more memory than the text); an :class:`Analysis` holds the
file's lines, its import bindings (:mod:`.imports`) and its top-level definitions
(:mod:`.definitions`). Grammars come from the ``tree-sitter-<lang>`` wheels and load on first
use. tree-sitter parses broken code too, so a document being typed still yields its imports.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tree_sitter import Language, Node, Parser, Tree

from codellama_ls.context.languages import HEADER_EXTENSIONS

if TYPE_CHECKING:
    from codellama_ls.context.definitions import Definition
    from codellama_ls.context.imports import Binding
    from codellama_ls.context.similar import Window


def _grammar(lang: str) -> object:
    if lang == "python":
        import tree_sitter_python

        return tree_sitter_python.language()
    if lang == "javascript":
        import tree_sitter_javascript

        return tree_sitter_javascript.language()
    if lang in ("typescript", "typescriptreact"):
        import tree_sitter_typescript

        return (
            tree_sitter_typescript.language_tsx()
            if lang == "typescriptreact"
            else tree_sitter_typescript.language_typescript()
        )
    if lang == "go":
        import tree_sitter_go

        return tree_sitter_go.language()
    if lang == "rust":
        import tree_sitter_rust

        return tree_sitter_rust.language()
    if lang == "c":
        import tree_sitter_c

        return tree_sitter_c.language()
    if lang == "cpp":
        import tree_sitter_cpp

        return tree_sitter_cpp.language()
    raise KeyError(lang)


_languages: dict[str, Language] = {}
_local = threading.local()  # a Parser per thread: parsers are not shared between threads


def grammar_for(lang: str, path: str | None = None) -> str:
    """The grammar that parses a file: headers with C++'s (it parses C headers too)."""
    if lang == "c" and path is not None and path.lower().endswith(HEADER_EXTENSIONS):
        return "cpp"
    return lang


def parse(lang: str, text: str, path: str | None = None) -> Tree | None:
    """A syntax tree of ``text``, or None when no grammar parses ``lang``."""
    name = grammar_for(lang, path)
    language = _languages.get(name)
    if language is None:
        try:
            language = _languages[name] = Language(_grammar(name))
        except (KeyError, ImportError):
            return None
    parsers: dict[str, Parser] = getattr(_local, "parsers", None) or {}
    _local.parsers = parsers
    parser = parsers.get(name)
    if parser is None:
        parser = parsers[name] = Parser(language)
    return parser.parse(text.encode("utf-8", "surrogatepass"))


def node_text(node: Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", "replace")


@dataclass
class Analysis:
    """What context needs from one version of one file."""

    key: str  # the file's path (or the URI of a document that has none)
    language: str
    version: int
    lines: list[str]
    bindings: list[Binding] = field(default_factory=list)
    symbols: dict[str, Definition] = field(default_factory=dict)
    package: str | None = None  # Go: the package clause
    windows: list[Window] | None = None  # open documents: identifier windows for similar code

    @property
    def size(self) -> int:
        return sum(len(line) + 1 for line in self.lines)


Extractor = Callable[[str, Node], "tuple[list[Binding], dict[str, Definition], str | None]"]


def analyse(key: str, lang: str, text: str, version: int, path: str | None = None) -> Analysis:
    """Parse ``text`` and extract its bindings and definitions (no grammar: just the lines)."""
    from codellama_ls.context.definitions import extract_definitions
    from codellama_ls.context.imports import extract_bindings

    lines = text.split("\n")
    tree = parse(lang, text, path)
    if tree is None:
        return Analysis(key, lang, version, lines)
    grammar = grammar_for(lang, path)
    root = tree.root_node
    bindings, package = extract_bindings(grammar, root)
    symbols = extract_definitions(grammar, root)
    return Analysis(key, lang, version, lines, bindings, symbols, package)
