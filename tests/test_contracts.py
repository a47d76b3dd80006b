"""The contracts between the parts, checked where a type checker cannot see them.

- every prompt tokenizer implements ``PromptTokenizer`` (mypy checks the call sites; this
  checks the classes at run time too, so a missing member fails here with its name);
- the pygls internals ``lsp/adapter.py`` relies on still exist in the installed pygls;
- the package has no import cycle;
- no import runs up the floors (``FLOORS``).
"""

from __future__ import annotations

import ast
import importlib.metadata
from pathlib import Path

import pytest

import codellama_ls
from codellama_ls.engines.server_tokenizer import EstimatingTokenizer, ServerTokenizer
from codellama_ls.lsp import adapter as pygls_adapter
from codellama_ls.lsp.server import create_server
from codellama_ls.prompt.memo import MemoTokenizer
from codellama_ls.prompt.tokens import CodeTokenizer, PromptTokenizer
from tests.support.fake_engine import word_tokenizer

PACKAGE = Path(codellama_ls.__file__).parent


def test_every_prompt_tokenizer_implements_the_protocol() -> None:
    code = word_tokenizer()
    tokenizers = [
        code,
        MemoTokenizer(code),
        MemoTokenizer(EstimatingTokenizer()),
        ServerTokenizer(lambda route, body: [], "/tokenize"),
        EstimatingTokenizer(),
    ]
    for tok in tokenizers:
        assert isinstance(tok, PromptTokenizer), type(tok).__name__
    assert isinstance(code, CodeTokenizer) and code.exact and not EstimatingTokenizer().exact


@pytest.mark.parametrize(("owner", "member"), pygls_adapter.REQUIRED, ids=lambda v: getattr(v, "__name__", v))
def test_pygls_still_has_what_the_adapter_uses(owner: type, member: str) -> None:
    version = importlib.metadata.version("pygls")
    assert hasattr(owner, member), (
        f"pygls {version} has no {owner.__name__}.{member}: codellama_ls/lsp/adapter.py must be adapted to this "
        "pygls (and pyproject's pin moved) before it can be used"
    )


def test_pygls_instances_have_the_attributes_the_adapter_uses() -> None:
    server = create_server()
    server.protocol.set_writer(_NullWriter())
    pygls_adapter.new_stop_event(server)
    version = importlib.metadata.version("pygls")
    for where, member in pygls_adapter.REQUIRED_INSTANCE:
        obj = server if where == "server" else server.protocol
        assert hasattr(obj, member), f"pygls {version}: {type(obj).__name__} has no attribute {member}"
    assert pygls_adapter.pending_requests(server) == 0 and not pygls_adapter.is_shut_down(server)


def test_pygls_internals_are_used_in_the_adapter_only() -> None:
    internals = ("_converter", "_request_futures", "_stop_event", "_shutdown", "_send_response", "_execute_handler")
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).as_posix() == "lsp/adapter.py":
            continue
        text = path.read_text(encoding="utf-8")
        used = [name for name in internals if f".{name}" in text]
        assert not used, f"{path.relative_to(PACKAGE)} touches pygls internals {used}: go through lsp/adapter.py"


def _imports(path: Path) -> set[str]:
    """Modules of the package that ``path`` imports at module level or in functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("codellama_ls"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("codellama_ls"))
    return found


def test_no_import_cycles() -> None:
    modules = {
        ".".join(("codellama_ls", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__"): path
        for path in PACKAGE.rglob("*.py")
    }
    graph = {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}
    # A package's __init__ may import its submodules (engines/__init__ imports engine classes lazily).
    graph = {name: {m for m in deps if not name.startswith(m + ".")} for name, deps in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycle = [*stack[stack.index(dep) :], dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


# The floors of the house, bottom first: a module may import its own floor and the floors below, never
# one above. A module's floor is that of the longest name here that it is or lies in (``pipeline.cache``
# before ``pipeline``); a new module or package outside these must be given a floor here.
FLOORS: tuple[frozenset[str], ...] = (
    # foundation: settings, documents, text and language facts, messages to the user
    frozenset(
        {"", "redact", "hub", "config", "notify", "lines", "languages", "documents", "syntax", "definitions", "health"}
    ),
    # what goes into a prompt: tokenizers, FIM ids, text and chat forms, context from other files
    frozenset({"prompt", "context"}),
    # engines and the steps around them
    frozenset({"engines", "postprocess", "pipeline.scheduler", "pipeline.cache", "pipeline.acceptance"}),
    # the state every handler gets
    frozenset({"session"}),
    # the completion pipeline
    frozenset({"pipeline"}),
    # code actions (Code Llama - Instruct)
    frozenset({"actions"}),
    # the protocol edge: the only package that imports pygls
    frozenset({"lsp"}),
    # the edges: the command line, the evaluation harness
    frozenset({"cli", "__main__", "evaluate"}),
)


def _floor_of(module: str) -> int:
    """The floor of ``codellama_ls.<name>`` by the longest name in FLOORS it is or lies in."""
    name = module.removeprefix("codellama_ls").removeprefix(".")
    parts = name.split(".") if name else []
    for n in range(len(parts), -1, -1):
        prefix = ".".join(parts[:n])
        for floor, names in enumerate(FLOORS):
            if prefix in names and (n > 0 or not parts or prefix == name):
                return floor
    raise AssertionError(f"codellama_ls.{name} has no floor: add it to FLOORS in tests/test_contracts.py")


def test_only_the_lsp_package_imports_pygls() -> None:
    outside = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).parts[0] == "lsp":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if any(n == "pygls" or n.startswith("pygls.") for n in names):
                outside.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not outside, "pygls imported outside codellama_ls/lsp/: " + ", ".join(outside)


def test_no_import_runs_up_the_floors() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(("codellama_ls", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
        floor = _floor_of(name)
        for imported in sorted(_imports(path)):
            if imported == "codellama_ls.__version__":
                continue
            if _floor_of(imported) > floor:
                wrong.append(f"{name} (floor {floor}) imports {imported} (floor {_floor_of(imported)})")
    assert not wrong, "imports run up the floors:\n" + "\n".join(wrong)


def test_the_floors_test_sees_an_upward_import() -> None:
    assert _floor_of("codellama_ls.notify") < _floor_of("codellama_ls.engines.base")
    assert (
        _floor_of("codellama_ls.context.service")
        < _floor_of("codellama_ls.pipeline.completion")
        < _floor_of("codellama_ls.lsp.context")
    )
    assert _floor_of("codellama_ls.pipeline.scheduler") < _floor_of("codellama_ls.session")
    assert _floor_of("codellama_ls.session") < _floor_of("codellama_ls.pipeline.completion")
    assert _floor_of("codellama_ls.pipeline") == _floor_of("codellama_ls.pipeline.completion")
    with pytest.raises(AssertionError, match="no floor"):
        _floor_of("codellama_ls.not_a_module")


class _NullWriter:
    def close(self) -> None:
        return None

    def write(self, data: bytes) -> None:
        return None
