"""The one definition model (``codellama_ls/definitions.py``) and its two users, context and code actions."""

from __future__ import annotations

import pytest
from tree_sitter import Node

from codellama_ls.actions.syntax import Source, definitions, make_target
from codellama_ls.context.definitions import extract_definitions
from codellama_ls.definitions import IMPL, METHOD, MODULE, declared, last_row, top_level, walk
from codellama_ls.syntax import parse

PY = '''import os

# Shapes.
@dataclass
class Shape:
    """A shape."""

    sides: int = 0

    @property
    def area(self) -> float:
        def helper():
            return 1
        return 0.0

    class Meta:
        pass


def make(kind: str) -> Shape:
    return Shape()


LIMIT = TOP = 10
type Alias = list[int]

try:
    import fast
except ImportError:
    def fast():
        pass
'''

TS = """import { x } from "./x";

/** A shape. */
export interface Shape {
  area(): number;
}

// Rings: a decorated class.
@Component({ selector: "ring" })
export class Ring implements Shape {
  static count = 0;
  constructor(private outer: number, private inner: number) {}
  area(): number {
    return Math.PI * (this.outer ** 2 - this.inner ** 2);
  }
}

export function overloaded(a: string): string;
export function overloaded(a: any): any {
  return a;
}

export const double = (n: number): number => {
  return n * 2;
};
const Klass = class {
  m() {}
};
const a = 1, b = () => 2;

declare function declared(): void;
export default Ring;
"""

GO = """package shop

// Basket is a grouped type.
type (
	Basket struct {
		Fruit []string
	}
	// A is a.
	A int
	B = string
)

// Put adds a fruit.
func (b *Basket) Put(fruit string) { b.Fruit = append(b.Fruit, fruit) }

func (g Gen[T]) Get() T { return g.v }

const Max = 10

func New() *Basket { return &Basket{} }
"""

RUST = """/// A square.
#[derive(Debug)]
pub struct Square {
    pub side: f64,
}

pub trait Area {
    fn area(&self) -> f64;
}

impl<T> Area for Wrapper<T> {
    fn area(&self) -> f64 { 1.0 }
}

impl Square {
    /// A square of the given side.
    pub fn new(side: f64) -> Self { Square { side } }
    const K: u8 = 1;
}

macro_rules! square {
    ($x:expr) => { $x * $x };
}

mod external;

#[cfg(test)]
mod tests {
    #[test]
    fn it_works() {}
}
"""

CPP = """#pragma once
#define LIMIT 10

namespace geo {

/// A circle.
class Circle : public Shape {
public:
    explicit Circle(double r);
    double area() const override;
private:
    double radius_;
};

template <typename T>
T max_of(T a, T b) { return a > b ? a : b; }

using Real = double;

double Circle::area() const { return 3.14; }

}  // namespace geo

extern "C" int c_api(int);
typedef struct vec { double x, y; } Vec;
int counter = 0, *ptr;
"""

SAMPLES = {"python": PY, "typescript": TS, "go": GO, "rust": RUST, "cpp": CPP}


def root(lang: str, text: str) -> Node:
    tree = parse(text, lang)
    assert tree is not None
    return tree.root_node


def model(lang: str, text: str) -> str:
    """The qualified name and kind of each definition, in order."""
    return ", ".join(f"{d.qualified_name} {d.kind}" for d in walk(root(lang, text), lang))


def test_python_definitions_with_their_owners() -> None:
    assert model("python", PY) == (
        "Shape class, Shape.sides variable, Shape.area method, Shape.area.helper function, "
        "Shape.Meta class, make function, LIMIT variable, TOP variable, Alias type, fast function"
    )
    shape = next(walk(root("python", PY), "python"))
    assert shape.outer.type == "decorated_definition" and shape.lines == (4, 16)
    assert shape.docstring is not None and shape.docstring.start_point[0] == 5
    assert shape.signature_end == 4 and shape.body_lines == (5, 16)


def test_typescript_definitions() -> None:
    assert model("typescript", TS) == (
        "Shape type, Ring class, Ring.constructor method, Ring.area method, overloaded function, "
        "overloaded function, double function, Klass class, Klass.m method, a variable, b function, "
        "declared function"
    )
    assert extract_definitions("typescript", root("typescript", TS))["Klass"].kind == "class"  # in both users


def test_go_methods_belong_to_their_receiver_type() -> None:
    assert (
        model("go", GO) == "Basket type, A type, B type, Basket.Put method, Gen.Get method, Max variable, New function"
    )
    a = next(d for d in walk(root("go", GO), "go") if d.name == "A")
    assert a.node.type == "type_declaration" and a.part.type == "type_spec" and a.outer == a.part  # in a group


def test_rust_items_and_impl_members() -> None:
    assert model("rust", RUST) == (
        "Square class, Area class, Area.area method, Wrapper<T> impl, Wrapper.area method, Square impl, "
        "Square.new method, Square.K variable, square macro, tests module, tests.it_works function"
    )  # an impl's members belong to its type; `mod external;` defines nothing here


def test_cpp_definitions_through_namespaces_and_templates() -> None:
    assert model("cpp", CPP) == (
        "LIMIT macro, Circle class, Circle.Circle method, Circle.area method, Circle.radius_ variable, "
        "max_of function, Real type, c_api function, Vec type, vec class, Vec.x variable, "
        "Vec.y variable, counter variable, ptr variable"
    )  # `Circle::area` out of the class: not a new name
    max_of = next(d for d in top_level(root("cpp", CPP).named_children, "cpp") if d.name == "max_of")
    assert max_of.outer.type == "template_declaration" and max_of.outer.start_point[0] == 14


def test_a_node_defines_nothing_outside_the_known_languages() -> None:
    tree = root("python", PY)
    assert declared(tree.named_children[1], "java") == [] and list(walk(tree, "java")) == []


@pytest.mark.parametrize("lang", ["python", "typescript", "go", "rust"])
def test_every_definition_actions_can_select_is_one_context_lists(lang: str) -> None:
    text = SAMPLES[lang]
    src = Source.from_text(text, lang)
    found = list(walk(src.root, lang))
    top = list(top_level(src.root.named_children, lang))
    outlines = extract_definitions(lang, src.root)
    targets = [make_target(src, node) for node in definitions(src)]
    compared = 0
    for target in targets:
        d = next(d for d in found if d.node == target.node)  # the model's definition, same name and lines
        assert (d.name, target.start_line, target.end_line) == (target.name, d.node.start_point[0], last_row(d.node))
        if d not in top or d.kind in (METHOD, IMPL, MODULE):
            continue  # members: context shows them in their type's outline
        if next(first for first in top if first.name == d.name) != d:
            continue  # an overload's implementation: context keeps a name's first definition
        outline = outlines[target.name]
        assert target.first_line <= outline.line <= outline.end <= target.end_line
        # the same lines, but for a name of a Go group (context shows its spec; actions, the group)
        assert outline.end == target.end_line or len(declared(target.node, lang)) > 1
        compared += 1
    assert len(targets) > compared >= 2


@pytest.mark.parametrize("lang", SAMPLES)
def test_context_lists_the_models_top_level_names(lang: str) -> None:
    tree = root(lang, SAMPLES[lang])
    names = {d.name for d in top_level(tree.named_children, lang) if d.kind not in (METHOD, IMPL, MODULE)}
    listed = set(extract_definitions(lang, tree)) - {"default"}  # `export default X`: X under another name
    assert listed == names
