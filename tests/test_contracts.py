"""The contracts between the parts, checked where a type checker cannot see them.

- every prompt tokenizer implements ``PromptTokenizer`` (mypy checks the call sites; this
  checks the classes at run time too, so a missing member fails here with its name);
- the pygls internals ``pygls_adapter.py`` relies on still exist in the installed pygls;
- the package has no import cycle;
- no import runs up the floors (``FLOORS``).
"""

from __future__ import annotations

import ast
import importlib.metadata
from pathlib import Path

import pytest

import codellama_ls
from codellama_ls import pygls_adapter
from codellama_ls.engines.server_tokenizer import EstimatingTokenizer, ServerTokenizer
from codellama_ls.server import create_server
from codellama_ls.token_memo import MemoTokenizer
from codellama_ls.tokens import CodeTokenizer, PromptTokenizer
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
        f"pygls {version} has no {owner.__name__}.{member}: codellama_ls/pygls_adapter.py must be adapted to this "
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
        if path.name == "pygls_adapter.py":
            continue
        text = path.read_text(encoding="utf-8")
        used = [name for name in internals if f".{name}" in text]
        assert not used, f"{path.relative_to(PACKAGE)} touches pygls internals {used}: go through pygls_adapter"


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
# one above. A new top-level module or package must be given a floor here.
FLOORS: tuple[frozenset[str], ...] = (
    # foundation: settings, documents, text and language facts, tokenizers, messages to the user
    frozenset(
        {
            "",
            "redact",
            "hub",
            "config",
            "notify",
            "progress",
            "lines",
            "languages",
            "documents",
            "syntax",
            "tokens",
            "token_memo",
        }
    ),
    # what goes into a prompt: context from other files, FIM ids, text and chat forms
    frozenset({"context", "prompt", "textprompt", "instruct"}),
    # engines and the steps around them
    frozenset({"engines", "scheduler", "postprocess", "cache", "health", "acceptance"}),
    # the completion pipeline
    frozenset({"completion"}),
    # code actions and the protocol helpers they share with the server
    frozenset({"actions", "pygls_adapter", "jsonrpc", "stdio", "replies", "lsplog"}),
    # the edges: the LSP server, the command line, the evaluation harness
    frozenset({"server", "cli", "__main__", "evaluate"}),
)


def _floor_of(module: str) -> int:
    """The floor of ``codellama_ls.<top>...`` by its top-level module or package."""
    top = module.split(".")[1] if "." in module else ""
    for floor, names in enumerate(FLOORS):
        if top in names:
            return floor
    raise AssertionError(f"codellama_ls.{top} has no floor: add it to FLOORS in tests/test_contracts.py")


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
    assert _floor_of("codellama_ls.context.lsp") < _floor_of("codellama_ls.completion")
    with pytest.raises(AssertionError, match="no floor"):
        _floor_of("codellama_ls.not_a_module")


class _NullWriter:
    def close(self) -> None:
        return None

    def write(self, data: bytes) -> None:
        return None
