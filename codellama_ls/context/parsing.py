"""tree-sitter for context: grammars from the ``tree-sitter-<lang>`` wheels, loaded on first use,
and a parser per thread. tree-sitter parses broken code too, so a document being typed still
yields its imports. Trees are not kept (see :mod:`.analysis`)."""

from __future__ import annotations

import threading

from tree_sitter import Language, Node, Parser, Tree

from codellama_ls.context.languages import HEADER_EXTENSIONS


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
