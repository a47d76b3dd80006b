"""Where each top-level name of a file is defined, as line ranges the prompt can show.

A :class:`Definition` knows its head (leading doc comments, decorators or attributes, the
signature and a Python docstring), its whole extent, and the signature lines of its members
(methods, fields, a Go type's or Rust type's methods elsewhere in the same file). The prompt
shows the head first, then, budget allowing, either the whole definition or, when that does
not fit, the members' signatures: at ``Style(`` the constructor's parameters matter more than
the first lines of a long class body.

Only names a file declares at its top level (inside C++ namespaces, ``extern "C"`` blocks,
header guards, and Python ``if``/``try`` blocks too) are kept; a name defined twice keeps its
first definition.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from tree_sitter import Node

from codellama_ls.syntax import node_text

LineRange = tuple[int, int]  # first and last line, 0-based, inclusive


@dataclass(frozen=True)
class Definition:
    name: str
    kind: str  # "function", "class", "type", "variable", "macro"
    start: int  # first line shown: leading comments, decorators, attributes
    line: int  # the line that names it
    head_end: int  # last line of the signature and docstring
    end: int  # last line of the definition
    members: tuple[LineRange, ...] = ()  # signatures of methods and fields, in line order

    def lines(self) -> LineRange:
        return self.start, self.end


_COMMENTS = frozenset({"comment", "line_comment", "block_comment"})


def extract_definitions(grammar: str, root: Node) -> dict[str, Definition]:
    """The top-level definitions of a parsed file, by name."""
    extract = _EXTRACTORS.get(grammar)
    if extract is None:
        return {}
    found: dict[str, Definition] = {}
    for definition in extract(root):
        found.setdefault(definition.name, definition)
    return found


# -- helpers ---------------------------------------------------------------------------------
def _row(node: Node) -> int:
    return node.start_point[0]


def _end_row(node: Node) -> int:
    end = node.end_point
    # A node that ends at column 0 ends with the newline of the line before.
    return end[0] - 1 if end[1] == 0 and end[0] > node.start_point[0] else end[0]


def _lead(node: Node, kinds: frozenset[str] = _COMMENTS) -> int:
    """The first row of the comments (or attributes) directly above ``node``."""
    start = _row(node)
    prev = node.prev_sibling
    while prev is not None and prev.type in kinds and _end_row(prev) >= start - 1:
        before = prev.prev_sibling
        if before is not None and _end_row(before) == _row(prev):
            break  # a trailing comment of the line above, not a doc comment
        start = _row(prev)
        prev = before
    return start


def _head_to_body(node: Node, body: Node | None) -> int:
    """The last row of a signature: the row where its body starts (``{`` lines) or the row before."""
    if body is None:
        return _end_row(node)
    return max(_row(node), _row(body))


# -- Python ----------------------------------------------------------------------------------
def _python(root: Node) -> Iterator[Definition]:
    yield from _python_block(root.named_children)


def _python_block(children: Iterable[Node]) -> Iterator[Definition]:
    for child in children:
        node = child
        if child.type == "decorated_definition":
            inner = child.child_by_field_name("definition")
            if inner is None:
                continue
            node = inner
        if node.type in ("function_definition", "class_definition"):
            name = node_text(node.child_by_field_name("name"))
            body = node.child_by_field_name("body")
            head_end = _python_head_end(node, body)
            members = _python_members(body) if node.type == "class_definition" else ()
            kind = "class" if node.type == "class_definition" else "function"
            yield Definition(name, kind, _lead(child), _row(node), head_end, _end_row(child), members)
        elif child.type == "expression_statement":
            for name in _python_assigned(child):
                yield Definition(name, "variable", _lead(child), _row(child), _end_row(child), _end_row(child))
        elif child.type == "type_alias_statement":
            left = child.named_children[0] if child.named_children else None
            yield Definition(node_text(left), "type", _lead(child), _row(child), _end_row(child), _end_row(child))
        elif child.type in ("if_statement", "try_statement", "with_statement"):
            for block in _python_sub_blocks(child):
                yield from _python_block(block.named_children)


def _python_sub_blocks(node: Node) -> Iterator[Node]:
    for part in node.named_children:
        if part.type == "block":
            yield part
        elif part.type in ("else_clause", "elif_clause", "except_clause", "finally_clause"):
            for sub in part.named_children:
                if sub.type == "block":
                    yield sub


def _python_head_end(node: Node, body: Node | None) -> int:
    if body is None:
        return _end_row(node)
    head_end = _row(body) - 1 if _row(body) > _row(node) else _row(node)
    first = body.named_children[0] if body.named_children else None
    if first is not None and first.type == "expression_statement" and first.named_children:
        if first.named_children[0].type in ("string", "concatenated_string"):
            head_end = _end_row(first)
    return head_end


def _python_members(body: Node | None) -> tuple[LineRange, ...]:
    if body is None:
        return ()
    members: list[LineRange] = []
    for child in body.named_children:
        node = child.child_by_field_name("definition") if child.type == "decorated_definition" else child
        if node is None:
            continue
        if node.type in ("function_definition", "class_definition"):
            inner = node.child_by_field_name("body")
            last = _row(inner) - 1 if inner is not None and _row(inner) > _row(node) else _row(node)
            members.append((_row(child), last))
        elif node.type == "expression_statement" and _python_assigned(node):
            members.append((_row(node), _end_row(node)))
    return tuple(members)


def _python_assigned(statement: Node) -> list[str]:
    """Names bound by ``X = ...``, ``X: T = ...``, ``A = B = ...`` at statement level."""
    names: list[str] = []
    node: Node | None = statement.named_children[0] if statement.named_children else None
    while node is not None and node.type == "assignment":
        left = node.child_by_field_name("left")
        if left is not None and left.type == "identifier":
            names.append(node_text(left))
        node = node.child_by_field_name("right")
    return names


# -- JavaScript / TypeScript ---------------------------------------------------------------
_JS_DECLS = {
    "function_declaration": "function",
    "generator_function_declaration": "function",
    "function_signature": "function",
    "class_declaration": "class",
    "abstract_class_declaration": "class",
    "interface_declaration": "type",
    "type_alias_declaration": "type",
    "enum_declaration": "type",
    "internal_module": "type",
    "module": "type",
}
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


def _js(root: Node) -> Iterator[Definition]:
    found: dict[str, Definition] = {}
    default_name = ""
    for child in root.named_children:
        for definition in _js_statement(child, child):
            found.setdefault(definition.name, definition)
        value = child.child_by_field_name("value") if child.type == "export_statement" else None
        if value is not None and value.type == "identifier":
            default_name = node_text(value)  # `export default Name;`: the default is Name's definition
    if default_name in found:
        found["default"] = replace(found[default_name], name="default")
    yield from found.values()


def _js_statement(child: Node, outer: Node) -> Iterator[Definition]:
    """``outer`` is the node whose lines are shown (an ``export`` around a declaration)."""
    if child.type == "export_statement":
        declaration = child.child_by_field_name("declaration")
        value = child.child_by_field_name("value")
        is_default = any(c.type == "default" for c in child.children)
        if declaration is not None:
            found = list(_js_statement(declaration, child))
            yield from found
            if is_default and found:
                yield replace(found[0], name="default")
        elif is_default and value is not None:
            yield _js_definition("default", "variable", child, None)
        return
    if child.type == "ambient_declaration":
        for inner in child.named_children:
            yield from _js_statement(inner, outer)
        return
    kind = _JS_DECLS.get(child.type)
    if kind is not None:
        name = child.child_by_field_name("name")
        if name is not None:
            yield _js_definition(node_text(name), kind, outer, child.child_by_field_name("body"))
        return
    if child.type in ("lexical_declaration", "variable_declaration"):
        for declarator in child.named_children:
            if declarator.type != "variable_declarator":
                continue
            name = declarator.child_by_field_name("name")
            if name is None or name.type != "identifier":
                continue
            value = declarator.child_by_field_name("value")
            body = value.child_by_field_name("body") if value is not None and "function" in value.type else None
            if value is not None and value.type in ("class", "class_expression"):
                body = value.child_by_field_name("body")
            yield _js_definition(node_text(name), "function" if body is not None else "variable", outer, body)
        return
    if child.type == "expression_statement":  # exports.name = ... / module.exports.name = ...
        expr = child.named_children[0] if child.named_children else None
        if expr is not None and expr.type == "assignment_expression":
            left = expr.child_by_field_name("left")
            if left is not None and left.type == "member_expression":
                obj = node_text(left.child_by_field_name("object"))
                if obj in ("exports", "module.exports"):
                    right = expr.child_by_field_name("right")
                    body = right.child_by_field_name("body") if right is not None else None
                    yield _js_definition(node_text(left.child_by_field_name("property")), "variable", outer, body)


def _js_definition(name: str, kind: str, outer: Node, body: Node | None) -> Definition:
    members: list[LineRange] = []
    if body is not None and body.type in ("class_body", "interface_body", "object_type", "enum_body"):
        for member in body.named_children:
            if member.type in _JS_MEMBERS:
                inner = member.child_by_field_name("body")
                members.append((_row(member), _head_to_body(member, inner)))
    return Definition(
        name, kind, _lead(outer), _row(outer), _head_to_body(outer, body), _end_row(outer), tuple(members)
    )


# -- Go --------------------------------------------------------------------------------------
def _go(root: Node) -> Iterator[Definition]:
    found: list[Definition] = []
    methods: dict[str, list[LineRange]] = {}
    for child in root.named_children:
        if child.type == "function_declaration":
            name = node_text(child.child_by_field_name("name"))
            body = child.child_by_field_name("body")
            found.append(
                Definition(name, "function", _lead(child), _row(child), _head_to_body(child, body), _end_row(child))
            )
        elif child.type == "method_declaration":
            receiver = _go_receiver_type(child.child_by_field_name("receiver"))
            body = child.child_by_field_name("body")
            if receiver:
                methods.setdefault(receiver, []).append((_lead(child), _head_to_body(child, body)))
        elif child.type in ("type_declaration", "const_declaration", "var_declaration"):
            found.extend(_go_specs(child))
    for definition in found:
        extra = methods.get(definition.name)
        if extra:
            members = tuple(sorted({*definition.members, *extra}))
            definition = replace(definition, members=members)
        yield definition


def _go_specs(declaration: Node) -> Iterator[Definition]:
    specs: list[Node] = []
    for part in declaration.named_children:
        if part.type in ("type_spec", "type_alias", "const_spec", "var_spec"):
            specs.append(part)
        elif part.type in ("var_spec_list", "const_spec_list", "type_spec_list"):
            specs.extend(p for p in part.named_children if p.type.endswith(("_spec", "type_alias")))
    single = len(specs) == 1
    kind = {"type_declaration": "type", "const_declaration": "variable", "var_declaration": "variable"}[
        declaration.type
    ]
    for spec in specs:
        outer = declaration if single else spec
        names = [c for c in spec.children_by_field_name("name")]
        members: list[LineRange] = []
        type_node = spec.child_by_field_name("type")
        if type_node is not None and type_node.type in ("struct_type", "interface_type"):
            for part in type_node.named_children:
                items = part.named_children if part.type == "field_declaration_list" else [part]
                members.extend((_row(m), _end_row(m)) for m in items if m.type != "comment")
        for name in names:
            head = _row(type_node) if type_node is not None and members else _end_row(outer)
            yield Definition(
                node_text(name), kind, _lead(outer), _row(spec), max(head, _row(spec)), _end_row(outer), tuple(members)
            )


def _go_receiver_type(receiver: Node | None) -> str:
    if receiver is None:
        return ""
    for param in receiver.named_children:
        node = param.child_by_field_name("type")
        while node is not None and node.type in ("pointer_type", "generic_type"):
            node = node.named_children[0] if node.type == "pointer_type" else node.child_by_field_name("type")
        if node is not None:
            return node_text(node)
    return ""


# -- Rust ------------------------------------------------------------------------------------
_RUST_ITEMS = {
    "function_item": "function",
    "function_signature_item": "function",
    "struct_item": "class",
    "enum_item": "class",
    "union_item": "class",
    "trait_item": "class",
    "type_item": "type",
    "const_item": "variable",
    "static_item": "variable",
    "macro_definition": "macro",
}
_RUST_LEAD = frozenset({*_COMMENTS, "attribute_item"})


def _rust(root: Node) -> Iterator[Definition]:
    found: list[Definition] = []
    methods: dict[str, list[LineRange]] = {}
    for child in root.named_children:
        kind = _RUST_ITEMS.get(child.type)
        if kind is not None:
            name = node_text(child.child_by_field_name("name"))
            body = child.child_by_field_name("body")
            members: list[LineRange] = []
            if body is not None and body.type in ("field_declaration_list", "enum_variant_list", "declaration_list"):
                for member in body.named_children:
                    if member.type in _COMMENTS or member.type == "attribute_item":
                        continue
                    inner = member.child_by_field_name("body")
                    members.append((_lead(member, _RUST_LEAD), _head_to_body(member, inner)))
            head = _head_to_body(child, body) if kind != "macro" else _row(child)
            found.append(
                Definition(name, kind, _lead(child, _RUST_LEAD), _row(child), head, _end_row(child), tuple(members))
            )
        elif child.type == "impl_item":
            type_node = child.child_by_field_name("type")
            while type_node is not None and type_node.type in ("generic_type", "reference_type"):
                type_node = type_node.child_by_field_name("type")
            target = node_text(type_node)
            body = child.child_by_field_name("body")
            if not target or body is None:
                continue
            rows = methods.setdefault(target, [])
            rows.append((_lead(child, _RUST_LEAD), _row(body)))  # the `impl X {` line itself
            for member in body.named_children:
                if member.type in ("function_item", "const_item", "type_item"):
                    inner = member.child_by_field_name("body")
                    rows.append((_lead(member, _RUST_LEAD), _head_to_body(member, inner)))
    for definition in found:
        extra = methods.get(definition.name)
        if extra:
            definition = replace(definition, members=tuple(sorted({*definition.members, *extra})))
        yield definition


# -- C / C++ ---------------------------------------------------------------------------------
_C_TYPES = ("struct_specifier", "class_specifier", "union_specifier", "enum_specifier")
_C_CONTAINERS = frozenset({"preproc_ifdef", "preproc_if", "preproc_else", "preproc_elif", "preproc_elifdef"})


def _c(root: Node) -> Iterator[Definition]:
    yield from _c_items(root.named_children)


def _c_items(children: Iterable[Node]) -> Iterator[Definition]:
    for child in children:
        if child.type in _C_CONTAINERS:
            yield from _c_items(child.named_children)
        elif child.type in ("linkage_specification", "namespace_definition"):
            body = child.child_by_field_name("body")
            if body is not None:
                yield from _c_items(body.named_children if body.type == "declaration_list" else [body])
        elif child.type == "template_declaration":
            inner = [c for c in child.named_children if c.type not in ("template_parameter_list", *_COMMENTS)]
            for definition in _c_items(inner):
                yield replace(definition, start=min(definition.start, _lead(child)))
        elif child.type in ("preproc_def", "preproc_function_def"):
            name = node_text(child.child_by_field_name("name"))
            yield Definition(name, "macro", _lead(child), _row(child), _end_row(child), _end_row(child))
        elif child.type in ("declaration", "function_definition", "field_declaration"):
            yield from _c_declaration(child)
        elif child.type == "type_definition":
            type_node = child.child_by_field_name("type")
            members = _c_members(type_node)
            for declarator in child.children_by_field_name("declarator"):
                name = _c_name(declarator)
                if name:
                    yield _c_definition(name, "type", child, type_node, members)
            if type_node is not None and type_node.type in _C_TYPES:
                name = node_text(type_node.child_by_field_name("name"))
                if name:
                    yield _c_definition(name, "class", child, type_node, members)
        elif child.type in _C_TYPES:
            name = node_text(child.child_by_field_name("name"))
            if name and child.child_by_field_name("body") is not None:
                yield _c_definition(name, "class", child, child, _c_members(child))
        elif child.type == "alias_declaration":
            yield _c_definition(node_text(child.child_by_field_name("name")), "type", child, None, ())


def _c_declaration(child: Node) -> Iterator[Definition]:
    type_node = child.child_by_field_name("type")
    if type_node is not None and type_node.type in _C_TYPES and type_node.child_by_field_name("body") is not None:
        name = node_text(type_node.child_by_field_name("name"))
        if name:
            yield _c_definition(name, "class", child, type_node, _c_members(type_node))
    for declarator in child.children_by_field_name("declarator"):
        is_function = _c_is_function(declarator)
        name = _c_name(declarator)
        if name and "::" not in name:
            body = child.child_by_field_name("body")
            kind = "function" if is_function else "variable"
            yield Definition(name, kind, _lead(child), _row(child), _head_to_body(child, body), _end_row(child))


def _c_definition(
    name: str, kind: str, outer: Node, type_node: Node | None, members: tuple[LineRange, ...]
) -> Definition:
    body = type_node.child_by_field_name("body") if type_node is not None else None
    return Definition(name, kind, _lead(outer), _row(outer), _head_to_body(outer, body), _end_row(outer), members)


def _c_members(type_node: Node | None) -> tuple[LineRange, ...]:
    body = type_node.child_by_field_name("body") if type_node is not None else None
    if body is None:
        return ()
    members: list[LineRange] = []
    for member in body.named_children:
        if member.type in _COMMENTS or member.type == "access_specifier":
            continue
        inner = member.child_by_field_name("body")
        members.append((_lead(member), _head_to_body(member, inner) if inner is not None else _end_row(member)))
    return tuple(members)


def _c_is_function(declarator: Node) -> bool:
    node: Node | None = declarator
    while node is not None:
        if node.type == "function_declarator":
            return True
        node = node.child_by_field_name("declarator")
    return False


def _c_name(declarator: Node) -> str:
    """The declared name inside pointers, arrays, function declarators and initializers."""
    node: Node | None = declarator
    while node is not None and node.type not in (
        "identifier",
        "type_identifier",
        "field_identifier",
        "qualified_identifier",
    ):
        if node.type in ("operator_name", "destructor_name"):
            return ""
        node = node.child_by_field_name("declarator")
    return node_text(node) if node is not None else ""


_EXTRACTORS = {
    "python": _python,
    "javascript": _js,
    "typescript": _js,
    "typescriptreact": _js,
    "go": _go,
    "rust": _rust,
    "c": _c,
    "cpp": _c,
}
