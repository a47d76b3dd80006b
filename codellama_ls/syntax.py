"""tree-sitter, for everything that needs the structure of code (context, code actions).

Grammars come from the ``tree-sitter-<language>`` wheels on PyPI and are imported on first use,
so a server that never looks at a Go file never loads Go's grammar. tree-sitter keeps going
through syntax errors, which matters: a document being typed is usually broken. Parsers are not
shared between threads (the context index parses in its own thread), so each thread has its own.
"""

from __future__ import annotations

import threading
from functools import cache

from tree_sitter import Language, Node, Parser, Tree

from codellama_ls import languages

# Grammar names (from the language table); "tsx" is TypeScript with JSX ("typescriptreact" in LSP ids).
GRAMMARS = languages.GRAMMARS

_local = threading.local()


@cache
def language(grammar: str) -> Language | None:
    """The tree-sitter language of ``grammar``, or None when no grammar wheel provides it."""
    try:
        if grammar == "python":
            import tree_sitter_python

            return Language(tree_sitter_python.language())
        if grammar == "javascript":
            import tree_sitter_javascript

            return Language(tree_sitter_javascript.language())
        if grammar in ("typescript", "tsx", "typescriptreact"):
            import tree_sitter_typescript

            ts = tree_sitter_typescript
            return Language(ts.language_typescript() if grammar == "typescript" else ts.language_tsx())
        if grammar == "go":
            import tree_sitter_go

            return Language(tree_sitter_go.language())
        if grammar == "rust":
            import tree_sitter_rust

            return Language(tree_sitter_rust.language())
        if grammar == "c":
            import tree_sitter_c

            return Language(tree_sitter_c.language())
        if grammar == "cpp":
            import tree_sitter_cpp

            return Language(tree_sitter_cpp.language())
    except ImportError:
        return None
    return None


def parse(text: str, grammar: str) -> Tree | None:
    """A syntax tree of ``text`` (node points are UTF-8 byte offsets), or None without a grammar."""
    lang = language(grammar)
    if lang is None:
        return None
    parsers: dict[str, Parser] | None = getattr(_local, "parsers", None)
    if parsers is None:
        parsers = _local.parsers = {}
    parser = parsers.get(grammar)
    if parser is None:
        parser = parsers[grammar] = Parser(lang)
    return parser.parse(text.encode("utf-8", "surrogatepass"))


def node_text(node: Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", "replace")
