"""Where each top-level name of a file is defined, as line ranges the prompt can show.

The definitions are those of :mod:`codellama_ls.definitions` (the one model, shared with code
actions); this module lays each out as an :class:`Outline`: its head (leading doc comments,
decorators or attributes, the signature and a Python docstring), its whole extent, and the
signature lines of its members (methods, fields, a Go type's or Rust type's methods elsewhere in
the same file). The prompt shows the head first, then, budget allowing, either the whole
definition or, when that does not fit, the members' signatures: at ``Style(`` the constructor's
parameters matter more than the first lines of a long class body.

Only names a file declares at its top level (inside C++ namespaces, ``extern "C"`` blocks,
header guards, and Python ``if``/``try`` blocks too) are kept; a name defined twice keeps its
first definition.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from tree_sitter import Node

from codellama_ls.definitions import (
    ATTRIBUTES,
    CLASS,
    COMMENTS,
    FUNCTION,
    IMPL,
    MACRO,
    METHOD,
    MODULE,
    TYPE,
    VARIABLE,
    Definition,
    declared,
    family,
    last_row,
    rust_impl_type,
    signature_end,
    top_level,
)
from codellama_ls.syntax import node_text

LineRange = tuple[int, int]  # first and last line, 0-based, inclusive


@dataclass(frozen=True)
class Outline:
    """A definition as the prompt shows it."""

    name: str
    kind: str  # "function", "class", "type", "variable", "macro"
    start: int  # first line shown: leading comments, decorators, attributes
    line: int  # the line that names it
    head_end: int  # last line of the signature and docstring
    end: int  # last line of the definition
    members: tuple[LineRange, ...] = ()  # signatures of methods and fields, in line order

    def lines(self) -> LineRange:
        return self.start, self.end


def extract_definitions(grammar: str, root: Node) -> dict[str, Outline]:
    """The top-level definitions of a parsed file, by name."""
    outline = _OUTLINERS.get(family(grammar) or "")
    if outline is None:
        return {}
    found: dict[str, Outline] = {}
    for definition in outline(root, grammar):
        found.setdefault(definition.name, definition)
    return found


def _named(definitions: Iterable[Definition]) -> Iterator[Definition]:
    """The named ones (a Go method, a Rust impl: members of their type; a Rust module: not shown)."""
    for d in definitions:
        if d.name and d.kind not in (METHOD, IMPL, MODULE):
            yield d


# -- helpers ---------------------------------------------------------------------------------
def _row(node: Node) -> int:
    return node.start_point[0]


def _lead(node: Node, kinds: frozenset[str] = COMMENTS) -> int:
    """The first row of the comments (or attributes) directly above ``node``."""
    start = _row(node)
    prev = node.prev_sibling
    while prev is not None and prev.type in kinds and last_row(prev) >= start - 1:
        before = prev.prev_sibling
        if before is not None and last_row(before) == _row(prev):
            break  # a trailing comment of the line above, not a doc comment
        start = _row(prev)
        prev = before
    return start


def _outline(d: Definition, members: tuple[LineRange, ...] = (), lead: frozenset[str] = COMMENTS) -> Outline:
    return Outline(d.name, d.kind, _lead(d.outer, lead), _row(d.part), d.signature_end, last_row(d.outer), members)


# -- Python ----------------------------------------------------------------------------------
def _python(root: Node, grammar: str) -> Iterator[Outline]:
    for d in _named(top_level(root.named_children, grammar)):
        head_end = d.signature_end
        doc = d.docstring  # part of the head when it is the first thing in the body
        if doc is not None and d.body is not None and doc.parent == d.body.named_children[0]:
            head_end = last_row(doc)
        members = _python_members(d.body, grammar) if d.kind == CLASS else ()
        yield Outline(d.name, d.kind, _lead(d.outer), _row(d.node), head_end, last_row(d.outer), members)


def _python_members(body: Node | None, grammar: str) -> tuple[LineRange, ...]:
    if body is None:
        return ()
    members: list[LineRange] = []
    for child in body.named_children:  # methods and classes (decorators included), then assignments
        inner = child.child_by_field_name("definition") if child.type == "decorated_definition" else child
        found = declared(inner, grammar)[:1] if inner is not None else []
        for d in found:
            if d.kind != TYPE:
                members.append((_row(child), last_row(child) if d.kind == VARIABLE else d.signature_end))
    return tuple(members)


# -- JavaScript / TypeScript ---------------------------------------------------------------
_JS_BODIES = frozenset({"class_body", "interface_body", "object_type", "enum_body"})
_JS_MEMBERS = frozenset(
    {
        "method_definition",
        "field_definition",
        "public_field_definition",
        "method_signature",
        "abstract_method_signature",
        "property_signature",
        "construct_signature",
        "call_signature",
        "index_signature",
    }
)


def _js(root: Node, grammar: str) -> Iterator[Outline]:
    found: dict[str, Outline] = {}
    default_name = ""
    for child in root.named_children:
        # The lines shown are those of the whole statement (`export`, `declare` included).
        outlines = [_js_outline(d.name, d.kind, child, d.body, grammar) for d in _named(top_level([child], grammar))]
        value = child.child_by_field_name("value") if child.type == "export_statement" else None
        if child.type == "export_statement" and any(c.type == "default" for c in child.children):
            if child.child_by_field_name("declaration") is not None:
                outlines += [replace(o, name="default") for o in outlines[:1]]
            elif value is not None:
                outlines.append(_js_outline("default", VARIABLE, child, None, grammar))
        for outline in outlines:
            found.setdefault(outline.name, outline)
        if value is not None and value.type == "identifier":
            default_name = node_text(value)  # `export default Name;`: the default is Name's definition
    if default_name in found:
        found["default"] = replace(found[default_name], name="default")
    yield from found.values()


def _js_outline(name: str, kind: str, outer: Node, body: Node | None, grammar: str) -> Outline:
    members: list[LineRange] = []
    if body is not None and body.type in _JS_BODIES:
        for member in body.named_children:
            if member.type in _JS_MEMBERS:
                members.append((_row(member), signature_end(member, member.child_by_field_name("body"), grammar)))
    head = signature_end(outer, body, grammar)
    return Outline(name, kind, _lead(outer), _row(outer), head, last_row(outer), tuple(members))


def _with_methods(found: list[Outline], methods: dict[str, list[LineRange]]) -> Iterator[Outline]:
    """Each type with the methods defined elsewhere in the file (Go methods, Rust impls) among its members."""
    for outline in found:
        extra = methods.get(outline.name)
        if extra:
            outline = replace(outline, members=tuple(sorted({*outline.members, *extra})))
        yield outline


# -- Go --------------------------------------------------------------------------------------
def _go(root: Node, grammar: str) -> Iterator[Outline]:
    definitions = list(top_level(root.named_children, grammar))
    methods: dict[str, list[LineRange]] = {}
    for d in definitions:
        if d.kind == METHOD and d.owner:
            methods.setdefault(d.owner, []).append((_lead(d.node), d.signature_end))
    yield from _with_methods([_go_outline(d) for d in _named(definitions)], methods)


def _go_outline(d: Definition) -> Outline:
    if d.kind == FUNCTION or d.body is None:
        return _outline(d)
    members: list[LineRange] = []  # a struct's fields, an interface's methods
    for part in d.body.named_children:
        items = part.named_children if part.type == "field_declaration_list" else [part]
        members.extend((_row(m), last_row(m)) for m in items if m.type != "comment")
    if not members:  # an empty struct or interface is all head
        return replace(_outline(d), head_end=max(last_row(d.outer), _row(d.part)))
    return _outline(d, tuple(members))


# -- Rust ------------------------------------------------------------------------------------
_RUST_LEAD = COMMENTS | ATTRIBUTES
_RUST_BODIES = frozenset({"field_declaration_list", "enum_variant_list", "declaration_list"})


def _rust(root: Node, grammar: str) -> Iterator[Outline]:
    definitions = list(top_level(root.named_children, grammar))
    methods: dict[str, list[LineRange]] = {}
    for impl in definitions:
        target = rust_impl_type(impl.node) if impl.kind == IMPL else ""
        if target and impl.body is not None:
            rows = methods.setdefault(target, [])
            rows.append((_lead(impl.node, _RUST_LEAD), _row(impl.body)))  # the `impl X {` line itself
            items = top_level(impl.body.named_children, grammar)  # methods, constants, types
            rows.extend((_lead(m.outer, _RUST_LEAD), m.signature_end) for m in items)
    yield from _with_methods([_rust_outline(d, grammar) for d in _named(definitions)], methods)


def _rust_outline(d: Definition, grammar: str) -> Outline:
    members: list[LineRange] = []
    if d.body is not None and d.body.type in _RUST_BODIES:  # fields, variants, a trait's items
        for member in d.body.named_children:
            if member.type not in _RUST_LEAD:
                end = signature_end(member, member.child_by_field_name("body"), grammar)
                members.append((_lead(member, _RUST_LEAD), end))
    outline = _outline(d, tuple(members), _RUST_LEAD)
    return replace(outline, head_end=_row(d.node)) if d.kind == MACRO else outline


# -- C / C++ ---------------------------------------------------------------------------------
def _c(root: Node, grammar: str) -> Iterator[Outline]:
    for d in _named(top_level(root.named_children, grammar)):
        members: tuple[LineRange, ...] = ()
        if d.kind in (CLASS, TYPE) and d.body is not None:
            members = tuple(
                (_lead(m), signature_end(m, m.child_by_field_name("body"), grammar))
                for m in d.body.named_children
                if m.type not in COMMENTS and m.type != "access_specifier"
            )
        yield _outline(d, members)


_OUTLINERS = {"python": _python, "js": _js, "go": _go, "rust": _rust, "c": _c}
