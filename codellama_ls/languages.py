"""Every fact the server keeps about a programming language, in one table.

Context (which files to index, how to comment a snippet, which grammar resolves imports),
post-processing (line comments, the default indentation), code actions (grammar, fence tags,
display name) and the tree-sitter loader all read ``LANGUAGES``; their own lookups are views
of it, checked against it by ``tests/test_languages.py``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    """One language, keyed by its LSP ``languageId``."""

    id: str
    name: str  # display name, in prompts
    comments: tuple[str, ...]  # line comment markers, the usual one first; () when it has none
    extensions: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # other language ids editors send for it
    grammar: str | None = None  # tree-sitter grammar (``syntax.language``)
    family: str | None = None  # context: snippets only come from its family; None: not indexed
    indent: str | None = None  # one level when the document has none yet; None: DEFAULT_INDENT
    fences: tuple[str, ...] = ()  # Markdown fence tags a model writes for it
    actions: bool = False  # code actions (the definition finder knows its grammar)

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)


DEFAULT_INDENT = "    "
_JS = ("//",)

LANGUAGES: tuple[Language, ...] = (
    Language("python", "Python", ("#",), (".py", ".pyi"), ("py",), "python", "python",
             fences=("python", "py", "python3", "py3"), actions=True),
    Language("javascript", "JavaScript", _JS, (".js", ".jsx", ".mjs", ".cjs"), ("javascriptreact", "jsx"),
             "javascript", "js", "  ", ("javascript", "js", "jsx", "node", "mjs"), actions=True),
    Language("typescript", "TypeScript", _JS, (".ts", ".mts", ".cts"), (), "typescript", "js", "  ",
             ("typescript", "ts", "tsx"), actions=True),
    Language("typescriptreact", "TypeScript", _JS, (".tsx",), ("tsx",), "tsx", "js", "  ",
             ("tsx", "typescript", "ts", "jsx"), actions=True),
    Language("go", "Go", ("//",), (".go",), ("golang",), "go", "go", "\t", ("go", "golang"), actions=True),
    Language("rust", "Rust", ("//",), (".rs",), ("rs",), "rust", "rust", fences=("rust", "rs"), actions=True),
    Language("c", "C", ("//",), (".c", ".h"), ("objective-c",), "c", "c", fences=("c", "h")),
    Language("cpp", "C++", ("//",), (".cc", ".cpp", ".cxx", ".c++", ".hh", ".hpp", ".hxx", ".h++", ".ipp"),
             ("c++", "objective-cpp", "cuda-cpp"), "cpp", "c", fences=("cpp", "c++", "cc", "cxx")),
    Language("java", "Java", ("//",), (".java",), family="java"),
    Language("kotlin", "Kotlin", ("//",), (".kt", ".kts"), family="kotlin"),
    Language("csharp", "C#", ("//",), (".cs",), family="csharp"),
    Language("swift", "Swift", ("//",), (".swift",), family="swift"),
    Language("scala", "Scala", ("//",), (".scala",), family="scala"),
    Language("php", "PHP", ("//", "#"), (".php",), family="php"),
    Language("ruby", "Ruby", ("#",), (".rb",), family="ruby"),
    Language("shellscript", "Shell", ("#",), (".sh", ".bash", ".zsh"), ("sh", "bash", "zsh"), family="shell"),
    Language("perl", "Perl", ("#",), (".pl", ".pm"), family="perl"),
    Language("r", "R", ("#",), (".r",), family="r"),
    Language("julia", "Julia", ("#",), (".jl",), family="julia"),
    Language("lua", "Lua", ("--",), (".lua",), family="lua"),
    Language("sql", "SQL", ("--",), (".sql",), family="sql"),
    Language("haskell", "Haskell", ("--",), (".hs",), family="haskell"),
    Language("elixir", "Elixir", ("#",), (".ex", ".exs"), family="elixir"),
    Language("dart", "Dart", ("//",), (".dart",), family="dart"),
    Language("zig", "Zig", ("//",), (".zig",), family="zig"),
    # Languages only post-processing looks at (no context from other files).
    Language("fish", "fish", ("#",)),
    Language("yaml", "YAML", ("#",), indent="  "),
    Language("toml", "TOML", ("#",)),
    Language("makefile", "Makefile", ("#",), indent="\t"),
    Language("dockerfile", "Dockerfile", ("#",)),
    Language("powershell", "PowerShell", ("#",)),
    Language("nim", "Nim", ("#",)),
    Language("coffeescript", "CoffeeScript", ("#",)),
    Language("cmake", "CMake", ("#",)),
    Language("tcl", "Tcl", ("#",)),
    Language("gdscript", "GDScript", ("#",)),
    Language("nix", "Nix", ("#",)),
    Language("groovy", "Groovy", ("//",)),
    Language("jsonc", "JSON with comments", ("//",)),
    Language("proto", "Protocol Buffers", ("//",)),
    Language("solidity", "Solidity", ("//",)),
    # No line comments: a `#` is a Markdown heading or a CSS id.
    Language("markdown", "Markdown", ()),
    Language("mdx", "MDX", ()),
    Language("plaintext", "plain text", ()),
    Language("text", "text", ()),
    Language("html", "HTML", ()),
    Language("xml", "XML", ()),
    Language("css", "CSS", ()),
    Language("json", "JSON", (), indent="  "),
    Language("csv", "CSV", ()),
    Language("restructuredtext", "reStructuredText", ()),
)  # fmt: skip

BY_ID: dict[str, Language] = {language_id: lang for lang in LANGUAGES for language_id in lang.ids}
GRAMMARS: tuple[str, ...] = tuple(dict.fromkeys(lang.grammar for lang in LANGUAGES if lang.grammar))


def language(language_id: str | None) -> Language | None:
    """The language of an LSP ``languageId`` (any case), or None for one the table lacks."""
    return BY_ID.get((language_id or "").lower())
