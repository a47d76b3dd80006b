"""Documents parsed with tree-sitter, and the code an action is about.

tree-sitter (not ``ast``, not regular expressions) because it parses every language the same way
and keeps going through syntax errors: a document being edited is often broken, and a Fix action
exists precisely for broken code. Node points are UTF-8 byte columns; ``Source`` converts them to
Python string indices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

import tree_sitter

from codellama_ls import definitions as defs
from codellama_ls import languages as table
from codellama_ls import syntax
from codellama_ls.actions.text import detect_unit
from codellama_ls.definitions import Definition
from codellama_ls.lines import detect_eol, indent_of, split_lines
from codellama_ls.syntax import node_text

# Language keys: the tree-sitter grammar of each language of the table that has code actions.
_ACTIONS = tuple(lang for lang in table.LANGUAGES if lang.actions and lang.grammar)
LANGUAGES = tuple(lang.grammar for lang in _ACTIONS if lang.grammar)
JS_FAMILY = ("javascript", "typescript", "tsx")

_LANGUAGE_IDS = {language_id: lang.grammar for lang in _ACTIONS if lang.grammar for language_id in lang.ids}
_EXTENSIONS = {ext: lang.grammar for lang in _ACTIONS if lang.grammar for ext in lang.extensions}
# Fence tags a model may use for each language (a JS/TS target accepts either family member).
FENCE_TAGS = {lang.grammar: lang.fences for lang in _ACTIONS if lang.grammar}
DISPLAY_NAMES = {lang.grammar: lang.name for lang in _ACTIONS if lang.grammar}
_DEFAULT_UNIT = {lang.grammar: lang.indent for lang in _ACTIONS if lang.grammar and lang.indent}


def language_key(language_id: str | None, path: str | Path | None = None) -> str | None:
    """Our language key from an LSP ``languageId`` (or, failing that, the file extension)."""
    if language_id and language_id in _LANGUAGE_IDS:
        return _LANGUAGE_IDS[language_id]
    if path is not None:
        return _EXTENSIONS.get(Path(path).suffix.lower())
    return None


def parse(code: str, lang: str) -> tree_sitter.Tree:
    tree = syntax.parse(code, lang)
    if tree is None:
        raise ValueError(f"no grammar for {lang!r}")
    return tree


def parses_cleanly(code: str, lang: str) -> bool:
    return not parse(code, lang).root_node.has_error


@dataclass
class Source:
    """A document as actions see it: LF lines, its own line ending and indentation unit, its tree."""

    lines: list[str]
    lang: str
    eol: str = "\n"
    path: Path | None = None
    unit: str = "    "
    tree: tree_sitter.Tree = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.tree = parse(self.text, self.lang)

    @classmethod
    def from_text(cls, text: str, language: str, path: str | Path | None = None) -> Source:
        """``text`` as the editor has it (any line endings); ``language`` a key or an LSP ``languageId``."""
        lang = language if language in LANGUAGES else language_key(language, path)
        if lang is None:
            raise ValueError(f"actions do not support language {language!r}")
        lines = split_lines(text)
        unit = detect_unit(lines, _DEFAULT_UNIT.get(lang, "    "))
        return cls(lines, lang, detect_eol(text), Path(path) if path is not None else None, unit)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def root(self) -> tree_sitter.Node:
        return self.tree.root_node

    def char_col(self, row: int, byte_col: int) -> int:
        if row >= len(self.lines):
            return 0
        return len(self.lines[row].encode("utf-8", "surrogatepass")[:byte_col].decode("utf-8", "replace"))

    def byte_col(self, row: int, char: int) -> int:
        if row >= len(self.lines):
            return 0
        return len(self.lines[row][:char].encode("utf-8", "surrogatepass"))

    def point(self, row: int, char: int) -> tuple[int, int]:
        return (row, self.byte_col(row, char))

    def last_row(self, node: tree_sitter.Node) -> int:
        """The last line a node is on (a node that ends at a line start ends on the line before)."""
        return defs.last_row(node)

    def line_range(self, first: int, end: int) -> str:
        return "\n".join(self.lines[first:end])


# -- definitions ----------------------------------------------------------------------------------
# The definitions are those of the one model, ``defs`` (``codellama_ls.definitions``). An action can be
# about a function, method or class, a Go type, or any Rust item; not a variable, a Python type alias or
# a TypeScript interface, nor a TypeScript signature without a body (an overload, ``declare function``),
# nor a JavaScript declaration of several names.
_ACTIONABLE: dict[str, frozenset[str]] = {
    "python": frozenset({defs.FUNCTION, defs.METHOD, defs.CLASS}),
    "js": frozenset({defs.FUNCTION, defs.METHOD, defs.CLASS}),
    "go": frozenset({defs.FUNCTION, defs.METHOD, defs.TYPE}),
    "rust": defs.ALL_KINDS,
}
_FUNCTION_KINDS = ("function", "method")
# Nodes that belong to the definition after them.
_LEADING = defs.COMMENTS | defs.ATTRIBUTES


@dataclass(frozen=True)
class Target:
    """The code an action is about.

    Lines are 0-based; ``end_line`` is inclusive. ``outer_line`` is the first line of what belongs to
    the definition above it (decorators, ``export``, Rust attributes); ``doc`` the line range
    ``[first, end)`` of its current doc comment (above it) or Python docstring (inside it).
    """

    kind: str  # function, method, class, item (Rust/Go types...), statement, lines
    name: str
    start_line: int
    end_line: int
    outer_line: int
    indent: str
    doc: tuple[int, int] | None = None
    node: tree_sitter.Node | None = field(default=None, compare=False, repr=False)

    @property
    def first_line(self) -> int:
        """The first line of the whole definition, doc comment included."""
        return min(self.outer_line, self.doc[0]) if self.doc and self.doc[0] < self.start_line else self.outer_line

    @property
    def is_function(self) -> bool:
        return self.kind in _FUNCTION_KINDS


def _definition(node: tree_sitter.Node, lang: str) -> Definition | None:
    """The definition ``node`` makes, if an action can be about it."""
    return _actionable(defs.declared(node, lang), lang)


def _actionable(found: list[Definition], lang: str) -> Definition | None:
    """Of the definitions one node makes, the one an action can be about (the first of a Go group), or None."""
    fam = defs.family(lang) or ""
    if not found or found[0].kind not in _ACTIONABLE.get(fam, ()):
        return None
    if fam == "js" and (len(found) > 1 or found[0].body is None):
        return None
    return found[0]


def definition_node(node: tree_sitter.Node, lang: str) -> bool:
    return _definition(node, lang) is not None


def definition_name(node: tree_sitter.Node, lang: str) -> str:
    definition = _definition(node, lang)
    return definition.name if definition is not None else node_text(node.child_by_field_name("name"))


def _definition_kind(definition: Definition, lang: str) -> str:
    """function, method, class (Python and JavaScript), or item (Go and Rust types, Rust items)."""
    if definition.kind in _FUNCTION_KINDS:
        return definition.kind
    return "class" if definition.kind == defs.CLASS and lang not in ("go", "rust") else "item"


def outer_node(node: tree_sitter.Node, lang: str) -> tree_sitter.Node:
    """The node that carries a definition's decorators or ``export`` (itself when none)."""
    return defs.wrapped(node)


def _leading_run(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    """Comments, decorators and attributes right above ``node`` (no blank line between), top first."""
    run: list[tree_sitter.Node] = []
    current = node
    sibling = node.prev_sibling
    while sibling is not None and sibling.type in _LEADING:
        gap = current.start_point[0] - sibling.end_point[0]
        ends_at_line_start = sibling.end_point[1] == 0
        if gap > 1 or (gap == 1 and ends_at_line_start):
            break  # a blank line: not attached
        if sibling.start_point[0] == current.start_point[0] and sibling.type != "decorator":
            break  # a trailing comment of the previous line's code
        run.insert(0, sibling)
        current = sibling
        sibling = sibling.prev_sibling
    return run


def _is_doc_comment(node: tree_sitter.Node, lang: str) -> bool:
    text = node_text(node)
    if lang in JS_FAMILY:
        return node.type == "comment" and text.startswith("/**") and not text.startswith("/**/")
    if lang == "go":
        return node.type == "comment" and text.startswith("//")
    if lang == "rust":
        return node.type == "line_comment" and text.startswith("///") and not text.startswith("////")
    return False


def make_target(src: Source, node: tree_sitter.Node) -> Target:
    """Describe a definition node: its lines, decorators/attributes, and its current doc."""
    lang = src.lang
    outer = outer_node(node, lang)
    run = _leading_run(outer)
    start, end = node.start_point[0], src.last_row(node)
    outer_line = outer.start_point[0]
    doc: tuple[int, int] | None = None
    if lang == "python":
        string = defs.docstring(node)
        if string is not None:
            doc = (string.start_point[0], src.last_row(string) + 1)
    else:
        # decorators and attributes belong to the definition; the doc comment goes above them
        attrs = [n for n in run if n.type in ("decorator", "attribute_item")]
        if attrs:
            outer_line = min(outer_line, attrs[0].start_point[0])
        docs = [n for n in run if _is_doc_comment(n, lang)]
        if lang in JS_FAMILY and docs:
            docs = docs[-1:]  # only the JSDoc block nearest the code
        elif lang == "go" and docs:
            # Go: the doc comment is the run of // lines right above the declaration
            docs = [n for n in run if n.start_point[0] >= docs[0].start_point[0]]
        if docs:
            doc = (docs[0].start_point[0], src.last_row(docs[-1]) + 1)
            if lang == "rust":
                outer_line = min(outer_line, doc[0])
    definition = _definition(node, lang)
    return Target(
        kind=_definition_kind(definition, lang) if definition is not None else "item",
        name=definition_name(node, lang),
        start_line=start,
        end_line=end,
        outer_line=outer_line,
        indent=indent_of(src.lines[outer.start_point[0]]),
        doc=doc,
        node=node,
    )


def _anchor(src: Source, line: int, char: int) -> tuple[int, int]:
    """Move a cursor in a line's indentation or past its code onto the code, so the tree sees it."""
    if line >= len(src.lines):
        return (max(len(src.lines) - 1, 0), 0)
    text = src.lines[line]
    code = text.rstrip()
    if not code:
        return (line, char)
    lead = len(indent_of(text))
    return (line, min(max(char, lead), len(code) - 1))


def _ancestors(node: tree_sitter.Node | None) -> Iterator[tree_sitter.Node]:
    while node is not None:
        yield node
        node = node.parent


def definition_at(src: Source, line: int, char: int, accept: Callable[[Target], bool] | None = None) -> Target | None:
    """The innermost definition at a cursor (on its doc comment, decorators or code), or None.

    ``accept`` skips definitions that do not suit an action (a unit test wants a function).
    """
    row, col = _anchor(src, line, char)
    node = src.root.named_descendant_for_point_range(src.point(row, col), src.point(row, col))
    if node is None:
        return None
    # on a comment, decorator or attribute above a definition: that definition
    for up in _ancestors(node):
        if up.type in _LEADING:
            after = up.next_named_sibling
            while after is not None and after.type in _LEADING:
                after = after.next_named_sibling
            if after is not None:
                inner = _unwrap(after, src.lang)
                if inner is not None:
                    target = make_target(src, inner)
                    if target.first_line <= row and (accept is None or accept(target)):
                        return target
            break
    for up in _ancestors(node):
        inner = _unwrap(up, src.lang)
        if inner is not None:
            target = make_target(src, inner)
            if accept is None or accept(target):
                return target
    return None


def _unwrap(node: tree_sitter.Node, lang: str) -> tree_sitter.Node | None:
    """The definition inside an ``export``/decorated wrapper (or the node itself)."""
    if definition_node(node, lang):
        return node
    if node.type in defs.WRAPPERS:
        for child in node.named_children:
            if definition_node(child, lang):
                return child
    return None


def definitions(src: Source, node: tree_sitter.Node | None = None) -> Iterator[tree_sitter.Node]:
    """Every definition in the document (or under ``node``), outermost first."""
    for defining, found in groupby(defs.walk(node if node is not None else src.root, src.lang), key=lambda d: d.node):
        if _actionable(list(found), src.lang) is not None:
            yield defining


def find_definition(src: Source, name: str, kinds: tuple[str, ...] | None = None) -> Target | None:
    """The first definition called ``name`` (for finding the target in a model's answer)."""
    for node in definitions(src):
        if definition_name(node, src.lang) == name:
            target = make_target(src, node)
            if kinds is None or target.kind in kinds:
                return target
    return None


# -- statements -------------------------------------------------------------------------------------

_NOT_STATEMENTS = frozenset(
    {
        "parameter_declaration",
        "variadic_parameter_declaration",
        "field_declaration",
        "attribute_item",
        "inner_attribute_item",
        "public_field_definition",
        "type_parameter_declaration",
    }
)
_STATEMENT_SUFFIXES = ("_statement", "_declaration", "_definition", "_item")


def is_statement(node: tree_sitter.Node, lang: str) -> bool:
    if node.type in _NOT_STATEMENTS or node.parent is None:
        return False
    return node.type.endswith(_STATEMENT_SUFFIXES) or definition_node(node, lang)


def statement_at(src: Source, start: tuple[int, int], end: tuple[int, int]) -> Target:
    """The smallest statement (or definition) around a range, as whole lines.

    A statement inside code that does not parse (an ``ERROR`` node, whose extent tree-sitter
    guesses) is not trusted: the range's own lines are the target then.
    """
    a = src.point(*start)
    b = src.point(*end)
    if b < a:
        a, b = b, a
    node = src.root.named_descendant_for_point_range(a, b)
    for up in _ancestors(node):
        if up.type == "ERROR" or up.is_missing:
            break
        if is_statement(up, src.lang) and not up.has_error:
            if definition_node(up, src.lang):
                return make_target(src, up)
            first, last = up.start_point[0], src.last_row(up)
            return Target("statement", "", first, last, first, indent_of(src.lines[first]), node=up)
    first, last = min(a[0], b[0]), max(a[0], b[0])
    if end[1] == 0 and end[0] > start[0]:
        last -= 1
    return Target("lines", "", first, last, first, indent_of(src.lines[first]))


def enclosing_function(src: Source, target: Target) -> Target | None:
    """The function or method around a statement (the statement itself if it is one)."""
    node = target.node
    if node is None:
        node = src.root.named_descendant_for_point_range(
            (target.start_line, len(target.indent)), (target.start_line, len(target.indent))
        )
    for up in _ancestors(node):
        if definition_node(up, src.lang):
            found = make_target(src, up)
            if found.is_function:
                return found
    return None


# -- top-level units, for merging test files -----------------------------------------------------------

_IMPORTS = frozenset(
    {
        "import_statement",
        "import_from_statement",
        "future_import_statement",
        "import_declaration",
        "use_declaration",
        "extern_crate_declaration",
    }
)


@dataclass(frozen=True)
class Unit:
    """A top-level statement with the comments, decorators and attributes attached above it."""

    kind: str  # import, package, definition, other
    name: str
    first: int
    end: int  # exclusive line
    node: tree_sitter.Node = field(compare=False, repr=False)


def top_units(src: Source, parent: tree_sitter.Node | None = None) -> list[Unit]:
    """The top-level units of a document (or of a block such as a Rust ``mod tests { }`` body)."""
    units: list[Unit] = []
    container = parent if parent is not None else src.root
    pending: list[tree_sitter.Node] = []
    for child in container.named_children:
        if child.type in _LEADING:
            if pending and child.start_point[0] - src.last_row(pending[-1]) > 1:
                units += [_free(src, node) for node in pending]  # a blank line: free-standing comments
                pending = []
            pending.append(child)
            continue
        detached = pending and child.start_point[0] - src.last_row(pending[-1]) > 1
        if detached and pending[-1].type not in ("decorator", "attribute_item"):
            units += [_free(src, node) for node in pending]
            pending = []
        first = pending[0].start_point[0] if pending else child.start_point[0]
        inner = _unwrap(child, src.lang)
        if child.type in _IMPORTS:
            kind, name = "import", ""
        elif child.type == "package_clause":
            kind, name = "package", ""
        elif inner is not None:
            kind, name = "definition", definition_name(inner, src.lang)
        else:
            kind, name = "other", ""
        units.append(Unit(kind, name, first, src.last_row(child) + 1, child))
        pending = []
    return units + [_free(src, node) for node in pending]


def _free(src: Source, node: tree_sitter.Node) -> Unit:
    return Unit("other", "", node.start_point[0], src.last_row(node) + 1, node)
