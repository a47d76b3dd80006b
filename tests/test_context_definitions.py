"""Definitions as line ranges: head (doc comment, signature, docstring), extent and member signatures."""

from __future__ import annotations

from codellama_ls.context.analysis import analyse
from codellama_ls.context.definitions import Outline
from tests.context_helpers import FIXTURES


def symbols(lang: str, text: str, path: str | None = None) -> dict[str, Outline]:
    return analyse("k", lang, text, 0, path).symbols


def shown(text: str, rows: tuple[int, int]) -> list[str]:
    return text.split("\n")[rows[0] : rows[1] + 1]


PY = '''import os

# A comment that belongs to the class.
@decorate
class Style(Base):
    """How text is drawn.

    More words.
    """

    color: str = "black"

    def __init__(
        self, color: str
    ) -> None:
        self.color = color

    @property
    def dark(self) -> bool:
        return True


def helper(a, b):
    return a + b

LIMIT = 10  # trailing comment
X = Y = 2

try:
    from fast import speedy
except ImportError:
    def speedy():
        pass
'''


def test_python_definitions():
    found = symbols("python", PY)
    style = found["Style"]
    assert (style.start, style.line, style.end) == (2, 4, 19)
    assert shown(PY, (style.start, style.head_end))[-1] == '    """'  # the docstring is part of the head
    assert [PY.split("\n")[a] for a, _ in style.members] == [
        '    color: str = "black"',
        "    def __init__(",
        "    @property",
    ]
    assert style.members[1] == (12, 14)  # a signature over three lines
    helper = found["helper"]
    assert (helper.start, helper.line, helper.head_end, helper.end) == (22, 22, 22, 23)
    assert found["LIMIT"].line == 25 and found["X"].line == found["Y"].line == 26
    assert found["speedy"].kind == "function"  # found inside try/except
    assert "os" not in found


def test_python_parses_broken_code():
    # A file in the middle of an edit still yields its imports and the definitions before the cursor.
    result = analyse("k", "python", "from .style import Style\n\ndef f(x):\n    return render(x, style=Style(\n", 0)
    assert [b.local for b in result.bindings] == ["Style"]
    assert "f" in result.symbols


TS = """import { x } from "./x";

/** A shape. */
export interface Shape {
  area(): number;
  name: string;
}

// Circles.
export class Circle implements Shape {
  name = "circle";
  constructor(public r: number) {}
  area(): number {
    return 3 * this.r;
  }
}

export const double = (n: number): number => {
  return n * 2;
};

export default Circle;
"""


def test_typescript_definitions():
    found = symbols("typescript", TS)
    assert (found["Shape"].start, found["Shape"].line, found["Shape"].end) == (2, 3, 6)
    assert len(found["Shape"].members) == 2
    circle = found["Circle"]
    assert (circle.start, circle.line, circle.head_end, circle.end) == (8, 9, 9, 15)
    assert [TS.split("\n")[a].strip() for a, _ in circle.members] == [
        'name = "circle";',
        "constructor(public r: number) {}",
        "area(): number {",
    ]
    assert found["double"].kind == "function" and found["double"].end == 19
    assert found["default"].line == circle.line  # `export default Circle` is the class


GO = """package shop

// Cart holds items.
type Cart struct {
	Items []Item
	Owner string
}

// Add puts an item in.
func (c *Cart) Add(it Item) {
	c.Items = append(c.Items, it)
}

const (
	Max = 10
	Min = 1
)

func New() *Cart { return &Cart{} }
"""


def test_go_definitions_with_methods_as_members():
    found = symbols("go", GO)
    cart = found["Cart"]
    assert (cart.start, cart.line, cart.head_end, cart.end) == (2, 3, 3, 6)
    assert cart.members == ((4, 4), (5, 5), (8, 9))  # the fields, then the method's comment and signature
    assert found["Max"].line == 14 and found["Min"].line == 15
    assert found["New"].head_end == 18


def test_rust_definitions_with_impl_methods():
    text = (FIXTURES / "rust" / "src" / "geometry" / "shapes.rs").read_text()
    square = symbols("rust", text)["Square"]
    assert (square.start, square.line, square.end) == (0, 2, 4)  # doc comment and attribute lead
    lines = text.split("\n")
    assert [lines[a].strip() for a, _ in square.members] == [
        "pub side: f64,",
        "impl Square {",
        "/// A square of the given side.",
    ]


def test_c_header_definitions():
    text = (FIXTURES / "c" / "include" / "vec.h").read_text()
    found = symbols("c", text, "vec.h")
    assert {"Vec", "vec_add", "VEC_ZERO", "VEC_H"} <= set(found)
    assert (found["Vec"].start, found["Vec"].line, found["Vec"].end) == (3, 4, 7)
    assert found["vec_add"].kind == "function" and found["vec_add"].start == 9
    cpp = (FIXTURES / "cpp" / "include" / "geo" / "circle.hpp").read_text()
    circle = symbols("cpp", cpp)["Circle"]
    assert circle.start == 4 and len(circle.members) == 3  # constructor, area, radius_


def test_cursor_chains_stay_on_their_line():
    from codellama_ls.context.names import cursor_chains

    prefix = "    # the end of a sentence.\n    report(st . Style, a::b::C, p->x)"
    assert cursor_chains(prefix, "\n") == [
        ("p", "x"),
        ("a", "b", "C"),
        ("st", "Style"),
        ("report",),
        ("sentence",),
        ("a",),
        ("of",),
        ("end",),
        ("the",),
    ]
