"""Import resolution per language, on small fixture projects: the name at the cursor → its definition."""

from __future__ import annotations

from tests.context_helpers import FIXTURES, definitions_at

PY = FIXTURES / "python"


def test_python_relative_import_and_dataclass():
    found = definitions_at(PY, "app/render.py", "style_=Style(")
    assert found[0] == ("app/style.py", "Style", "class Style:")


def test_python_module_bound_by_from_package_import_submodule():
    # `from app import style` binds the submodule app/style.py; `style.default_style` is in it
    found = definitions_at(PY, "app/render.py", "style.default_style(")
    assert ("app/style.py", "default_style", "def default_style() -> Style:") in found


def test_python_relative_module_and_absolute_alias():
    found = definitions_at(PY, "app/render.py", "page: text.Page")
    assert found[0] == ("app/text.py", "Page", "class Page:")
    found = definitions_at(PY, "app/render.py", "page: textmod.Page")  # import app.text as textmod
    assert found[0] == ("app/text.py", "Page", "class Page:")


def test_python_re_export_from_package_init_is_followed():
    found = definitions_at(PY, "main_app.py", "Style(")
    assert found == [("app/style.py", "Style", "class Style:")]


def test_python_src_layout():
    found = definitions_at(PY, "scripts/pay.py", "transfer(")
    assert found[0] == (
        "src/ledger/accounts.py",
        "transfer",
        "def transfer(source: Account, target: Account, amount: int) -> None:",
    )
    assert ("src/ledger/accounts.py", "Account", "class Account:") in found


def test_python_parent_of_package_is_a_root():
    found = definitions_at(PY, "libs/geometry/draw.py", "Circle(")
    assert found == [("libs/geometry/shapes.py", "Circle", "class Circle:")]


def test_python_names_defined_in_the_file_itself_are_left_out():
    found = definitions_at(PY, "app/style.py", "return Style(")
    assert found == []


def test_javascript_typescript_relative_imports():
    js = FIXTURES / "js"
    # "./shapes.js" names the TypeScript file shapes.ts
    assert definitions_at(js, "src/main.ts", "new Circle(")[0] == ("src/shapes.ts", "Circle", "export class Circle {")
    assert definitions_at(js, "src/main.ts", "perimeter(")[0][:2] == ("src/shapes.ts", "perimeter")
    # a folder's index.js, through a namespace import
    assert definitions_at(js, "src/main.ts", "util.clamp(")[0] == (
        "src/util/index.js",
        "clamp",
        "export function clamp(value, low, high) {",
    )
    # a default import
    assert definitions_at(js, "src/main.ts", "new Painter(")[0] == (
        "src/painter.js",
        "Painter",
        "export default class Painter {",
    )
    # require() with a destructuring pattern, and CommonJS exports
    found = definitions_at(js, "src/main.ts", "formatNumber(size")
    assert found[0] == ("src/format.js", "formatNumber", "exports.formatNumber = function (n, digits) {")


def test_go_same_package_and_module_local_import():
    go = FIXTURES / "go"
    found = definitions_at(go, "cart/cart.go", "items []Item")
    assert found[0] == ("cart/item.go", "Item", "type Item struct {")
    found = definitions_at(go, "cart/cart.go", "money.Format(")
    assert found[0] == ("money/money.go", "Format", "func Format(cents int, currency string) string {")


def test_rust_mod_and_use_crate():
    rust = FIXTURES / "rust"
    found = definitions_at(rust, "src/main.rs", "Square::new(")
    assert found[0] == ("src/geometry/shapes.rs", "Square", "pub struct Square {")
    found = definitions_at(rust, "src/main.rs", "geometry::area(")
    assert found[0] == ("src/geometry/mod.rs", "area", "pub fn area(sq: &Square) -> f64 {")


def test_rust_use_self_from_a_mod_rs():
    rust = FIXTURES / "rust"
    found = definitions_at(rust, "src/geometry/mod.rs", "sq: &Square")
    assert found[0] == ("src/geometry/shapes.rs", "Square", "pub struct Square {")


def test_c_includes_beside_the_file_and_in_include():
    c = FIXTURES / "c"
    found = definitions_at(c, "src/main.c", "vec_add(a, VEC_ZERO")
    assert ("include/vec.h", "VEC_ZERO", "#define VEC_ZERO ((Vec){0, 0})") in found
    assert ("include/vec.h", "vec_add", "Vec vec_add(Vec a, Vec b);") in found
    found = definitions_at(c, "src/main.c", "clamp_int(")
    assert found[0] == ("src/util.h", "clamp_int", "int clamp_int(int value, int low, int high);")


def test_cpp_include_with_a_folder_and_a_namespace():
    cpp = FIXTURES / "cpp"
    found = definitions_at(cpp, "src/main.cpp", "geo::Circle c(")
    assert ("include/geo/circle.hpp", "Circle", "class Circle {") in found


def test_imports_from_outside_the_workspace_resolve_to_nothing():
    # `import math` / `from dataclasses import dataclass`: the standard library is not in the workspace
    assert definitions_at(PY / "libs", "geometry/shapes.py", "math.pi") == []
