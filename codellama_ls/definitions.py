"""The definitions in a syntax tree: one model for every part of the server that looks for them.

Context (the names other files define, shown as signatures and outlines) and code actions (the
function, class or item around a cursor) read definitions here: which nodes define what in each
language (:data:`KINDS`), what a definition is called, what it belongs to and where its parts are
(:class:`Definition`, made by :func:`declared`), and one walk over a tree (:func:`walk`, and
:func:`top_level` for a file's or a block's own definitions). What is particular to one use stays
with it: context turns definitions into line ranges within a budget, actions choose the definition
around a selection and where its documentation goes.

Grammars of one language family (``languages.Language.family``) share their node types:
JavaScript, TypeScript and TSX; C and C++.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache

from tree_sitter import Node

from codellama_ls import languages
from codellama_ls.syntax import node_text

# Kinds of definition.
FUNCTION = "function"
METHOD = "method"  # a function in a class, trait or impl body; a Go method (its receiver is its owner)
CLASS = "class"  # classes; Rust structs, enums, unions and traits; C/C++ structs, classes, unions, enums
TYPE = "type"  # type aliases, interfaces, TypeScript enums and namespaces, Go types, typedefs
VARIABLE = "variable"  # assignments, constants and statics, `exports.name = ...`
MACRO = "macro"
IMPL = "impl"  # a Rust `impl` block, named by its type as written (`Wrapper<T>`)
MODULE = "module"  # a Rust `mod` with a body
ALL_KINDS = frozenset({FUNCTION, METHOD, CLASS, TYPE, VARIABLE, MACRO, IMPL, MODULE})

# The node types that define something, by family, with their kind. Most define one name, their
# ``name`` field; ``_DECLARERS`` (below) read the others: Python assignments and type aliases,
# JavaScript variable declarations and `exports.x = ...`, Go declarations (a name a spec), C/C++
# declarations and typedefs (a name a declarator).
KINDS: dict[str, dict[str, str]] = {
    "python": {"function_definition": FUNCTION, "class_definition": CLASS, "type_alias_statement": TYPE},
    "js": {
        "function_declaration": FUNCTION,
        "generator_function_declaration": FUNCTION,
        "function_signature": FUNCTION,  # an overload or `declare function`: no body
        "class_declaration": CLASS,
        "abstract_class_declaration": CLASS,
        "method_definition": METHOD,
        "interface_declaration": TYPE,
        "type_alias_declaration": TYPE,
        "enum_declaration": TYPE,
        "internal_module": TYPE,
        "module": TYPE,
    },
    "go": {
        "function_declaration": FUNCTION,
        "method_declaration": METHOD,
        "type_declaration": TYPE,
        "const_declaration": VARIABLE,
        "var_declaration": VARIABLE,
    },
    "rust": {
        "function_item": FUNCTION,
        "function_signature_item": FUNCTION,
        "struct_item": CLASS,
        "enum_item": CLASS,
        "union_item": CLASS,
        "trait_item": CLASS,
        "type_item": TYPE,
        "const_item": VARIABLE,
        "static_item": VARIABLE,
        "macro_definition": MACRO,
        "impl_item": IMPL,
        "mod_item": MODULE,
    },
    "c": {
        "struct_specifier": CLASS,
        "class_specifier": CLASS,
        "union_specifier": CLASS,
        "enum_specifier": CLASS,
        "alias_declaration": TYPE,
        "type_definition": TYPE,
        "preproc_def": MACRO,
        "preproc_function_def": MACRO,
        "declaration": VARIABLE,  # or FUNCTION, by its declarator
        "function_definition": FUNCTION,
        "field_declaration": VARIABLE,  # or FUNCTION
    },
}

COMMENTS = frozenset({"comment", "line_comment", "block_comment"})
# Nodes that belong to the definition after them (siblings of it, not part of its node).
ATTRIBUTES = frozenset({"decorator", "attribute_item"})
# Nodes that hold one definition with its decorators, `export` or `template<...>`.
WRAPPERS = frozenset({"decorated_definition", "export_statement", "template_declaration"})
# Nodes whose definitions are still the file's top-level ones (no scope of their own), by family.
CONTAINERS: dict[str, frozenset[str]] = {
    "python": frozenset(
        {"if_statement", "elif_clause", "else_clause", "try_statement", "except_clause", "finally_clause"}
        | {"with_statement", "block"}
    ),
    "js": frozenset({"ambient_declaration"}),  # `declare ...`
    "go": frozenset(),
    "rust": frozenset(),
    "c": frozenset(
        {"preproc_ifdef", "preproc_if", "preproc_else", "preproc_elif", "preproc_elifdef"}
        | {"linkage_specification", "namespace_definition", "declaration_list"}
    ),
}
_C_TYPES = frozenset({"struct_specifier", "class_specifier", "union_specifier", "enum_specifier"})
_C_DECLARATIONS = frozenset({"declaration", "function_definition", "field_declaration"})


@cache
def family(language: str) -> str | None:
    """The family of a grammar or language id whose definitions this module knows, or None."""
    lang = languages.language(language)
    if lang is None or lang.grammar is None or lang.family not in KINDS:
        return None
    return lang.family


@dataclass(frozen=True)
class Definition:
    """One name a tree defines.

    ``node`` is what defines it: a function or class node, or a declaration of several names (a Go
    ``type``/``const``/``var`` declaration, a JavaScript ``const``, a C declaration or typedef,
    a Python assignment). ``part`` is the piece of ``node`` that is this name's alone: a Go spec or
    a JavaScript declarator (``node`` itself elsewhere). ``outer`` is ``node`` with what belongs to it
    around it (decorators, ``export``, ``template<...>``) or, for a spec of a Go group, the spec:
    where its doc comment goes. ``body`` is its block (for a JavaScript variable, its function's or
    class's; for a Go type, its struct or interface).
    """

    name: str
    kind: str
    language: str  # the grammar (or language id) it was parsed with
    node: Node
    part: Node
    outer: Node
    body: Node | None = None

    @property
    def family(self) -> str:
        return family(self.language) or ""

    @property
    def lines(self) -> tuple[int, int]:
        """Its first and last line (0-based, inclusive), without what ``outer`` adds."""
        return self.part.start_point[0], last_row(self.part)

    @property
    def byte_range(self) -> tuple[int, int]:
        return self.part.start_byte, self.part.end_byte

    @property
    def signature_end(self) -> int:
        """The last line of its signature: the line its body opens on (Python: the line before its block)."""
        if self.body is None:
            return last_row(self.outer)
        return signature_end(self.part, self.body, self.language)

    @property
    def body_lines(self) -> tuple[int, int] | None:
        return (self.body.start_point[0], last_row(self.body)) if self.body is not None else None

    @property
    def docstring(self) -> Node | None:
        """The string node of a Python function's or class's docstring."""
        if self.family != "python" or self.kind not in (FUNCTION, METHOD, CLASS):
            return None
        return docstring(self.node)

    @property
    def parent(self) -> Definition | None:
        """The definition it is in (for a name of a declaration of several, the one whose part holds it)."""
        ancestor = self.node.parent
        while ancestor is not None:
            around = [d for d in declared(ancestor, self.language) if _holds(d.part, self.node)]
            if around:
                return min(around, key=lambda d: d.part.end_byte - d.part.start_byte)
            ancestor = ancestor.parent
        return None

    @property
    def owner(self) -> str:
        """The qualified name of what it belongs to: the definition around it, the type of a Rust
        ``impl`` it is in or of a Go method's receiver ("" at the top level)."""
        if self.kind == METHOD and self.node.type == "method_declaration":
            return _go_receiver_type(self.node.child_by_field_name("receiver"))
        parent = self.parent
        if parent is None:
            return ""
        return rust_impl_type(parent.node) if parent.kind == IMPL else parent.qualified_name

    @property
    def qualified_name(self) -> str:
        owner = self.owner
        return f"{owner}.{self.name}" if owner else self.name


def _holds(outer: Node, inner: Node) -> bool:
    return outer.start_byte <= inner.start_byte and inner.end_byte <= outer.end_byte


# -- lines ------------------------------------------------------------------------------------------


def last_row(node: Node) -> int:
    """The last line a node is on (a node that ends at a line start ends on the line before)."""
    row, col = node.end_point
    return row - 1 if col == 0 and row > node.start_point[0] else row


def signature_end(node: Node, body: Node | None, language: str) -> int:
    """The last line of the signature of ``node`` whose block is ``body``: the line the block opens on
    (``{``), or in Python, whose block starts after the ``:``, the line before the block."""
    start = node.start_point[0]
    if body is None:
        return last_row(node)
    if family(language) == "python":
        return body.start_point[0] - 1 if body.start_point[0] > start else start
    return max(start, body.start_point[0])


def docstring(node: Node) -> Node | None:
    """The docstring string node of a Python function or class, if it has one."""
    body = node.child_by_field_name("body")
    if body is None:
        return None
    return lone_string(next((c for c in body.named_children if c.type not in COMMENTS), None))


def lone_string(statement: Node | None) -> Node | None:
    """The string of a Python statement that is a string alone (what a docstring is), else None."""
    if statement is None or statement.type != "expression_statement" or statement.named_child_count != 1:
        return None
    string = statement.named_children[0]
    return string if string.type in ("string", "concatenated_string") else None


# -- the walk ---------------------------------------------------------------------------------------


def walk(root: Node, language: str) -> Iterator[Definition]:
    """Every definition at or under ``root``, in document order, outermost first."""
    return _walk([root], language, top_level_only=False)


def top_level(nodes: Iterable[Node], language: str) -> Iterator[Definition]:
    """The definitions of these statements (a file's, a block's), in document order.

    Not those in the definitions: only those of the statements themselves and, through the nodes
    that open no scope (:data:`WRAPPERS` and the family's :data:`CONTAINERS`: Python ``if``/``try``/
    ``with``, C++ namespaces, ``extern "C"``, the preprocessor's conditionals, TypeScript's
    ``declare``), of the statements in them.
    """
    return _walk(list(nodes), language, top_level_only=True)


def _walk(nodes: list[Node], language: str, *, top_level_only: bool) -> Iterator[Definition]:
    fam = family(language)
    if fam is None:
        return
    through = WRAPPERS | CONTAINERS[fam]
    stack = nodes[::-1]
    while stack:
        node = stack.pop()
        found = declared(node, language)
        yield from found
        if not top_level_only or (not found and node.type in through):
            stack.extend(reversed(node.named_children))


def declared(node: Node, language: str) -> list[Definition]:
    """The definitions ``node`` makes: none, one, or several for a declaration of several names.

    A wrapper (decorators, ``export``) defines nothing itself: the definition inside it does.
    """
    fam = family(language)
    if fam is None:
        return []
    declare = _DECLARERS.get((fam, node.type))
    if declare is not None:
        return list(declare(node, language))
    kind = KINDS[fam].get(node.type)
    if kind is None:
        return []
    if node.type == "impl_item":
        return [_make(node_text(node.child_by_field_name("type")), kind, node, language)]
    if node.type == "mod_item" and node.child_by_field_name("body") is None:
        return []  # `mod name;` names a file, where the module is defined
    if node.type in _C_TYPES and (
        node.child_by_field_name("body") is None
        or not node_text(node.child_by_field_name("name"))
        or (node.parent is not None and node.parent.type in (*_C_DECLARATIONS, "type_definition"))
    ):
        return []  # a use of the type, an anonymous one, or one its declaration defines
    return [_make(node_text(node.child_by_field_name("name")), kind, node, language)]


def _make(name: str, kind: str, node: Node, language: str, body: Node | None = None) -> Definition:
    outer = wrapped(node)
    if body is None:
        body = node.child_by_field_name("body")
    return Definition(name, _as_member(kind, outer, language), language, node, node, outer, body)


def wrapped(node: Node) -> Node:
    """``node`` with the wrappers around it (decorators, ``export``, ``template<...>``)."""
    while node.parent is not None and node.parent.type in WRAPPERS:
        node = node.parent
    return node


def _as_member(kind: str, outer: Node, language: str) -> str:
    """A function right in the body of a class, trait or impl is a method."""
    container = outer.parent
    owner = container.parent if container is not None else None
    if kind != FUNCTION or owner is None or owner.child_by_field_name("body") != container:
        return kind
    return METHOD if KINDS[family(language) or ""].get(owner.type) in (CLASS, IMPL) else kind


# -- definitions of several names, or named elsewhere ---------------------------------------------------


def _python_assignment(node: Node, language: str) -> Iterator[Definition]:
    """Names bound by ``X = ...``, ``X: T = ...``, ``A = B = ...`` at statement level."""
    for name in _python_assigned(node):
        yield Definition(name, VARIABLE, language, node, node, node)


def _python_assigned(statement: Node) -> list[str]:
    names: list[str] = []
    node: Node | None = statement.named_children[0] if statement.named_children else None
    while node is not None and node.type == "assignment":
        left = node.child_by_field_name("left")
        if left is not None and left.type == "identifier":
            names.append(node_text(left))
        node = node.child_by_field_name("right")
    return names


def _python_type_alias(node: Node, language: str) -> Iterator[Definition]:
    left = node.named_children[0] if node.named_children else None
    yield Definition(node_text(left), KINDS["python"][node.type], language, node, node, node)


def _js_variables(node: Node, language: str) -> Iterator[Definition]:
    """``const f = () => ...``, ``let C = class {...}``, ``var x = 1``: one definition a declarator."""
    outer = wrapped(node)
    for declarator in node.named_children:
        name = declarator.child_by_field_name("name") if declarator.type == "variable_declarator" else None
        if name is None or name.type != "identifier":
            continue
        value = declarator.child_by_field_name("value")
        body = _js_value_body(value)
        kind = VARIABLE
        if body is not None and value is not None:
            kind = CLASS if value.type in ("class", "class_expression") else FUNCTION
        yield Definition(node_text(name), kind, language, node, declarator, outer, body)


def _js_value_body(value: Node | None) -> Node | None:
    if value is None or not ("function" in value.type or value.type in ("class", "class_expression")):
        return None
    return value.child_by_field_name("body")


def _js_exports(node: Node, language: str) -> Iterator[Definition]:
    """CommonJS: ``exports.name = ...``, ``module.exports.name = ...``."""
    expr = node.named_children[0] if node.named_children else None
    if expr is None or expr.type != "assignment_expression":
        return
    left = expr.child_by_field_name("left")
    if left is None or left.type != "member_expression":
        return
    if node_text(left.child_by_field_name("object")) in ("exports", "module.exports"):
        right = expr.child_by_field_name("right")
        body = right.child_by_field_name("body") if right is not None else None
        yield Definition(node_text(left.child_by_field_name("property")), VARIABLE, language, node, node, node, body)


def _go_specs(declaration: Node, language: str) -> Iterator[Definition]:
    """The names of a Go ``type``, ``const`` or ``var`` declaration, a spec (or a group of them) each."""
    specs: list[Node] = []
    for part in declaration.named_children:
        if part.type in ("type_spec", "type_alias", "const_spec", "var_spec"):
            specs.append(part)
        elif part.type in ("var_spec_list", "const_spec_list", "type_spec_list"):
            specs.extend(p for p in part.named_children if p.type.endswith(("_spec", "type_alias")))
    kind = KINDS["go"][declaration.type]
    for spec in specs:
        outer = declaration if len(specs) == 1 else spec  # a grouped spec's doc comment is above it
        type_node = spec.child_by_field_name("type")
        body = type_node if type_node is not None and type_node.type in ("struct_type", "interface_type") else None
        for name in spec.children_by_field_name("name"):
            yield Definition(node_text(name), kind, language, declaration, spec, outer, body)


def _go_receiver_type(receiver: Node | None) -> str:
    """The type a Go method's receiver is (``T`` of ``*T`` and ``T[K]``)."""
    if receiver is None:
        return ""
    for param in receiver.named_children:
        node = param.child_by_field_name("type")
        while node is not None and node.type in ("pointer_type", "generic_type"):
            node = node.named_children[0] if node.type == "pointer_type" else node.child_by_field_name("type")
        if node is not None:
            return node_text(node)
    return ""


def rust_impl_type(impl: Node) -> str:
    """The type a Rust ``impl`` is for: ``X`` of ``impl<T> Trait for &X<T>``."""
    type_node = impl.child_by_field_name("type")
    while type_node is not None and type_node.type in ("generic_type", "reference_type"):
        type_node = type_node.child_by_field_name("type")
    return node_text(type_node)


def _c_declaration(node: Node, language: str) -> Iterator[Definition]:
    """A C/C++ declaration or function: the struct it defines in its type, then its declarators' names."""
    type_node = node.child_by_field_name("type")
    if type_node is not None and type_node.type in _C_TYPES and type_node.child_by_field_name("body") is not None:
        name = node_text(type_node.child_by_field_name("name"))
        if name:
            yield _make(name, CLASS, node, language, type_node.child_by_field_name("body"))
    for declarator in node.children_by_field_name("declarator"):
        name = _c_declared_name(declarator)
        if name and "::" not in name:  # `A::f` defines a member declared in A
            yield _make(name, FUNCTION if _c_is_function(declarator) else VARIABLE, node, language)


def _c_typedef(node: Node, language: str) -> Iterator[Definition]:
    """``typedef struct Tag {...} Name;``: the names, then the tag."""
    type_node = node.child_by_field_name("type")
    body = type_node.child_by_field_name("body") if type_node is not None else None
    for declarator in node.children_by_field_name("declarator"):
        name = _c_declared_name(declarator)
        if name:
            yield _make(name, TYPE, node, language, body)
    if type_node is not None and type_node.type in _C_TYPES:
        name = node_text(type_node.child_by_field_name("name"))
        if name:
            yield _make(name, CLASS, node, language, body)


def _c_is_function(declarator: Node) -> bool:
    node: Node | None = declarator
    while node is not None:
        if node.type == "function_declarator":
            return True
        node = node.child_by_field_name("declarator")
    return False


def _c_declared_name(declarator: Node) -> str:
    """The name a C/C++ declarator declares, inside pointers, arrays, function declarators and
    initializers ("" for an operator or a destructor)."""
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


_DECLARERS = {
    ("python", "expression_statement"): _python_assignment,
    ("python", "type_alias_statement"): _python_type_alias,
    ("js", "lexical_declaration"): _js_variables,
    ("js", "variable_declaration"): _js_variables,
    ("js", "expression_statement"): _js_exports,
    ("go", "type_declaration"): _go_specs,
    ("go", "const_declaration"): _go_specs,
    ("go", "var_declaration"): _go_specs,
    **{("c", t): _c_declaration for t in _C_DECLARATIONS},
    ("c", "type_definition"): _c_typedef,
}
