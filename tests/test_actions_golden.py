"""Golden cases for the code actions: a document, a canned Code Llama - Instruct answer, the document after.

Each case is what a user would see: the text of the changed file after the action's edits are
applied (the test file, for unit tests). Markers in ``doc``: ``█`` the cursor; ``«`` ``»`` the
diagnostic range (Fix) or the selection (Edit). Answers are written like the model's: prose
around the code, several code blocks, a changed copy of the code, a trailing ``</s>``.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from codellama_ls.actions import (
    ActionPlan,
    Diagnostic,
    apply_edits,
    plan_docstring,
    plan_edit,
    plan_fix,
    plan_tests,
    source,
)

CURSOR, START, END = "█", "«", "»"


@dataclass
class Case:
    id: str
    kind: str  # docstring, tests, fix, edit
    lang: str  # LSP languageId
    path: str  # the document's file name (in a temporary folder)
    doc: str
    answer: str
    expected: str  # the changed file after the edits
    message: str = ""  # Fix: the diagnostic
    instruction: str = ""  # Edit
    existing: str | None = None  # tests: the test file already there
    files: tuple[str, ...] = ()  # tests: other files and folders that exist (``tests/``)
    test_path: str = ""  # tests: where the tests must go, relative to the document's folder
    crlf: bool = False  # the documents use CRLF line endings
    tabs: bool = False  # "    " in doc/existing/expected stands for a tab

    def text(self, value: str) -> str:
        value = textwrap.dedent(value).lstrip("\n")
        if self.tabs:
            value = "\n".join(_tabs(line) for line in value.split("\n"))
        return value.replace("\n", "\r\n") if self.crlf else value


def _tabs(line: str) -> str:
    stripped = line.lstrip(" ")
    return "\t" * ((len(line) - len(stripped)) // 4) + stripped


def strip_markers(text: str) -> tuple[str, tuple[int, int], tuple[int, int]]:
    """The text without markers, and the (line, index) of the cursor or of the range's ends."""
    positions: dict[str, tuple[int, int]] = {}
    clean: list[str] = []
    line, col = 0, 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in (CURSOR, START, END):
            positions[ch] = (line, col)
        else:
            clean.append(ch)
            if ch == "\n" or (ch == "\r" and text[i + 1 : i + 2] != "\n"):
                line, col = line + 1, 0
            elif ch != "\r":
                col += 1
        i += 1
    if CURSOR in positions:
        return "".join(clean), positions[CURSOR], positions[CURSOR]
    return "".join(clean), positions[START], positions[END]


CASES: list[Case] = []


def case(**kwargs: object) -> None:
    CASES.append(Case(**kwargs))  # type: ignore[arg-type]


# == Write docstring ===============================================================================

case(
    id="py-function-answer-is-a-changed-copy",
    kind="docstring",
    lang="python",
    path="calc.py",
    doc="""
        import math


        def hyp(a, b):
            █return math.sqrt(a * a + b * b)
        """,
    answer='''Sure! Here is the function with a docstring:

```python
def hyp(a: float, b: float) -> float:
    """Return the hypotenuse of a right triangle.

    Args:
        a: One leg.
        b: The other leg.
    """
    return math.hypot(a, b)
```

You can call it like this:

```python
print(hyp(3, 4))
```
</s>''',
    expected='''
        import math


        def hyp(a, b):
            """Return the hypotenuse of a right triangle.

            Args:
                a: One leg.
                b: The other leg.
            """
            return math.sqrt(a * a + b * b)
        ''',
)

case(
    id="py-method-replaces-existing-docstring",
    kind="docstring",
    lang="python",
    path="shop.py",
    doc='''
        class Cart:
            def total(self):
                """Old."""
                █return sum(item.price for item in self.items)
        ''',
    answer='''```python
"""Return the sum of the prices of the items in the cart."""
```</s>''',
    expected='''
        class Cart:
            def total(self):
                """Return the sum of the prices of the items in the cart."""
                return sum(item.price for item in self.items)
        ''',
)

case(
    id="py-class-answer-copies-class-and-methods",
    kind="docstring",
    lang="python",
    path="stack.py",
    doc="""
        class █Stack:
            def __init__(self):
                self.items = []

            def push(self, item):
                self.items.append(item)
        """,
    answer='''Here's a docstring for the `Stack` class:
```python
class Stack:
    """A last-in, first-out collection."""

    def __init__(self):
        """Create an empty stack."""
        self.items = []

    def push(self, item):
        self.items.append(item)
```
The docstring explains what the class is for.</s>''',
    expected='''
        class Stack:
            """A last-in, first-out collection."""

            def __init__(self):
                self.items = []

            def push(self, item):
                self.items.append(item)
        ''',
)

case(
    id="py-one-line-function-plain-text-answer",
    kind="docstring",
    lang="python",
    path="util.py",
    doc="""
        def ident(x): return █x
        """,
    answer="Return x unchanged.</s>",
    expected='''
        def ident(x):
            """Return x unchanged."""
            return x
        ''',
)

case(
    id="py-decorated-multiline-signature-cursor-on-decorator",
    kind="docstring",
    lang="python",
    path="api.py",
    doc="""
        @app.ro█ute("/items")
        @login_required
        def list_items(
            request,
            limit=10,
        ):
            # newest first
            return Item.objects.order_by("-created")[:limit]
        """,
    answer='''```python
@app.route("/items")
@login_required
def list_items(request, limit=10):
    """List the newest items.

    :param request: The HTTP request.
    :param limit: How many items to return.
    """
    return Item.objects.all()[:limit]
```''',
    expected='''
        @app.route("/items")
        @login_required
        def list_items(
            request,
            limit=10,
        ):
            """List the newest items.

            :param request: The HTTP request.
            :param limit: How many items to return.
            """
            # newest first
            return Item.objects.order_by("-created")[:limit]
        ''',
)

case(
    id="py-tab-indented-document",
    kind="docstring",
    lang="python",
    path="tabs.py",
    tabs=True,
    doc="""
        class Parser:
            def parse(self, text):
                █for line in text.splitlines():
                    yield line.split()
        """,
    answer='''```python
    def parse(self, text):
        """Split each line of text into words.

        Yields:
            list[str]: The words of one line.
        """
```''',
    expected='''
        class Parser:
            def parse(self, text):
                """Split each line of text into words.

                Yields:
                    list[str]: The words of one line.
                """
                for line in text.splitlines():
                    yield line.split()
        ''',
)

case(
    id="py-crlf-document-stays-crlf",
    kind="docstring",
    lang="python",
    path="crlf.py",
    crlf=True,
    doc="""
        def area(w, h):
            return w █* h
        """,
    answer='''The docstring:

```python
"""Return the area of a w by h rectangle.

Both sides must be in the same unit.
"""
```''',
    expected='''
        def area(w, h):
            """Return the area of a w by h rectangle.

            Both sides must be in the same unit.
            """
            return w * h
        ''',
)

case(
    id="py-nested-function-is-the-target",
    kind="docstring",
    lang="python",
    path="deco.py",
    doc="""
        def retry(times):
            def wrap(fn):
                █return fn
            return wrap
        """,
    answer='''```python
def retry(times):
    """Retry a function."""
    def wrap(fn):
        """Return fn as it is."""
        return fn
    return wrap
```''',
    expected='''
        def retry(times):
            def wrap(fn):
                """Return fn as it is."""
                return fn
            return wrap
        ''',
)

case(
    id="js-function-jsdoc-from-changed-copy",
    kind="docstring",
    lang="javascript",
    path="math.js",
    doc="""
        const PI = 3.14;

        function area(r) {
          █return PI * r * r;
        }
        """,
    answer="""Here is the documented function:

```javascript
/**
 * Computes the area of a circle.
 * @param {number} r - The radius.
 * @returns {number} The area.
 */
function area(r) {
  return Math.PI * r ** 2;
}
```

```bash
node math.js
```
</s>""",
    expected="""
        const PI = 3.14;

        /**
         * Computes the area of a circle.
         * @param {number} r - The radius.
         * @returns {number} The area.
         */
        function area(r) {
          return PI * r * r;
        }
        """,
)

case(
    id="js-exported-arrow-function-doc-above-export",
    kind="docstring",
    lang="javascript",
    path="fmt.js",
    doc="""
        export const shout = (s) => █s.toUpperCase() + "!";
        """,
    answer="""```js
/**
   * Upper-cases a string and adds an exclamation mark.
   * @param {string} s
   */
```""",
    expected="""
        /**
         * Upper-cases a string and adds an exclamation mark.
         * @param {string} s
         */
        export const shout = (s) => s.toUpperCase() + "!";
        """,
)

case(
    id="js-method-replaces-old-jsdoc",
    kind="docstring",
    lang="javascript",
    path="queue.js",
    doc="""
        class Queue {
          /** old */
          push(item) {
            this.items.push(█item);
          }
        }
        """,
    answer="""Sure:

```javascript
class Queue {
  /**
   * Adds an item at the end of the queue.
   * @param {*} item
   */
  push(item) {
    this.items.push(item);
    return this;
  }
}
```""",
    expected="""
        class Queue {
          /**
           * Adds an item at the end of the queue.
           * @param {*} item
           */
          push(item) {
            this.items.push(item);
          }
        }
        """,
)

case(
    id="ts-decorated-method-doc-above-decorator",
    kind="docstring",
    lang="typescript",
    path="user.service.ts",
    doc="""
        export class UserService {
          @Get(":id")
          find(id: string): User {
            return this.repo.get(█id);
          }
        }
        """,
    answer="""```typescript
@Get(":id")
/**
 * Finds a user by id.
 * @param id - The user's id.
 * @returns The user.
 */
find(id: string): User {
  return this.repo.get(id)!;
}
```""",
    expected="""
        export class UserService {
          /**
           * Finds a user by id.
           * @param id - The user's id.
           * @returns The user.
           */
          @Get(":id")
          find(id: string): User {
            return this.repo.get(id);
          }
        }
        """,
)

case(
    id="ts-decorated-exported-class",
    kind="docstring",
    lang="typescript",
    path="app.component.ts",
    doc="""
        import { Component } from "@angular/core";

        @Component({ selector: "app-root" })
        export class █AppComponent {
          title = "app";
        }
        """,
    answer="""The class documentation:

```ts
/** The root component of the application. */
```

Angular picks it up through the decorator.""",
    expected="""
        import { Component } from "@angular/core";

        /** The root component of the application. */
        @Component({ selector: "app-root" })
        export class AppComponent {
          title = "app";
        }
        """,
)

case(
    id="ts-plain-text-answer-is-wrapped",
    kind="docstring",
    lang="typescript",
    path="sum.ts",
    doc="""
        export function sum(xs: number[]): number {
          return xs.reduce((a, b) => a + b, █0);
        }
        """,
    answer="""Adds up all numbers in xs.
Returns 0 for an empty array.</s>""",
    expected="""
        /**
         * Adds up all numbers in xs.
         * Returns 0 for an empty array.
         */
        export function sum(xs: number[]): number {
          return xs.reduce((a, b) => a + b, 0);
        }
        """,
)

case(
    id="tsx-component",
    kind="docstring",
    lang="typescriptreact",
    path="Greeting.tsx",
    doc="""
        export function Greeting({ name }: { name: string }) {
          return <h1>Hello, {█name}!</h1>;
        }
        """,
    answer="""```tsx
/**
 * Greets someone by name.
 * @param props.name - Who to greet.
 */
export function Greeting({ name }: Props) {
  return <h1>Hi, {name}!</h1>;
}
```""",
    expected="""
        /**
         * Greets someone by name.
         * @param props.name - Who to greet.
         */
        export function Greeting({ name }: { name: string }) {
          return <h1>Hello, {name}!</h1>;
        }
        """,
)

case(
    id="go-function-doc-from-changed-copy",
    kind="docstring",
    lang="go",
    path="calc.go",
    tabs=True,
    doc="""
        package calc

        func Max(a, b int) int {
            if a > b {
                █return a
            }
            return b
        }
        """,
    answer="""Here you go:

```go
// Max returns the larger of a and b.
// When they are equal it returns b.
func Max(a, b int) int {
	if a >= b {
		return a
	}
	return b
}
```

It follows the Go doc comment conventions.</s>""",
    expected="""
        package calc

        // Max returns the larger of a and b.
        // When they are equal it returns b.
        func Max(a, b int) int {
            if a > b {
                return a
            }
            return b
        }
        """,
)

case(
    id="go-method-replaces-old-comment",
    kind="docstring",
    lang="go",
    path="stack.go",
    tabs=True,
    doc="""
        package stack

        // push it
        func (s *Stack) █Push(v int) {
            s.items = append(s.items, v)
        }
        """,
    answer="""```go
// Push adds v on top of the stack.
```""",
    expected="""
        package stack

        // Push adds v on top of the stack.
        func (s *Stack) Push(v int) {
            s.items = append(s.items, v)
        }
        """,
)

case(
    id="go-plain-text-answer-is-wrapped",
    kind="docstring",
    lang="go",
    path="greet.go",
    tabs=True,
    doc="""
        package greet

        import "fmt"

        func Hello(name string) string {
            return fmt.Sprintf("Hello, %s", █name)
        }
        """,
    answer="""Hello returns a greeting for name.

It never fails.""",
    expected="""
        package greet

        import "fmt"

        // Hello returns a greeting for name.
        //
        // It never fails.
        func Hello(name string) string {
            return fmt.Sprintf("Hello, %s", name)
        }
        """,
)

case(
    id="rust-fn-doc-above-attributes",
    kind="docstring",
    lang="rust",
    path="lib.rs",
    doc="""
        #[inline]
        #[must_use]
        pub fn square(x: i32) -> i32 {
            x █* x
        }
        """,
    answer="""Here is the function with documentation:

```rust
/// Returns the square of `x`.
///
/// # Examples
///
/// ```
/// assert_eq!(square(3), 9);
/// ```
#[inline]
pub fn square(x: i64) -> i64 {
    x.pow(2)
}
```</s>""",
    expected="""
        /// Returns the square of `x`.
        ///
        /// # Examples
        ///
        /// ```
        /// assert_eq!(square(3), 9);
        /// ```
        #[inline]
        #[must_use]
        pub fn square(x: i32) -> i32 {
            x * x
        }
        """,
)

case(
    id="rust-impl-method-replaces-doc-among-attributes",
    kind="docstring",
    lang="rust",
    path="point.rs",
    doc="""
        impl Point {
            /// old
            #[inline]
            /// older
            pub fn norm(&self) -> f64 {
                (self.x * self.x + self.y * █self.y).sqrt()
            }
        }
        """,
    answer="""```rust
impl Point {
    /// Returns the distance from the origin.
    pub fn norm(&self) -> f64 {
        self.x.hypot(self.y)
    }
}
```""",
    expected="""
        impl Point {
            /// Returns the distance from the origin.
            #[inline]
            pub fn norm(&self) -> f64 {
                (self.x * self.x + self.y * self.y).sqrt()
            }
        }
        """,
)

case(
    id="rust-struct-with-derive",
    kind="docstring",
    lang="rust",
    path="config.rs",
    doc="""
        use std::path::PathBuf;

        #[derive(Debug, Clone)]
        pub struct █Config {
            pub root: PathBuf,
        }
        """,
    answer="""The struct documentation:

```rust
/// Settings read at start-up.
///
/// `root` is the folder everything else is relative to.
```""",
    expected="""
        use std::path::PathBuf;

        /// Settings read at start-up.
        ///
        /// `root` is the folder everything else is relative to.
        #[derive(Debug, Clone)]
        pub struct Config {
            pub root: PathBuf,
        }
        """,
)


# == Write unit tests ==============================================================================

case(
    id="py-tests-new-file-beside-module-copy-dropped",
    kind="tests",
    lang="python",
    path="calc.py",
    doc="""
        def add(a, b):
            return █a + b
        """,
    answer="""Here are some tests:

```python
import pytest
from calc import add


def add(a, b):
    return a + b


def test_add_integers():
    assert add(2, 3) == 5


@pytest.mark.parametrize("a,b", [(1.5, 2.5), (-1, 1)])
def test_add_is_commutative(a, b):
    assert add(a, b) == add(b, a)
```

Run them with `pytest`.</s>""",
    test_path="test_calc.py",
    expected="""
        import pytest
        from calc import add


        def test_add_integers():
            assert add(2, 3) == 5


        @pytest.mark.parametrize("a,b", [(1.5, 2.5), (-1, 1)])
        def test_add_is_commutative(a, b):
            assert add(a, b) == add(b, a)
        """,
)

case(
    id="py-tests-existing-file-imports-merged-name-clash-renamed",
    kind="tests",
    lang="python",
    path="calc.py",
    doc="""
        def add(a, b):
            return a + b


        def sub(a, b):
            return █a - b
        """,
    existing='''
        """Tests for calc."""
        from calc import add


        def test_sub():
            assert True
        ''',
    answer="""```python
import pytest
from calc import add, sub


def test_sub():
    assert sub(5, 3) == 2


def test_sub_negative():
    with pytest.raises(AssertionError):
        assert sub(1, 2) > 0
```""",
    test_path="test_calc.py",
    expected='''
        """Tests for calc."""
        from calc import add
        import pytest
        from calc import sub


        def test_sub():
            assert True


        def test_sub_2():
            assert sub(5, 3) == 2


        def test_sub_negative():
            with pytest.raises(AssertionError):
                assert sub(1, 2) > 0
        ''',
)

case(
    id="py-tests-into-tests-folder-import-added",
    kind="tests",
    lang="python",
    path="text.py",
    files=("tests/",),
    doc="""
        def slug(title):
            █return "-".join(title.lower().split())
        """,
    answer="""```python
def test_slug():
    assert slug("Hello World") == "hello-world"
```""",
    test_path="tests/test_text.py",
    expected="""
        from text import slug


        def test_slug():
            assert slug("Hello World") == "hello-world"
        """,
)

case(
    id="py-tests-method-imports-its-class-existing-imports-kept",
    kind="tests",
    lang="python",
    path="shop.py",
    doc="""
        class Cart:
            def total(self):
                █return sum(self.prices)
        """,
    existing="""
        import pytest

        from shop import Cart


        @pytest.fixture
        def cart():
            return Cart()
        """,
    answer="""Sure, here is a test for `Cart.total`:

```python
import pytest
from shop import Cart


class Cart:
    def total(self):
        return sum(self.prices)


def test_total(cart):
    cart.prices = [1, 2]
    assert cart.total() == 3
```""",
    test_path="test_shop.py",
    expected="""
        import pytest

        from shop import Cart


        @pytest.fixture
        def cart():
            return Cart()


        def test_total(cart):
            cart.prices = [1, 2]
            assert cart.total() == 3
        """,
)

case(
    id="py-tests-existing-crlf-file",
    kind="tests",
    lang="python",
    path="geo.py",
    crlf=True,
    doc="""
        def perimeter(w, h):
            return 2 * (w + █h)
        """,
    existing="""
        from geo import perimeter
        """,
    answer="""```python
from geo import perimeter

def test_perimeter():
    assert perimeter(2, 3) == 10
```""",
    test_path="test_geo.py",
    expected="""
        from geo import perimeter


        def test_perimeter():
            assert perimeter(2, 3) == 10
        """,
)

case(
    id="js-tests-new-file-skips-shell-block",
    kind="tests",
    lang="javascript",
    path="math.js",
    doc="""
        export function clamp(x, lo, hi) {
          return Math.min(hi, Math.max(lo, █x));
        }
        """,
    answer="""First install Jest:

```bash
npm install --save-dev jest
```

Then add this test file:

```javascript
import { clamp } from './math';

describe('clamp', () => {
  test('keeps values inside the range', () => {
    expect(clamp(5, 0, 10)).toBe(5);
  });

  test('clamps values outside', () => {
    expect(clamp(-1, 0, 10)).toBe(0);
  });
});
```
</s>""",
    test_path="math.test.js",
    expected="""
        import { clamp } from './math';

        describe('clamp', () => {
          test('keeps values inside the range', () => {
            expect(clamp(5, 0, 10)).toBe(5);
          });

          test('clamps values outside', () => {
            expect(clamp(-1, 0, 10)).toBe(0);
          });
        });
        """,
)

case(
    id="ts-tests-existing-file-missing-import-added",
    kind="tests",
    lang="typescript",
    path="range.ts",
    doc="""
        export function range(n: number): number[] {
          return [...Array(n).keys()];
        }

        export function sum(xs: number[]): number {
          return xs.reduce((a, b) => a + █b, 0);
        }
        """,
    existing="""
        import { range } from './range';

        test('range', () => {
          expect(range(3)).toEqual([0, 1, 2]);
        });
        """,
    answer="""```typescript
import { range } from './range';
import { sum } from './range';

export function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

test('sum', () => {
  expect(sum(range(4))).toBe(6);
});
```""",
    test_path="range.test.ts",
    expected="""
        import { range } from './range';
        import { sum } from './range';

        test('range', () => {
          expect(range(3)).toEqual([0, 1, 2]);
        });

        test('sum', () => {
          expect(sum(range(4))).toBe(6);
        });
        """,
)

case(
    id="go-tests-new-file-package-from-source",
    kind="tests",
    lang="go",
    path="calc.go",
    tabs=True,
    doc="""
        package calc

        func Add(a, b int) int {
            return a █+ b
        }
        """,
    answer="""```go
package main

import (
	"testing"
)

func Add(a, b int) int {
	return a + b
}

func TestAdd(t *testing.T) {
	if got := Add(2, 3); got != 5 {
		t.Errorf("Add(2, 3) = %d, want 5", got)
	}
}
```""",
    test_path="calc_test.go",
    expected="""
        package calc

        import "testing"

        func TestAdd(t *testing.T) {
            if got := Add(2, 3); got != 5 {
                t.Errorf("Add(2, 3) = %d, want 5", got)
            }
        }
        """,
)

case(
    id="go-tests-existing-file-import-block-and-renamed-test",
    kind="tests",
    lang="go",
    path="calc.go",
    tabs=True,
    doc="""
        package calc

        func Split(s string) []string {
            return strings.Fields(█s)
        }
        """,
    existing="""
        package calc

        import (
            "testing"
        )

        func TestSplit(t *testing.T) {}
        """,
    answer="""Here is a table-driven test:

```go
package calc

import (
	"reflect"
	"testing"
)

func TestSplit(t *testing.T) {
	got := Split("a b")
	if !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Fatal(got)
	}
}
```""",
    test_path="calc_test.go",
    expected="""
        package calc

        import (
            "testing"
            "reflect"
        )

        func TestSplit(t *testing.T) {}

        func TestSplit2(t *testing.T) {
            got := Split("a b")
            if !reflect.DeepEqual(got, []string{"a", "b"}) {
                t.Fatal(got)
            }
        }
        """,
)

case(
    id="rust-tests-new-module-appended",
    kind="tests",
    lang="rust",
    path="lib.rs",
    doc="""
        pub fn double(x: u32) -> u32 {
            x █* 2
        }
        """,
    answer="""```rust
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles() {
        assert_eq!(double(4), 8);
    }
}
```""",
    expected="""
        pub fn double(x: u32) -> u32 {
            x * 2
        }

        #[cfg(test)]
        mod tests {
            use super::*;

            #[test]
            fn doubles() {
                assert_eq!(double(4), 8);
            }
        }
        """,
)

case(
    id="rust-tests-added-inside-existing-module",
    kind="tests",
    lang="rust",
    path="lib.rs",
    doc="""
        pub fn half(x: u32) -> u32 {
            x █/ 2
        }

        #[cfg(test)]
        mod tests {
            use super::*;

            #[test]
            fn halves() {
                assert_eq!(half(4), 2);
            }
        }
        """,
    answer="""Add these tests:

```rust
mod tests {
    use super::*;

    #[test]
    fn halves() {
        assert_eq!(half(5), 2);
    }

    #[test]
    fn zero() {
        assert_eq!(half(0), 0);
    }
}
```""",
    expected="""
        pub fn half(x: u32) -> u32 {
            x / 2
        }

        #[cfg(test)]
        mod tests {
            use super::*;

            #[test]
            fn halves() {
                assert_eq!(half(4), 2);
            }

            #[test]
            fn halves_2() {
                assert_eq!(half(5), 2);
            }

            #[test]
            fn zero() {
                assert_eq!(half(0), 0);
            }
        }
        """,
)

case(
    id="rust-tests-bare-test-functions-copy-dropped",
    kind="tests",
    lang="rust",
    path="lib.rs",
    doc="""
        pub fn is_even(n: i64) -> bool {
            n % 2 █== 0
        }
        """,
    answer="""```rust
pub fn is_even(n: i64) -> bool {
    n % 2 == 0
}

#[test]
fn even_numbers() {
    assert!(is_even(2));
}

#[test]
fn odd_numbers() {
    assert!(!is_even(3));
}
```</s>""",
    expected="""
        pub fn is_even(n: i64) -> bool {
            n % 2 == 0
        }

        #[cfg(test)]
        mod tests {
            use super::*;

            #[test]
            fn even_numbers() {
                assert!(is_even(2));
            }

            #[test]
            fn odd_numbers() {
                assert!(!is_even(3));
            }
        }
        """,
)


# == Fix ===========================================================================================

case(
    id="py-fix-answer-is-whole-function-copy",
    kind="fix",
    lang="python",
    path="orders.py",
    message='"lenght" is not a known attribute of "list"',
    doc="""
        def average(prices):
            \"\"\"Mean price.\"\"\"
            if not prices:
                return 0
            return sum(prices) / «prices.lenght»
        """,
    answer="""The list has no `lenght` attribute; use `len()` instead:

```python
def average(prices):
    \"\"\"Mean price.\"\"\"
    if not prices:
        return 0
    return sum(prices) / len(prices)
```

This returns the mean, or 0 for an empty list.</s>""",
    expected="""
        def average(prices):
            \"\"\"Mean price.\"\"\"
            if not prices:
                return 0
            return sum(prices) / len(prices)
        """,
)

case(
    id="py-fix-answer-is-only-the-statement",
    kind="fix",
    lang="python",
    path="io_utils.py",
    message='"f" is possibly unbound',
    doc="""
        class Reader:
            def read(self, path):
                try:
                    f = open(path)
                    return f.read()
                finally:
                    «f».close()
        """,
    answer="""```python
with open(path) as f:
    return f.read()
```""",
    expected="""
        class Reader:
            def read(self, path):
                try:
                    f = open(path)
                    return f.read()
                finally:
                    f.close()
        """.replace(
        """                try:
                    f = open(path)
                    return f.read()
                finally:
                    f.close()
""",
        """                with open(path) as f:
                    return f.read()
""",
    ),
)

case(
    id="py-fix-on-the-signature-line-answer-is-that-line",
    kind="fix",
    lang="python",
    path="typed.py",
    message="Missing return type annotation",
    doc="""
        def «scale»(values, factor):
            out = [v * factor for v in values]
            return out
        """,
    answer="""```python
def scale(values: list[float], factor: float) -> list[float]:
```""",
    expected="""
        def scale(values: list[float], factor: float) -> list[float]:
            out = [v * factor for v in values]
            return out
        """,
)

case(
    id="py-fix-method-comes-back-without-its-class",
    kind="fix",
    lang="python",
    path="account.py",
    message='Operator "+" not supported for "None"',
    doc="""
        class Account:
            \"\"\"A bank account.\"\"\"

            def deposit(self, amount):
                self.balance = «self.balance» + amount
                return self.balance
        """,
    answer="""The balance may still be None:

```python
def deposit(self, amount):
    self.balance = (self.balance or 0) + amount
    return self.balance
```</s>""",
    expected="""
        class Account:
            \"\"\"A bank account.\"\"\"

            def deposit(self, amount):
                self.balance = (self.balance or 0) + amount
                return self.balance
        """,
)

case(
    id="py-fix-before-and-after-blocks",
    kind="fix",
    lang="python",
    path="names.py",
    message='Import "colections" could not be resolved',
    doc="""
        import «colections»

        COUNTS = colections.Counter()
        """,
    answer="""The module name is misspelled.

Before:
```python
import colections
```

After:
```python
import collections
```
</s>""",
    expected="""
        import collections

        COUNTS = colections.Counter()
        """,
)

case(
    id="py-fix-elided-lines-are-kept",
    kind="fix",
    lang="python",
    path="report.py",
    message='Argument of type "int" cannot be assigned to parameter "s" of type "str"',
    doc="""
        def report(rows):
            lines = []
            for row in rows:
                lines.append(row.name)
                lines.append(row.total)
            header = "Report"
            return header + "\\n" + "\\n".join(«lines»)
        """,
    answer="""```python
def report(rows):
    lines = []
    # ... rest of the loop unchanged ...
    header = "Report"
    return header + "\\n" + "\\n".join(str(line) for line in lines)
```""",
    expected="""
        def report(rows):
            lines = []
            for row in rows:
                lines.append(row.name)
                lines.append(row.total)
            header = "Report"
            return header + "\\n" + "\\n".join(str(line) for line in lines)
        """,
)

case(
    id="py-fix-syntax-error-line-and-neighbours",
    kind="fix",
    lang="python",
    path="broken.py",
    message='Expected ":"',
    doc="""
        def greet(name)«»
            print("hi", name)

        greet("x")
        """,
    answer="""You forgot the colon:

```python
def greet(name):
    print("hi", name)
```""",
    expected="""
        def greet(name):
            print("hi", name)

        greet("x")
        """,
)

case(
    id="py-fix-top-level-statement",
    kind="fix",
    lang="python",
    path="settings.py",
    message='"DEBUG" is not defined',
    doc="""
        import os

        LEVEL = "debug" if «DEBUG» else "info"
        """,
    answer="""```python
LEVEL = "debug" if os.environ.get("DEBUG") else "info"
```""",
    expected="""
        import os

        LEVEL = "debug" if os.environ.get("DEBUG") else "info"
        """,
)

_LONG_BODY = "\n".join(f"    step_{i} = {i}" for i in range(45))

case(
    id="py-fix-long-function-only-statement-replaced",
    kind="fix",
    lang="python",
    path="long.py",
    message='"totl" is not defined',
    doc="def run():\n" + _LONG_BODY + "\n    return «totl»\n",
    answer="""```python
return step_44
```""",
    expected="def run():\n" + _LONG_BODY + "\n    return step_44\n",
)

case(
    id="js-fix-whole-function-copy-with-other-block",
    kind="fix",
    lang="javascript",
    path="names.js",
    message="Property 'lenght' does not exist on type 'string[]'.",
    doc="""
        function count(names) {
          if (!names) {
            return 0;
          }
          return names.«lenght»;
        }
        """,
    answer="""There's a typo. Here is the fixed function:

```javascript
function count(names) {
  if (!names) {
    return 0;
  }
  return names.length;
}
```

And a quick check:

```javascript
console.log(count(["a"]));
```""",
    expected="""
        function count(names) {
          if (!names) {
            return 0;
          }
          return names.length;
        }
        """,
)

case(
    id="ts-fix-method-in-class",
    kind="fix",
    lang="typescript",
    path="store.ts",
    message="Type 'string | undefined' is not assignable to type 'string'.",
    doc="""
        export class Store {
          private data = new Map<string, string>();

          get(key: string): string {
            return «this.data.get(key)»;
          }
        }
        """,
    answer="""```ts
get(key: string): string {
  return this.data.get(key) ?? "";
}
```""",
    expected="""
        export class Store {
          private data = new Map<string, string>();

          get(key: string): string {
            return this.data.get(key) ?? "";
          }
        }
        """,
)

case(
    id="go-fix-spaces-answer-into-tab-document",
    kind="fix",
    lang="go",
    path="files.go",
    tabs=True,
    message="err declared and not used",
    doc="""
        package files

        func Size(path string) int64 {
            info, «err» := os.Stat(path)
            return info.Size()
        }
        """,
    answer="""You need to handle the error:

```go
func Size(path string) int64 {
    info, err := os.Stat(path)
    if err != nil {
        return -1
    }
    return info.Size()
}
```""",
    expected="""
        package files

        func Size(path string) int64 {
            info, err := os.Stat(path)
            if err != nil {
                return -1
            }
            return info.Size()
        }
        """,
)

case(
    id="rust-fix-borrow",
    kind="fix",
    lang="rust",
    path="main.rs",
    message="borrow of moved value: `names`",
    doc="""
        fn main() {
            let names = vec!["a".to_string()];
            let first = names;
            println!("{:?} {:?}", first, «names»);
        }
        """,
    answer="""The vector is moved into `first`. Clone it instead:

```rust
fn main() {
    let names = vec!["a".to_string()];
    let first = names.clone();
    println!("{:?} {:?}", first, names);
}
```

Alternatively you could borrow it with `&names`.</s>""",
    expected="""
        fn main() {
            let names = vec!["a".to_string()];
            let first = names.clone();
            println!("{:?} {:?}", first, names);
        }
        """,
)


# == Edit selection ================================================================================

case(
    id="py-edit-selected-lines",
    kind="edit",
    lang="python",
    path="loop.py",
    instruction="use a list comprehension",
    doc="""
        class Report:
            def names(self):
                «result = []
                for row in self.rows:
                    result.append(row.name)
                »return result
        """,
    answer="""```python
result = [row.name for row in self.rows]
```""",
    expected="""
        class Report:
            def names(self):
                result = [row.name for row in self.rows]
                return result
        """,
)

case(
    id="py-edit-answer-is-whole-function",
    kind="edit",
    lang="python",
    path="temp.py",
    instruction="round to one decimal",
    doc="""
        def to_fahrenheit(c):
            \"\"\"Convert.\"\"\"
            «f = c * 9 / 5 + 32»
            return f
        """,
    answer="""Here is the updated function:

```python
def to_fahrenheit(c):
    \"\"\"Convert.\"\"\"
    f = round(c * 9 / 5 + 32, 1)
    return f
```""",
    expected="""
        def to_fahrenheit(c):
            \"\"\"Convert.\"\"\"
            f = round(c * 9 / 5 + 32, 1)
            return f
        """,
)

case(
    id="py-edit-unfenced-answer-with-prose",
    kind="edit",
    lang="python",
    path="greet.py",
    instruction="use an f-string",
    doc="""
        def greet(name):
            «print("Hello, " + name + "!")»
        """,
    answer="""Sure, here it is:
print(f"Hello, {name}!")
This is shorter and easier to read.</s>""",
    expected="""
        def greet(name):
            print(f"Hello, {name}!")
        """,
)

case(
    id="js-edit-part-of-a-line",
    kind="edit",
    lang="javascript",
    path="price.js",
    instruction="use toFixed(2)",
    doc="""
        const label = "Total: " + «String(total)» + " EUR";
        """,
    answer="""```js
total.toFixed(2)
```""",
    expected="""
        const label = "Total: " + total.toFixed(2) + " EUR";
        """,
)

case(
    id="js-edit-part-of-a-line-answer-is-the-whole-line",
    kind="edit",
    lang="javascript",
    path="cart.js",
    instruction="round to cents",
    doc="""
        function show(total) {
          el.textContent = "Total: " + «total» + " EUR";
        }
        """,
    answer="""Here you go:

```javascript
el.textContent = "Total: " + total.toFixed(2) + " EUR";
```

`toFixed` returns a string.</s>""",
    expected="""
        function show(total) {
          el.textContent = "Total: " + total.toFixed(2) + " EUR";
        }
        """,
)

case(
    id="go-fix-answer-adds-a-block-before-the-closing-brace",
    kind="fix",
    lang="go",
    path="load.go",
    tabs=True,
    message="this value of err is never used",
    doc="""
        package load

        func Load(path string) []byte {
            data, err := os.ReadFile(path)
            «_ = err»
            return data
        }
        """,
    answer="""```go
if err != nil {
    return nil
}
```""",
    expected="""
        package load

        func Load(path string) []byte {
            data, err := os.ReadFile(path)
            if err != nil {
                return nil
            }
            return data
        }
        """,
)

case(
    id="ts-edit-crlf-lines",
    kind="edit",
    lang="typescript",
    path="users.ts",
    crlf=True,
    instruction="make it async and await the fetch",
    doc="""
        export function load(id: string) {
          «return fetch(`/users/${id}`).then((r) => r.json());»
        }
        """,
    answer="""```typescript
const response = await fetch(`/users/${id}`);
return response.json();
```""",
    expected="""
        export function load(id: string) {
          const response = await fetch(`/users/${id}`);
          return response.json();
        }
        """,
)

case(
    id="go-edit-tabs",
    kind="edit",
    lang="go",
    path="sum.go",
    tabs=True,
    instruction="use a range loop",
    doc="""
        package sum

        func Sum(xs []int) int {
            total := 0
            «for i := 0; i < len(xs); i++ {
                total += xs[i]
            }»
            return total
        }
        """,
    answer="""```go
for _, x := range xs {
  total += x
}
```""",
    expected="""
        package sum

        func Sum(xs []int) int {
            total := 0
            for _, x := range xs {
                total += x
            }
            return total
        }
        """,
)

case(
    id="rust-edit-iterator",
    kind="edit",
    lang="rust",
    path="lib.rs",
    instruction="use an iterator",
    doc="""
        pub fn total(xs: &[u32]) -> u32 {
            «let mut sum = 0;
            for x in xs {
                sum += x;
            }
            sum»
        }
        """,
    answer="""Here is the idiomatic version:

```rust
pub fn total(xs: &[u32]) -> u32 {
    xs.iter().sum()
}
```""",
    expected="""
        pub fn total(xs: &[u32]) -> u32 {
            xs.iter().sum()
        }
        """,
)


# == the harness ===================================================================================


def _plan(c: Case, tmp_path: Path) -> tuple[ActionPlan, str]:
    text, start, end = strip_markers(c.text(c.doc))
    doc_path = tmp_path / c.path
    doc_path.write_text(text, encoding="utf-8", newline="")
    for name in c.files:
        target = tmp_path / name
        target.mkdir(parents=True) if name.endswith("/") else target.write_text("")
    if c.existing is not None:
        (tmp_path / (c.test_path or c.path)).write_text(c.text(c.existing), encoding="utf-8", newline="")
    src = source(text, c.lang, doc_path)
    assert src is not None
    if c.kind == "docstring":
        plan = plan_docstring(src, *start)
    elif c.kind == "tests":
        plan = plan_tests(src, *start)
    elif c.kind == "fix":
        plan = plan_fix(src, Diagnostic(start, end, c.message))
    else:
        plan = plan_edit(src, start, end, c.instruction)
    assert plan is not None
    return plan, text


def _result(c: Case, tmp_path: Path) -> tuple[str, Path | None]:
    plan, text = _plan(c, tmp_path)
    (change,) = plan.apply(c.answer).changes
    if change.path is None:
        return apply_edits(text, change.edits), None
    assert change.create is (c.existing is None)
    before = "" if change.create else change.path.read_bytes().decode("utf-8")
    return apply_edits(before, change.edits), change.path


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_golden(c: Case, tmp_path: Path) -> None:
    result, path = _result(c, tmp_path)
    expected = c.text(c.expected)
    assert result == expected
    if c.kind == "tests" and c.lang != "rust":
        assert path == tmp_path / c.test_path
    if c.lang == "python":
        ast.parse(result)


def test_every_language_has_every_action() -> None:
    assert len(CASES) >= 40
    for lang in ("python", "javascript", "typescript", "go", "rust"):
        kinds = {c.kind for c in CASES if c.lang.removesuffix("react") == lang}
        assert kinds == {"docstring", "tests", "fix", "edit"}, lang
    assert any(c.crlf for c in CASES) and any(c.tabs for c in CASES)
