"""One file's analysis, from one parse: its lines, import bindings (:mod:`.imports`) and top-level
definitions (:mod:`.definitions`). Trees are not kept: they cost far more memory than the text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tree_sitter import Node

from codellama_ls.context.definitions import Outline, extract_definitions
from codellama_ls.context.imports import Binding, extract_bindings
from codellama_ls.context.parsing import grammar_for, parse

if TYPE_CHECKING:
    from codellama_ls.context.similar import Window


@dataclass
class Analysis:
    """What context needs from one version of one file."""

    key: str  # the file's path (or the URI of a document that has none)
    language: str
    version: int
    lines: list[str]
    bindings: list[Binding] = field(default_factory=list)
    symbols: dict[str, Outline] = field(default_factory=dict)
    package: str | None = None  # Go: the package clause
    windows: list[Window] | None = None  # open documents: identifier windows for similar code

    @property
    def size(self) -> int:
        return sum(len(line) + 1 for line in self.lines)


Extractor = Callable[[str, Node], "tuple[list[Binding], dict[str, Outline], str | None]"]


def analyse(key: str, lang: str, text: str, version: int, path: str | None = None) -> Analysis:
    """Parse ``text`` and extract its bindings and definitions (no grammar: just the lines)."""
    lines = text.split("\n")
    tree = parse(lang, text, path)
    if tree is None:
        return Analysis(key, lang, version, lines)
    grammar = grammar_for(lang, path)
    root = tree.root_node
    bindings, package = extract_bindings(grammar, root)
    symbols = extract_definitions(grammar, root)
    return Analysis(key, lang, version, lines, bindings, symbols, package)
