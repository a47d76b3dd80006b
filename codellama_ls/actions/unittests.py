"""Write unit tests: where a language keeps its tests, and merging the answer's tests into that file.

Test files (an existing file always wins over creating one):

- Python: ``test_<module>.py`` beside the module, or ``tests/test_<module>.py`` when a ``tests``
  folder is beside the module (that is where pytest projects keep them).
- JavaScript/TypeScript: ``<name>.test.<ext>`` (or an existing ``<name>.spec.<ext>`` or
  ``__tests__/<name>.test.<ext>``) beside the file.
- Go: ``<name>_test.go`` beside the file, in the same package.
- Rust: a ``#[cfg(test)] mod tests { use super::*; ... }`` at the end of the same file, or the
  tests added inside the ``mod tests`` it already has.

Merging: imports the file lacks are added after its imports; the tests are appended; copies of
the code under test in the answer are dropped; a test whose name the file already uses is renamed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import tree_sitter

from codellama_ls.actions.answer import pick_code
from codellama_ls.actions.syntax import (
    JS_FAMILY,
    Source,
    Target,
    Unit,
    definition_at,
    definition_name,
    definitions,
    top_units,
)
from codellama_ls.actions.text import AnswerError, FileChange, TextEdit, reindent
from codellama_ls.definitions import CLASS, KINDS, family
from codellama_ls.lines import indent_of
from codellama_ls.syntax import node_text

Exists = Callable[[Path], bool]
ReadFile = Callable[[Path], "str | None"]


def read_text_or_none(path: Path) -> str | None:
    """The file's text, or None when it does not exist (the LSP layer passes open documents first)."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:  # keep CRLF: edits must match the file
            return fh.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


@dataclass(frozen=True)
class TestFile:
    """Where the tests go. ``path`` None: into the source file itself (Rust)."""

    path: Path | None
    exists: bool
    module: str  # Python: dotted module; JS/TS: import path; Go: package name; Rust: ""
    framework: str

    __test__ = False  # not a pytest class


def tests_target(src: Source, line: int, char: int) -> Target | None:
    """The function, method or class at the cursor that tests are written for."""
    kinds = ("function", "method", "class") if src.lang != "rust" else ("function", "method")
    return definition_at(src, line, char, accept=lambda t: t.kind in kinds and bool(t.name))


def test_file(src: Source, exists: Exists = Path.exists) -> TestFile | None:
    """The test file for ``src`` by the language's convention; None for a test file or an unsaved document."""
    if src.lang == "rust":
        return TestFile(None, True, "", "rust")
    path = src.path
    if path is None:
        return None
    stem, folder = path.stem, path.parent
    if src.lang == "python":
        if stem.startswith("test_") or stem.endswith("_test") or stem == "conftest":
            return None
        name = f"test_{stem}.py"
        beside, in_tests = folder / name, folder / "tests" / name
        chosen = next((p for p in (beside, in_tests) if exists(p)), None)
        if chosen is None:
            chosen = in_tests if exists(folder / "tests") else beside
        return TestFile(chosen, exists(chosen), _python_module(path, exists), "pytest")
    if src.lang == "go":
        if stem.endswith("_test"):
            return None
        chosen = folder / f"{stem}_test.go"
        return TestFile(chosen, exists(chosen), _go_package(src), "testing")
    if src.lang in JS_FAMILY:
        if stem.endswith((".test", ".spec")):
            return None
        ext = path.suffix
        options = [folder / f"{stem}.test{ext}", folder / f"{stem}.spec{ext}"]
        options.append(folder / "__tests__" / f"{stem}.test{ext}")
        chosen = next((p for p in options if exists(p)), options[0])
        module = f"../{stem}" if chosen.parent.name == "__tests__" else f"./{stem}"
        return TestFile(chosen, exists(chosen), module, "Jest")
    return None


def _python_module(path: Path, exists: Exists) -> str:
    """The dotted import name: the module's stem, under each package folder (with ``__init__.py``) above it."""
    parts = [path.stem]
    folder = path.parent
    while exists(folder / "__init__.py") and folder.name:
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts)


def _go_package(src: Source) -> str:
    for child in src.root.named_children:
        if child.type == "package_clause":
            name = next((c for c in child.named_children if c.type == "package_identifier"), None)
            if name is not None:
                return node_text(name)
    return "main"


def import_name(target: Target, src: Source) -> str:
    """The name a test imports: a method's class (top-level), else the target itself."""
    if target.kind != "method" or target.node is None:
        return target.name
    kinds = KINDS.get(family(src.lang) or "", {})
    node: tree_sitter.Node | None = target.node.parent
    outermost = target.name
    while node is not None:
        if kinds.get(node.type) == CLASS:
            outermost = definition_name(node, src.lang)
        node = node.parent
    return outermost


# -- merging ---------------------------------------------------------------------------------------------


def tests_change(
    src: Source, target: Target, where: TestFile, answer: str, read_file: ReadFile = read_text_or_none
) -> FileChange:
    """The change that adds the answer's tests to the test file (created when it does not exist)."""
    code = pick_code(answer, src.lang, prefer=lambda c: _looks_like_tests(c, src.lang))
    if not code.strip():
        raise AnswerError("the answer has no test code")
    ans = Source.from_text(code, src.lang)
    if src.lang == "rust":
        return FileChange(None, False, tuple(_rust_edits(src, ans)))
    assert where.path is not None
    current = read_file(where.path) if where.exists else None
    existing = Source.from_text(current, src.lang, where.path) if current is not None else None
    own = {u.name for u in top_units(src) if u.kind == "definition"}
    theirs = {u.name for u in top_units(existing) if u.kind == "definition"} if existing is not None else set()
    units = [u for u in top_units(ans) if not (u.kind == "definition" and u.name in own and not _is_test(u.name))]
    renames = _renames(ans, units, theirs, src.lang)
    if src.lang == "go":
        return _go_change(where, existing, ans, units, renames, src.eol)
    imports = [u for u in units if u.kind == "import"]
    rest = [u for u in units if u.kind != "import"]
    name = import_name(target, src)
    gap = 2 if src.lang == "python" else 1
    if existing is None:
        own_import = [] if _binds(ans, imports, name) else [_import_line(src.lang, where.module, name)]
        head = own_import + _lines(ans, imports, renames)
        text = _join([head, _lines(ans, rest, renames)], gap)
        return FileChange(where.path, True, (TextEdit(0, 0, 0, 0, src.eol.join(text) + src.eol),))
    there = [u for u in top_units(existing) if u.kind == "import"]
    bound = _bound_names(existing, there)
    written = {_norm(existing, u) for u in there}
    missing = [u for u in imports if _norm(ans, u) not in written and not _bound_names(ans, [u]) <= bound]
    own_import = [] if _binds(ans, imports, name) or name in bound else [_import_line(src.lang, where.module, name)]
    edits = []
    new_imports = own_import + [line for u in missing for line in _missing_part(ans, u, bound)]
    if new_imports:
        edits.append(_insert(existing, _import_line_no(existing), new_imports))
    edits.append(_append(existing, _lines(ans, rest, renames), gap))
    return FileChange(where.path, False, tuple(edits))


def _missing_part(ans: Source, unit: Unit, bound: set[str]) -> list[str]:
    """An import's lines; a Python ``from m import a, b`` whose ``a`` is there already becomes ``from m import b``."""
    node = unit.node
    lines = ans.lines[unit.first : unit.end]
    if ans.lang != "python" or node.type != "import_from_statement" or unit.end - unit.first != 1:
        return lines
    module = node.child_by_field_name("module_name")
    names = node.children_by_field_name("name")
    wanted = [node_text(n) for n in names if _alias(n) not in bound]
    if module is None or not wanted or len(wanted) == len(names):
        return lines
    return [f"{indent_of(lines[0])}from {node_text(module)} import {', '.join(wanted)}"]


def _looks_like_tests(code: str, lang: str) -> bool:
    marks = {
        "python": ("def test", "unittest"),
        "go": ("func Test",),
        "rust": ("#[test]",),
    }.get(lang, ("test(", "it(", "describe("))
    return any(mark in code for mark in marks)


def _is_test(name: str) -> bool:
    return name.lower().startswith("test") or name.endswith("_test")


def _renames(ans: Source, units: Sequence[Unit], taken: set[str], lang: str) -> dict[tuple[int, int], str]:
    """New names for the answer's definitions whose names the test file already uses."""
    out: dict[tuple[int, int], str] = {}
    used = set(taken)
    for unit in units:
        if unit.kind != "definition" or unit.name not in used:
            continue
        node = next(definitions(ans, unit.node), None)
        name_node = node.child_by_field_name("name") if node is not None else None
        if name_node is None:
            continue
        n = 2
        while (new := f"{unit.name}{n}" if lang == "go" else f"{unit.name}_{n}") in used:
            n += 1
        used.add(new)
        out[name_node.start_point] = new
    return out


def _lines(src: Source, units: Sequence[Unit], renames: dict[tuple[int, int], str]) -> list[str]:
    """The units' lines (blank lines between them as in the answer), renamed definitions renamed."""
    out: list[str] = []
    previous_end: int | None = None
    for unit in units:
        if previous_end is not None and unit.first > previous_end:
            out += [""] * min(unit.first - previous_end, 2)
        lines = list(src.lines[unit.first : unit.end])
        for (row, col), new in renames.items():
            if unit.first <= row < unit.end:
                line = lines[row - unit.first]
                start = src.char_col(row, col)
                old = line[start:]
                word = len(old) - len(old.lstrip("_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
                lines[row - unit.first] = line[:start] + new + line[start + word :]
        out += lines
        previous_end = unit.end
    return out


def _join(parts: Sequence[list[str]], gap: int) -> list[str]:
    out: list[str] = []
    for part in parts:
        if not part:
            continue
        if out:
            out += [""] * gap
        out += part
    return out


def _norm(src: Source, unit: Unit) -> str:
    return " ".join(src.line_range(unit.first, unit.end).split())


def _bound_names(src: Source, units: Sequence[Unit]) -> set[str]:
    """Names (or, for Go and Rust, paths) the import units make available."""
    names: set[str] = set()
    for unit in units:
        node = unit.node
        if src.lang == "python":
            if node.type == "import_from_statement":
                module = node.child_by_field_name("module_name")
                for child in node.children_by_field_name("name"):
                    names.add(_alias(child))
                if any(c.type == "wildcard_import" for c in node.children) and module is not None:
                    names.add("*" + node_text(module))
            elif node.type == "import_statement":
                for child in node.children_by_field_name("name"):
                    names.add(_alias(child).split(".")[0])
            else:
                names.add(_norm(src, unit))
        elif src.lang in JS_FAMILY:
            clause = next((c for c in node.named_children if c.type == "import_clause"), None)
            if clause is None:
                names.add(_norm(src, unit))
                continue
            stack = [clause]
            while stack:
                current = stack.pop()
                if current.type == "import_specifier":
                    alias = current.child_by_field_name("alias") or current.child_by_field_name("name")
                    if alias is not None:
                        names.add(node_text(alias))
                    continue
                if current.type == "identifier":
                    names.add(node_text(current))
                stack.extend(current.named_children)
        else:
            names.add(_norm(src, unit))
    return names


def _alias(node: tree_sitter.Node) -> str:
    if node.type == "aliased_import":
        alias = node.child_by_field_name("alias")
        if alias is not None:
            return node_text(alias)
    return node_text(node)


def _binds(src: Source, imports: Sequence[Unit], name: str) -> bool:
    names = _bound_names(src, imports)
    return name in names or any(n.startswith("*") for n in names)


def _import_line(lang: str, module: str, name: str) -> str:
    if lang == "python":
        return f"from {module} import {name}"
    return f"import {{ {name} }} from '{module}';"


def _import_line_no(existing: Source) -> int:
    """Where new imports go: after the file's last top-level import, else after its docstring/comments."""
    units = top_units(existing)
    imports = [u for u in units if u.kind == "import"]
    if imports:
        return imports[-1].end
    first = units[0] if units else None
    if first is not None and existing.lang == "python" and first.node.type == "expression_statement":
        if first.node.named_child_count == 1 and first.node.named_children[0].type == "string":
            return first.end
    if first is not None and first.kind == "other" and first.node.type in ("comment", "line_comment"):
        return first.end
    return 0


def _insert(existing: Source, row: int, lines: list[str]) -> TextEdit:
    eol = existing.eol
    if row >= len(existing.lines):
        last = len(existing.lines) - 1
        return TextEdit(last, len(existing.lines[last]), last, len(existing.lines[last]), eol + eol.join(lines))
    return TextEdit(row, 0, row, 0, "".join(line + eol for line in lines))


def _append(existing: Source, body: list[str], gap: int) -> TextEdit:
    """Append ``body`` after the file's last non-blank line, ``gap`` blank lines between."""
    eol = existing.eol
    last = len(existing.lines) - 1
    while last > 0 and not existing.lines[last].strip():
        last -= 1
    end_line = len(existing.lines) - 1
    lead = eol * (gap + 1) if existing.lines[last].strip() else ""
    text = lead + eol.join(body) + eol
    return TextEdit(last, len(existing.lines[last]), end_line, len(existing.lines[end_line]), text)


# -- Go -----------------------------------------------------------------------------------------------


def _go_specs(src: Source, units: Sequence[Unit]) -> list[str]:
    specs: list[str] = []
    for unit in units:
        stack = [unit.node]
        while stack:
            node = stack.pop()
            if node.type == "import_spec":
                specs.append(" ".join(node_text(node).split()))
                continue
            stack.extend(reversed(node.named_children))
    return specs


def _go_change(
    where: TestFile,
    existing: Source | None,
    ans: Source,
    units: Sequence[Unit],
    renames: dict[tuple[int, int], str],
    eol: str,
) -> FileChange:
    specs = _go_specs(ans, [u for u in units if u.kind == "import"])
    rest = [u for u in units if u.kind not in ("import", "package")]
    body = _lines(ans, rest, renames)
    if existing is None:
        if len(specs) == 1:
            header = [f"import {specs[0]}"]
        elif specs:
            header = ["import (", *[f"\t{s}" for s in specs], ")"]
        else:
            header = []
        text = _join([[f"package {where.module}"], header, body], 1)
        return FileChange(where.path, True, (TextEdit(0, 0, 0, 0, eol.join(text) + eol),))
    units_there = top_units(existing)
    have = set(_go_specs(existing, [u for u in units_there if u.kind == "import"]))
    missing = [s for s in specs if s not in have]
    edits: list[TextEdit] = []
    if missing:
        imports = [u for u in units_there if u.kind == "import"]
        block = next((u.node for u in imports if any(c.type == "import_spec_list" for c in u.node.children)), None)
        if block is not None:
            close = existing.last_row(block)
            edits.append(_insert(existing, close, [f"\t{s}" for s in missing]))
        else:
            package = next((u for u in units_there if u.kind == "package"), None)
            declarations = [f"import {s}" for s in missing]
            if imports:
                edits.append(_insert(existing, imports[-1].end, declarations))
            else:
                edits.append(_insert(existing, package.end if package else 0, ["", *declarations]))
    edits.append(_append(existing, body, 1))
    return FileChange(where.path, False, tuple(edits))


# -- Rust -----------------------------------------------------------------------------------------------


def _tests_module(src: Source) -> tree_sitter.Node | None:
    """The ``mod tests { }`` (or any ``#[cfg(test)]`` module with a body) at the top of a file."""
    for unit in top_units(src):
        node = unit.node
        if node.type != "mod_item" or node.child_by_field_name("body") is None:
            continue
        attrs = src.line_range(unit.first, node.start_point[0])
        if definition_name(node, "rust") == "tests" or "cfg(test)" in attrs.replace(" ", ""):
            return node
    return None


def _rust_edits(src: Source, ans: Source) -> list[TextEdit]:
    module = _tests_module(ans)
    if module is not None:
        body = module.child_by_field_name("body")
        assert body is not None
        units = top_units(ans, body)
    else:
        own = {u.name for u in top_units(src) if u.kind == "definition"}
        units = [
            u
            for u in top_units(ans)
            if not (u.kind == "definition" and u.name in own and not _is_test(u.name))
            and not (u.kind == "other" and u.node.type == "attribute_item")
        ]
    there = _tests_module(src)
    unit = src.unit
    if there is not None:
        there_body = there.child_by_field_name("body")
        assert there_body is not None
        present = top_units(src, there_body)
        have = {_norm(src, u) for u in present if u.kind == "import"}
        units = [u for u in units if not (u.kind == "import" and _norm(ans, u) in have)]
        taken = {u.name for u in present if u.kind == "definition"}
        lines = _lines(ans, units, _renames(ans, units, taken, "rust"))
        close = src.last_row(there)
        base = indent_of(src.lines[there.start_point[0]]) + unit
        new = ["", *reindent(lines, base, unit)] if present else reindent(lines, base, unit)
        if src.lines[close].strip() != "}":
            raise AnswerError("the file's tests module does not end with a '}' line of its own")
        return [_insert(src, close, new)]
    lines = _lines(ans, units, {})
    if not any(" ".join(line.split()) == "use super::*;" for line in lines):
        lines = ["use super::*;", "", *lines]
    module_lines = ["#[cfg(test)]", "mod tests {", *reindent(lines, unit, unit), "}"]
    return [_append(src, module_lines, 1)]
