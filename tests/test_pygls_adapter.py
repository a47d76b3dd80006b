"""The pygls adapter's own helpers (the pygls members it relies on are checked in test_contracts)."""

from __future__ import annotations

from collections import namedtuple

from codellama_ls.lsp.adapter import plain_params

# How pygls hands over params of custom methods and command arguments: namedtuple-like objects.
Obj = namedtuple("Obj", ["uri", "range"])
Pos = namedtuple("Pos", ["line", "character"])


def test_plain_params_unwraps_pygls_objects_at_any_depth() -> None:
    value = {"outer": Obj("file:///a.py", [Pos(1, 2), {"end": Pos(3, 4)}]), "n": None}
    assert plain_params(value) == {
        "outer": {"uri": "file:///a.py", "range": [{"line": 1, "character": 2}, {"end": {"line": 3, "character": 4}}]},
        "n": None,
    }
    assert plain_params([1, "a", None]) == [1, "a", None]
    assert plain_params(None) is None
