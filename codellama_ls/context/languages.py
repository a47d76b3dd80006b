"""Which language a file is in, how it writes a line comment, and which grammar parses it.

One table serves the index (which files are worth indexing), the import resolver (which
grammar to parse with) and the renderer (how to turn a snippet into comments of the edited
file's language). Languages without a grammar still get similar-code snippets from other open
documents of their family.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Lang:
    key: str
    family: str  # snippets are only taken from documents of the same family
    comment: str | None  # line comment marker; None: no context (no line comments)
    extensions: tuple[str, ...] = ()
    parsed: bool = False  # definitions and imports are resolved (a tree-sitter grammar exists)


_LANGS = (
    Lang("python", "python", "#", (".py", ".pyi"), parsed=True),
    Lang("javascript", "js", "//", (".js", ".jsx", ".mjs", ".cjs"), parsed=True),
    Lang("typescript", "js", "//", (".ts", ".mts", ".cts"), parsed=True),
    Lang("typescriptreact", "js", "//", (".tsx",), parsed=True),
    Lang("go", "go", "//", (".go",), parsed=True),
    Lang("rust", "rust", "//", (".rs",), parsed=True),
    Lang("c", "c", "//", (".c", ".h"), parsed=True),
    Lang("cpp", "c", "//", (".cc", ".cpp", ".cxx", ".c++", ".hh", ".hpp", ".hxx", ".h++", ".ipp"), parsed=True),
    Lang("java", "java", "//", (".java",)),
    Lang("kotlin", "kotlin", "//", (".kt", ".kts")),
    Lang("csharp", "csharp", "//", (".cs",)),
    Lang("swift", "swift", "//", (".swift",)),
    Lang("scala", "scala", "//", (".scala",)),
    Lang("php", "php", "//", (".php",)),
    Lang("ruby", "ruby", "#", (".rb",)),
    Lang("shellscript", "shell", "#", (".sh", ".bash", ".zsh")),
    Lang("perl", "perl", "#", (".pl", ".pm")),
    Lang("r", "r", "#", (".r",)),
    Lang("julia", "julia", "#", (".jl",)),
    Lang("lua", "lua", "--", (".lua",)),
    Lang("sql", "sql", "--", (".sql",)),
    Lang("haskell", "haskell", "--", (".hs",)),
    Lang("elixir", "elixir", "#", (".ex", ".exs")),
    Lang("dart", "dart", "//", (".dart",)),
    Lang("zig", "zig", "//", (".zig",)),
)

LANGUAGES: dict[str, Lang] = {lang.key: lang for lang in _LANGS}
_BY_EXTENSION = {ext: lang.key for lang in _LANGS for ext in lang.extensions}
# LSP language ids that differ from our keys.
_ALIASES = {
    "javascriptreact": "javascript",
    "typescriptreact": "typescriptreact",
    "tsx": "typescriptreact",
    "jsx": "javascript",
    "c++": "cpp",
    "objective-c": "c",
    "objective-cpp": "cpp",
    "cuda-cpp": "cpp",
    "sh": "shellscript",
    "bash": "shellscript",
    "zsh": "shellscript",
    "py": "python",
    "golang": "go",
    "rs": "rust",
}
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
