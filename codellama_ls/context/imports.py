"""What a file imports from the rest of the project, and which files those imports name.

:func:`extract_bindings` reads a parsed file's import statements into :class:`Binding` s:
the name used in the file, the module as written, and the imported name (None when the
local name is the module itself, ``"*"`` for everything). :class:`Resolver` turns a module
into the project files it lives in:

- Python: relative imports from the file's package; absolute ones under each workspace
  folder, its ``src/``, and the folder that holds the file's top-level package. ``from p
  import m`` is the submodule ``p.m`` when that file exists;
- JavaScript/TypeScript: relative ``import``/``require``/``export … from`` specifiers, with
  the usual extensions (a ``.js`` specifier also finds the ``.ts`` file) and ``index`` files;
- Go: imports under the module path of the nearest ``go.mod`` are that folder's ``.go``
  files; the file's own package (other files of its folder) is always in scope;
- Rust: ``mod x;`` and ``use crate::``/``self::``/``super::``/relative paths, through
  ``x.rs`` and ``x/mod.rs`` from the crate's ``src`` (found by ``Cargo.toml``);
- C/C++: ``#include "x.h"`` beside the file, then at each workspace folder, its
  ``include/`` and ``src/``; ``<x.h>`` only in a workspace ``include/``.

Imports of other packages (the standard library, ``node_modules``, other crates) resolve to
nothing: only workspace files are ever candidates (the :class:`FileSource` decides).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from tree_sitter import Node

from codellama_ls.syntax import node_text


@dataclass(frozen=True)
class Binding:
    local: str  # the name the file uses; "*" for a star import
    module: str  # as written: "pkg.style", "..util", "./style", "crate::a::b", "x.h", "example.com/m/util"
    name: str | None  # the imported name; None: ``local`` is the module itself; "*": all of it
    line: int


class FileSource(Protocol):
    """What resolution needs from the index (it never reads the disk on its own)."""

    def exists(self, path: str) -> bool:
        """An indexable workspace file that the rules allow."""
        ...

    def is_file(self, path: str) -> bool:
        """Any allowed workspace file (``go.mod``, ``Cargo.toml``)."""
        ...

    def list_dir(self, directory: str) -> list[str]:
        """Paths of the indexed files directly in ``directory``."""
        ...

    def read_small(self, path: str) -> str | None:
        """The text of an allowed workspace file (``go.mod``)."""
        ...

    def folders(self) -> list[str]:
        """The workspace folders."""
        ...


# -- extraction ------------------------------------------------------------------------------
def extract_bindings(grammar: str, root: Node) -> tuple[list[Binding], str | None]:
    """The import bindings of a parsed file, and its Go package name."""
    if grammar == "python":
        return list(_python(root.named_children)), None
    if grammar in ("javascript", "typescript", "typescriptreact"):
        return list(_js(root)), None
    if grammar == "go":
        return _go(root)
    if grammar == "rust":
        return list(_rust(root)), None
    if grammar in ("c", "cpp"):
        return list(_c(root.named_children)), None
    return [], None


def _python(children: list[Node]) -> Iterator[Binding]:
    for node in children:
        row = node.start_point[0]
        if node.type == "import_statement":
            for name in node.children_by_field_name("name"):
                if name.type == "aliased_import":
                    module = node_text(name.child_by_field_name("name"))
                    yield Binding(node_text(name.child_by_field_name("alias")), module, None, row)
                else:
                    module = node_text(name)
                    yield Binding(module.split(".")[0], module.split(".")[0], None, row)
        elif node.type == "import_from_statement":
            module = "".join(node_text(node.child_by_field_name("module_name")).split())
            if any(c.type == "wildcard_import" for c in node.named_children):
                yield Binding("*", module, "*", row)
            for name in node.children_by_field_name("name"):
                if name.type == "aliased_import":
                    remote = node_text(name.child_by_field_name("name"))
                    yield Binding(node_text(name.child_by_field_name("alias")), module, remote, row)
                else:
                    yield Binding(node_text(name), module, node_text(name), row)
        elif node.type in (
            "if_statement",
            "try_statement",
            "with_statement",
            "function_definition",
            "class_definition",
            "decorated_definition",
            "block",
            "else_clause",
            "elif_clause",
            "except_clause",
            "finally_clause",
            "for_statement",
            "while_statement",
        ):
            yield from _python(node.named_children)


def _string_value(node: Node | None) -> str:
    if node is None:
        return ""
    parts = [node_text(c) for c in node.named_children if c.type.endswith(("_fragment", "_content"))]
    if parts or node.named_children:
        return "".join(parts)
    return node_text(node).strip("\"'`")  # a raw string without inner nodes


def _js(root: Node) -> Iterator[Binding]:
    for node in root.named_children:
        row = node.start_point[0]
        if node.type == "import_statement":
            source = _string_value(node.child_by_field_name("source"))
            for clause in node.named_children:
                if clause.type == "import_require_clause":  # TS: import x = require("./x")
                    name = clause.named_children[0] if clause.named_children else None
                    yield Binding(node_text(name), _string_value(clause.child_by_field_name("source")), None, row)
                if clause.type != "import_clause":
                    continue
                for part in clause.named_children:
                    if part.type == "identifier":
                        yield Binding(node_text(part), source, "default", row)
                    elif part.type == "namespace_import":
                        yield Binding(node_text(part.named_children[0]), source, None, row)
                    elif part.type == "named_imports":
                        for spec in part.named_children:
                            if spec.type == "import_specifier":
                                remote = node_text(spec.child_by_field_name("name"))
                                alias = spec.child_by_field_name("alias")
                                yield Binding(node_text(alias) if alias else remote, source, remote, row)
        elif node.type == "export_statement" and node.child_by_field_name("source") is not None:
            source = _string_value(node.child_by_field_name("source"))
            exported = next((c for c in node.named_children if c.type == "export_clause"), None)
            namespace = next((c for c in node.named_children if c.type == "namespace_export"), None)
            if exported is not None:
                for spec in exported.named_children:
                    remote = node_text(spec.child_by_field_name("name"))
                    alias = spec.child_by_field_name("alias")
                    yield Binding(node_text(alias) if alias else remote, source, remote, row)
            elif namespace is not None:
                yield Binding(node_text(namespace.named_children[-1]), source, None, row)
            else:
                yield Binding("*", source, "*", row)
        elif node.type in ("lexical_declaration", "variable_declaration"):
            for declarator in node.named_children:
                if declarator.type != "variable_declarator":
                    continue
                required = _require(declarator.child_by_field_name("value"))
                if required is None:
                    continue
                target = declarator.child_by_field_name("name")
                if target is None:
                    continue
                if target.type == "identifier":
                    yield Binding(node_text(target), required, None, row)
                elif target.type == "object_pattern":
                    for prop in target.named_children:
                        if prop.type == "shorthand_property_identifier_pattern":
                            yield Binding(node_text(prop), required, node_text(prop), row)
                        elif prop.type == "pair_pattern":
                            key = node_text(prop.child_by_field_name("key"))
                            yield Binding(node_text(prop.child_by_field_name("value")), required, key, row)


def _require(value: Node | None) -> str | None:
    """The specifier of ``require("./x")`` (or ``require("./x").name``: the module)."""
    while value is not None and value.type == "member_expression":
        value = value.child_by_field_name("object")
    if (
        value is None
        or value.type != "call_expression"
        or node_text(value.child_by_field_name("function")) != "require"
    ):
        return None
    args = value.child_by_field_name("arguments")
    if args is None or not args.named_children or args.named_children[0].type != "string":
        return None
    return _string_value(args.named_children[0])


def _go(root: Node) -> tuple[list[Binding], str | None]:
    bindings: list[Binding] = []
    package = None
    for node in root.named_children:
        if node.type == "package_clause":
            package = node_text(node.named_children[0]) if node.named_children else None
        elif node.type == "import_declaration":
            specs: list[Node] = []
            for part in node.named_children:
                specs.extend(part.named_children if part.type == "import_spec_list" else [part])
            for spec in specs:
                if spec.type != "import_spec":
                    continue
                path = _string_value(spec.child_by_field_name("path"))
                alias = node_text(spec.child_by_field_name("name"))
                if alias == "_":
                    continue
                if alias == ".":  # dot import: the package's names are used unqualified
                    bindings.append(Binding("*", path, "*", spec.start_point[0]))
                    continue
                bindings.append(Binding(alias or go_package_name(path), path, None, spec.start_point[0]))
    return bindings, package


def go_package_name(import_path: str) -> str:
    """The name a Go import binds by default: its last element (a ``/vN`` major version skipped)."""
    parts = [p for p in import_path.split("/") if p]
    if len(parts) > 1 and parts[-1][:1] == "v" and parts[-1][1:].isdigit():
        parts.pop()
    name = parts[-1] if parts else import_path
    return name.removeprefix("go-").split(".")[0].replace("-", "_")


def _rust(root: Node) -> Iterator[Binding]:
    for node in root.named_children:
        row = node.start_point[0]
        if node.type == "mod_item" and node.child_by_field_name("body") is None:
            name = node_text(node.child_by_field_name("name"))
            yield Binding(name, "self::" + name, None, row)
        elif node.type == "use_declaration":
            argument = node.child_by_field_name("argument")
            if argument is not None:
                yield from _rust_use(argument, "", row)


def _rust_use(node: Node, base: str, row: int) -> Iterator[Binding]:
    def join(a: str, b: str) -> str:
        return f"{a}::{b}" if a and b else a or b

    if node.type in ("identifier", "crate", "self", "super"):
        text = node_text(node)
        if text == "self":  # `use a::b::{self}` binds `b`
            module, _, name = base.rpartition("::")
            if name:
                yield Binding(name, module, name, row)
        else:
            yield Binding(text, base, text, row)
    elif node.type == "scoped_identifier":
        path = join(base, node_text(node.child_by_field_name("path")))
        name = node_text(node.child_by_field_name("name"))
        yield Binding(name, path, name, row)
    elif node.type == "use_as_clause":
        path_node = node.child_by_field_name("path")
        alias = node_text(node.child_by_field_name("alias"))
        full = join(base, node_text(path_node))
        module, _, name = full.rpartition("::")
        if name:
            yield Binding(alias, module, name, row)
    elif node.type == "use_wildcard":
        inner = node.named_children[0] if node.named_children else None
        yield Binding("*", join(base, node_text(inner)), "*", row)
    elif node.type == "scoped_use_list":
        path = join(base, node_text(node.child_by_field_name("path")))
        listing = node.child_by_field_name("list")
        if listing is not None:
            for item in listing.named_children:
                yield from _rust_use(item, path, row)
    elif node.type == "use_list":
        for item in node.named_children:
            yield from _rust_use(item, base, row)


def _c(children: list[Node]) -> Iterator[Binding]:
    for node in children:
        if node.type == "preproc_include":
            path = node.child_by_field_name("path")
            if path is None:
                continue
            if path.type == "string_literal":
                yield Binding("*", _string_value(path), "*", node.start_point[0])
            elif path.type == "system_lib_string":
                yield Binding("*", "<" + node_text(path).strip("<>") + ">", "*", node.start_point[0])
        elif node.type in (
            "preproc_ifdef",
            "preproc_if",
            "preproc_else",
            "preproc_elif",
            "linkage_specification",
            "declaration_list",
            "namespace_definition",
        ):
            inner = node.child_by_field_name("body")
            yield from _c(inner.named_children if inner is not None else node.named_children)


# -- resolution ------------------------------------------------------------------------------
_JS_EXTENSIONS = (".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts")
_JS_SWAP = {".js": (".ts", ".tsx"), ".jsx": (".tsx",), ".mjs": (".mts",), ".cjs": (".cts",)}


class Resolver:
    """Module names to workspace files, per language; answers and folder lookups (go.mod,
    Cargo.toml) are cached until the index's ``generation`` (the file tree) changes.
    """

    def __init__(self, files: FileSource) -> None:
        self.files = files
        self._gomod: dict[str, tuple[str, str] | None] = {}
        self._crate: dict[str, str | None] = {}
        self._modules: dict[tuple[str, str, str], list[str]] = {}
        self.generation = -1

    def clear(self, generation: int) -> None:
        if generation != self.generation:
            self._gomod.clear()
            self._crate.clear()
            self._modules.clear()
            self.generation = generation

    def module_files(self, lang: str, from_path: str, module: str) -> list[str]:
        """The workspace files that define ``module`` as imported by ``from_path`` (cached)."""
        key = (lang, from_path, module)
        hit = self._modules.get(key)
        if hit is None:
            hit = self._modules[key] = self._module_files(lang, from_path, module)
            if len(self._modules) > 50_000:
                self._modules.clear()
        return hit

    def _module_files(self, lang: str, from_path: str, module: str) -> list[str]:
        if lang == "python":
            found = self._python(from_path, module)
            return [found] if found else []
        if lang in ("javascript", "typescript", "typescriptreact"):
            found = self._js(from_path, module)
            return [found] if found else []
        if lang == "go":
            return self._go(from_path, module)
        if lang == "rust":
            found = self._rust(from_path, module)
            return [found] if found else []
        if lang in ("c", "cpp"):
            found = self._c(from_path, module)
            return [found] if found else []
        return []

    def submodule(self, lang: str, module: str, name: str) -> str | None:
        """The module ``name`` inside ``module`` (Python packages, Rust modules), as written."""
        if lang == "python":
            return module + name if module.endswith(".") or not module else f"{module}.{name}"
        if lang == "rust":
            return f"{module}::{name}" if module else name
        return None

    def package_files(self, from_path: str) -> list[str]:
        """Go: the other files of the same package (the file's folder, tests only with tests)."""
        directory = os.path.dirname(from_path)
        testing = from_path.endswith("_test.go")
        return [
            p
            for p in self.files.list_dir(directory)
            if p.endswith(".go") and p != from_path and (testing or not p.endswith("_test.go"))
        ]

    # -- Python ----------------------------------------------------------------------------
    def python_roots(self, from_path: str) -> list[str]:
        roots: list[str] = []
        top = os.path.dirname(from_path)
        while self.files.exists(os.path.join(top, "__init__.py")) or self.files.exists(
            os.path.join(top, "__init__.pyi")
        ):
            top = os.path.dirname(top)
        roots.append(top)
        for folder in self.files.folders():
            roots.extend((folder, os.path.join(folder, "src")))
        return list(dict.fromkeys(roots))

    def _python(self, from_path: str, module: str) -> str | None:
        if module.startswith("."):
            level = len(module) - len(module.lstrip("."))
            base = os.path.dirname(from_path)
            for _ in range(level - 1):
                base = os.path.dirname(base)
            rest = module[level:]
            return self._python_at(base, rest.split(".") if rest else [])
        if not module:
            return None
        for root in self.python_roots(from_path):
            found = self._python_at(root, module.split("."))
            if found:
                return found
        return None

    def _python_at(self, base: str, parts: list[str]) -> str | None:
        target = os.path.join(base, *parts)
        for candidate in (
            target + ".py",
            os.path.join(target, "__init__.py"),
            target + ".pyi",
            os.path.join(target, "__init__.pyi"),
        ):
            if parts or candidate.startswith(os.path.join(target, "__init__")):
                if self.files.exists(candidate):
                    return candidate
        return None

    # -- JavaScript / TypeScript -------------------------------------------------------------
    def _js(self, from_path: str, spec: str) -> str | None:
        if not spec.startswith(("./", "../")) and spec not in (".", ".."):
            return None  # packages and path aliases are not resolved
        target = os.path.normpath(os.path.join(os.path.dirname(from_path), spec))
        root, ext = os.path.splitext(target)
        candidates = [target] if ext else []
        candidates += [root + alt for alt in _JS_SWAP.get(ext, ())]
        candidates += [target + e for e in _JS_EXTENSIONS]
        candidates += [os.path.join(target, "index" + e) for e in _JS_EXTENSIONS]
        return next((c for c in candidates if self.files.exists(c)), None)

    # -- Go --------------------------------------------------------------------------------
    def _go_module(self, directory: str) -> tuple[str, str] | None:
        """(folder of go.mod, module path) for a folder, looking upwards inside the workspace."""
        if directory in self._gomod:
            return self._gomod[directory]
        found: tuple[str, str] | None = None
        gomod = os.path.join(directory, "go.mod")
        if self.files.is_file(gomod):
            text = self.files.read_small(gomod) or ""
            for line in text.split("\n"):
                words = line.split("//")[0].split()
                if len(words) == 2 and words[0] == "module":
                    found = (directory, words[1].strip('"'))
                    break
        elif any(directory.startswith(f) and directory != f for f in self.files.folders()):
            found = self._go_module(os.path.dirname(directory))
        self._gomod[directory] = found
        return found

    def _go(self, from_path: str, import_path: str) -> list[str]:
        module = self._go_module(os.path.dirname(from_path))
        if module is None:
            return []
        root, name = module
        if import_path != name and not import_path.startswith(name + "/"):
            return []
        directory = os.path.join(root, *import_path[len(name) :].split("/"))
        return [
            p
            for p in self.files.list_dir(os.path.normpath(directory))
            if p.endswith(".go") and not p.endswith("_test.go")
        ]

    # -- Rust ------------------------------------------------------------------------------
    def _crate_src(self, directory: str) -> str | None:
        """The folder of the crate root (``lib.rs``/``main.rs``) that a folder belongs to."""
        if directory in self._crate:
            return self._crate[directory]
        found: str | None = None
        if self.files.is_file(os.path.join(directory, "Cargo.toml")):
            src = os.path.join(directory, "src")
            found = src if any(self.files.exists(os.path.join(src, n)) for n in ("lib.rs", "main.rs")) else directory
        elif any(directory.startswith(f) and directory != f for f in self.files.folders()):
            found = self._crate_src(os.path.dirname(directory))
        self._crate[directory] = found
        return found

    def _rust(self, from_path: str, module: str) -> str | None:
        """Module folders: ``src`` is the crate root; module ``a`` of folder ``d`` is ``d/a.rs`` or ``d/a/mod.rs``."""
        here = os.path.dirname(from_path)
        name = os.path.basename(from_path)
        current = here if name in ("lib.rs", "main.rs", "mod.rs") else from_path[:-3]
        crate = self._crate_src(here)
        parts = [p for p in module.split("::") if p]
        if not parts:
            return None
        if parts[0] == "crate":
            if crate is None:
                return None
            starts = [crate]
            parts = parts[1:]
        elif parts[0] in ("self", "super"):
            base = current
            while parts and parts[0] in ("self", "super"):
                base = os.path.dirname(base) if parts[0] == "super" else base
                parts = parts[1:]
            starts = [base]
        else:
            starts = [current] + ([crate] if crate else [])
        for base in starts:
            found = self._rust_module(os.path.join(base, *parts), crate)
            if found:
                return found
        return None

    def _rust_module(self, directory: str, crate: str | None) -> str | None:
        if directory == crate:
            names = [os.path.join(directory, "lib.rs"), os.path.join(directory, "main.rs")]
        else:
            names = [directory + ".rs", os.path.join(directory, "mod.rs")]
        return next((n for n in names if self.files.exists(n)), None)

    # -- C / C++ ---------------------------------------------------------------------------
    def _c(self, from_path: str, header: str) -> str | None:
        system = header.startswith("<")
        header = header.strip("<>")
        if os.path.isabs(header) or not header:
            return None
        candidates = [] if system else [os.path.join(os.path.dirname(from_path), header)]
        for folder in self.files.folders():
            if system:
                candidates.append(os.path.join(folder, "include", header))
            else:
                candidates += [os.path.join(folder, sub, header) for sub in ("", "include", "src")]
        return next((os.path.normpath(c) for c in candidates if self.files.exists(os.path.normpath(c))), None)
