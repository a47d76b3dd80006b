"""Security: no network unless configured, no secret in logs or messages, no file read beyond the
configured model and tokenizer folders and the workspace folders' files that context may use, no
remote code.

Two real server sessions are recorded, each with a ``sitecustomize`` audit hook (every Python
``open`` and socket call, see ``tests/support/audit_site``) and, where strace works, ``strace`` (native
code too: the Rust tokenizers and safetensors, glibc):

- *offline*: ``HF_HUB_OFFLINE=1``, first a hub model id that is not in the (empty) cache, then a
  local model folder, with a separate tokenizer folder;
- *online*: no ``HF_HUB_OFFLINE``, a local model folder — a local folder is not a hub download.

Both run at ``--log-level DEBUG`` with canary tokens in the environment, on the command line, in
``initializationOptions`` and in ``didChangeConfiguration``, and exercise loading, completions,
prompts, status, a settings reload and ``codellama.restartEngine``. A third session
(:func:`test_workspace_reads_stay_inside_the_folders`) gives the server a workspace folder with
secrets, ignored files and symlinks leading out of it, and records every open and listing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import codellama_ls
from codellama_ls.config import Settings
from codellama_ls.engines.base import EngineError, EngineState
from codellama_ls.engines.local import LocalEngine
from tests.support.rawlsp import RawServer

pytestmark = pytest.mark.slow

AUDIT_SITE = Path(__file__).resolve().parent.parent / "support" / "audit_site"
CHECKOUT = Path(codellama_ls.__file__).resolve().parent.parent
CANARIES = {
    "HF_TOKEN": "hf_canaryEnvToken0001",
    "HUGGING_FACE_HUB_TOKEN": "hf_canaryLegacyEnv0002",
    "CODELLAMA_LS_API_TOKEN": "canary-setting-env-0003",
    "cli": "canary-cli-flag-0004",
    "init": "canary-init-options-0005",
    "config": "canary-did-change-0006",
    "wrong-type": "canary-wrong-type-0007",
    "params": "canary-in-bad-params-0008",
}


def _strace_works() -> bool:
    if not shutil.which("strace") or not sys.platform.startswith("linux"):
        return False
    probe = subprocess.run(["strace", "-f", "-qq", "-e", "trace=connect", "-o", os.devnull, "true"], check=False)
    return probe.returncode == 0


STRACE = _strace_works()


@dataclass
class Run:
    """What one recorded session left behind."""

    tmp: Path
    model: Path
    tokenizer: Path
    log: Path
    hub_configured: bool
    audit: list[list[str]] = field(default_factory=list)
    strace: list[str] = field(default_factory=list)
    stdout: bytes = b""
    stderr: str = ""
    messages: list[str] = field(default_factory=list)
    states: list[dict] = field(default_factory=list)


def audit_path() -> str:
    """PYTHONPATH: the audit hook, and the code under test first (not another editable install's)."""
    return os.pathsep.join([str(AUDIT_SITE), str(CHECKOUT)])


def wait_reload(server: RawServer) -> dict:
    """After a reload-triggering settings change: see it start (it may be quick), then end."""
    deadline = time.monotonic() + 5
    while server.status()["state"] != "loading" and time.monotonic() < deadline:
        time.sleep(0.02)
    return server.wait_state({"ready", "failed"})


def record(tmp: Path, tiny_model: Path, tokenizer_dir: Path, *, offline: bool) -> Run:
    model = tmp / "model"
    shutil.copytree(tiny_model, model)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (model / name).unlink()  # the tokenizer comes from its own configured folder
    workspace = tmp / "workspace"
    workspace.mkdir()
    (workspace / "app.py").write_text("API_KEY = 'never read from disk'\n")
    for sub in ("home", "hf", "tmp"):
        (tmp / sub).mkdir()
    run = Run(tmp, model, tokenizer_dir, tmp / "server.log", hub_configured=offline)
    env = {
        "PYTHONPATH": audit_path(),
        "CODELLAMA_AUDIT_LOG": str(tmp / "audit.log"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": str(tmp / "home"),
        "HF_HOME": str(tmp / "hf"),
        "TMPDIR": str(tmp / "tmp"),
        "HF_TOKEN": CANARIES["HF_TOKEN"],
        "HUGGING_FACE_HUB_TOKEN": CANARIES["HUGGING_FACE_HUB_TOKEN"],
        "CODELLAMA_LS_API_TOKEN": CANARIES["CODELLAMA_LS_API_TOKEN"],
    }
    env: dict[str, str | None] = {**env}
    if not offline:
        env["HF_HUB_OFFLINE"] = None  # unset
    python = None
    if STRACE:
        trace = "trace=connect,sendto,sendmsg,open,openat"
        out = str(tmp / "strace.txt")
        python = ["strace", "--seccomp-bpf", "-f", "-qq", "-s", "4096", "-e", trace, "-o", out, sys.executable]
    args = ["--log-level", "DEBUG", "--log-file", str(run.log), "--api-token", CANARIES["cli"]]
    uri = (workspace / "app.py").as_uri()
    with RawServer(args, env, stderr=tmp / "stderr.txt", python=python) as server:
        opts = {"apiToken": CANARIES["init"], "tokenizer": str(tokenizer_dir), "debounceMs": 0, "maxNewTokens": 4}
        opts["model"] = "codellama/CodeLlama-7b-hf" if offline else str(model)
        server.call(
            "initialize",
            {"processId": None, "rootUri": workspace.as_uri(), "capabilities": {}, "initializationOptions": opts},
        )
        server.notify("initialized", {})
        run.states.append(server.wait_state({"ready", "failed"}))
        server.open(uri, "import os\n\ndef main():\n    \n")
        server.inline(uri, 3, 4)
        if offline:  # now the local folder
            server.notify("workspace/didChangeConfiguration", {"settings": {"codellama": {"model": str(model)}}})
            run.states.append(wait_reload(server))
        server.notify(
            "workspace/didChangeConfiguration",
            {"settings": {"codellama": {"apiToken": CANARIES["config"]}}},  # a reload key
        )
        run.states.append(wait_reload(server))
        server.notify("workspace/didChangeConfiguration", {"settings": {"apiToken": [CANARIES["wrong-type"]]}})
        server.inline(uri, 3, 4)
        server.call("textDocument/completion", {"textDocument": {"uri": uri}, "position": {"line": 3, "character": 4}})
        server.prompt(uri, 3, 4)
        bad = {"textDocument": {"uri": uri}, "position": {"line": "x", "character": 0}, "apiToken": CANARIES["params"]}
        assert "error" in server.request("codellama/prompt", bad)
        server.call("workspace/executeCommand", {"command": "codellama.restartEngine"})
        run.states.append(server.wait_state({"ready", "failed"}))
        server.status()
        assert server.shutdown() == 0
        run.stdout = bytes(server.raw)
        run.messages = [m["message"] for m in server.notifications("window/showMessage")]
    run.stderr = (tmp / "stderr.txt").read_text(errors="replace")
    audit = tmp / "audit.log"
    run.audit = [line.split("\t") for line in audit.read_text().splitlines()] if audit.exists() else []
    if STRACE:
        run.strace = (tmp / "strace.txt").read_text(errors="replace").splitlines()
    return run


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory, tiny_model, tokenizer_dir) -> Run:
    return record(tmp_path_factory.mktemp("offline"), tiny_model, tokenizer_dir, offline=True)


@pytest.fixture(scope="module")
def online_run(tmp_path_factory, tiny_model, tokenizer_dir) -> Run:
    return record(tmp_path_factory.mktemp("online"), tiny_model, tokenizer_dir, offline=False)


@pytest.fixture(params=["offline", "online"])
def run(request) -> Run:
    return request.getfixturevalue(f"{request.param}_run")


def test_sessions_did_the_work(offline_run, online_run):
    """The recordings are worth checking: the model loaded and the audit hook saw the opens."""
    assert offline_run.states[0]["state"] == "failed" and "hf download" in offline_run.states[0]["error"]
    assert [m for m in offline_run.messages if "hf download" in m] != []
    for run in (offline_run, online_run):
        assert [s["state"] for s in run.states[-2:]] == ["ready", "ready"]
        opened = {Path(row[3]).name for row in run.audit if row[0] == "open"}
        assert {"config.json", "tokenizer.json"} <= opened


# -- network ---------------------------------------------------------------------------------
def test_no_network_from_python(run):
    sockets = [row for row in run.audit if row[0].startswith("socket.")]
    assert sockets == []


_INET = re.compile(r"sa_family=AF_INET6?\b")


@pytest.mark.skipif(not STRACE, reason="needs a working strace (Linux, ptrace allowed)")
def test_no_network_from_native_code(run):
    calls = [line for line in run.strace if re.search(r"\b(connect|sendto|sendmsg)\(", line)]
    inet = [line for line in calls if _INET.search(line)]
    assert inet == []


# -- secrets ---------------------------------------------------------------------------------
def test_secrets_never_reach_logs_or_messages(run):
    log = run.log.read_text(errors="replace")
    assert "initialization" in log and "Sending data" in log  # it is a real DEBUG log
    assert "<hidden>" in log  # the values were there to leak, and were masked
    seen = "\n".join([log, run.stdout.decode("utf-8", "replace"), run.stderr, *run.messages])
    leaked = [name for name, canary in CANARIES.items() if canary in seen]
    assert leaked == []


# -- files -----------------------------------------------------------------------------------
def _real(path: str) -> str:
    return os.path.realpath(os.path.join(os.getcwd(), path))


def _under(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def allowed_roots(run: Run) -> list[str]:
    """Where the server may open files, and why."""
    roots = [
        # the interpreter, the standard library and site-packages: imports and their data files
        *{sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix},
        str(Path(codellama_ls.__file__).parent),  # the server's own code
        # ... and its install metadata (entry points): in an editable install from a fresh clone
        # it sits beside the package, not in site-packages
        str(Path(codellama_ls.__file__).parent.parent / "codellama_ls.egg-info"),
        str(run.model),  # the configured model folder ...
        str(run.tokenizer),  # ... and tokenizer folder
        str(run.tmp / "workspace"),  # the workspace folder: ignore files, source files context shows
        "/proc",  # memory figures for codellama/status, CPU counts (torch, psutil)
        "/sys/devices/system/cpu",  # CPU topology (torch)
        "/dev",  # /dev/null, /dev/urandom, /dev/shm semaphores
    ]
    if run.hub_configured:
        roots.append(str(run.tmp / "hf"))  # a hub id was configured: its cache (HF_HOME) is looked up
    return [os.path.realpath(r) for r in roots]


def unexpected_opens(run: Run, paths: list[tuple[str, str]]) -> list[str]:
    """``paths``: (path, how it was opened) pairs. Returns the ones no rule allows."""
    roots = allowed_roots(run)
    tmpdir = os.path.realpath(run.tmp / "tmp")
    log = os.path.realpath(run.log)
    bad = []
    harness = [os.path.realpath(AUDIT_SITE), os.path.realpath(run.tmp / "audit.log")]
    for raw, how in paths:
        path = _real(raw)
        if path == log:
            continue  # --log-file
        if _under(path, harness):
            continue  # this test's own audit hook and its record
        if "O_DIRECTORY" in how and path == os.path.realpath(os.getcwd()):
            continue  # the import system lists the sys.path entry of `python -m` (the working directory)
        if os.path.dirname(path) == tmpdir and "O_EXCL" in how:
            continue  # tempfile.gettempdir() probes TMPDIR with a new file it removes (torch import)
        if _under(path, roots):
            continue
        bad.append(f"{raw} ({how})")
    return sorted(set(bad))


def audited_opens(rows: list[list[str]]) -> list[tuple[str, str]]:
    """(path, how) of every open the audit hook recorded."""
    opens = []
    for row in rows:
        if row[0] == "open":
            flags = int(row[2]) if row[2].lstrip("-").isdigit() else 0
            opens.append((row[3], f"mode={row[1]} " + ("O_EXCL" if flags & os.O_EXCL else "")))
    return opens


def test_reads_only_configured_folders(run):
    opens = audited_opens(run.audit)
    assert unexpected_opens(run, opens) == []
    workspace = os.path.realpath(run.tmp / "workspace")
    in_workspace = [_real(p) for p, _ in opens if _under(_real(p), [workspace])]
    assert in_workspace, "the workspace (the client's rootUri) was not indexed"
    # Only its ignore files: `app.py` is open in the editor (its text comes from there) and imports
    # nothing of the workspace.
    assert {os.path.relpath(p, workspace) for p in in_workspace} <= {".gitignore", ".git/info/exclude"}


# Native code also loads shared libraries, locale data and a few /etc files glibc and OpenSSL
# need (ld.so.cache, localtime, passwd/nsswitch.conf for the user name, openssl.cnf).
SYSTEM = ("/etc", "/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/share/locale", "/usr/share/zoneinfo")
_OPEN = re.compile(r'\bopen(?:at)?\((?:[^,]*, )?"((?:[^"\\]|\\.)*)", ([A-Z_|]+)')


@pytest.mark.skipif(not STRACE, reason="needs a working strace (Linux, ptrace allowed)")
def test_native_code_reads_only_configured_folders(run):
    opens = [(m.group(1), m.group(2)) for line in run.strace if (m := _OPEN.search(line))]
    assert any(p.endswith("model.safetensors") for p, _ in opens)  # safetensors opens it natively
    bad = [b for b in unexpected_opens(run, opens) if not _under(_real(b.split(" (")[0]), list(SYSTEM))]
    assert bad == []


# -- remote code -----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["auto", "float32", "bfloat16"])
def test_trust_remote_code_is_always_false(monkeypatch, tokenizer_dir, dtype):
    import transformers

    seen: list[dict] = []

    def fake_from_pretrained(source, **kwargs):
        seen.append(kwargs)
        raise OSError("recorded")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", fake_from_pretrained)
    engine = LocalEngine(Settings(model=str(tokenizer_dir), device="cpu", dtype=dtype))
    with pytest.raises(EngineError):
        engine.load()
    assert seen and all(kw.get("trust_remote_code") is False for kw in seen)  # False, not None: None asks on stdin


def test_model_with_custom_code_is_not_executed(tiny_model, tmp_path):
    model = tmp_path / "custom"
    shutil.copytree(tiny_model, model)
    marker = tmp_path / "EXECUTED"
    config = json.loads((model / "config.json").read_text())
    config.update(
        model_type="evil_llama",
        architectures=["EvilForCausalLM"],
        auto_map={"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilForCausalLM"},
    )
    (model / "config.json").write_text(json.dumps(config))
    (model / "evil.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        "from transformers import LlamaConfig, LlamaForCausalLM\n"
        "class EvilConfig(LlamaConfig):\n    model_type = 'evil_llama'\n"
        "class EvilForCausalLM(LlamaForCausalLM):\n    config_class = EvilConfig\n"
    )
    engine = LocalEngine(Settings(model=str(model), device="cpu"))
    with pytest.raises(EngineError) as err:
        engine.load()
    assert engine.state is EngineState.FAILED and "trust_remote_code" in str(err.value)
    assert not marker.exists()


# -- the workspace -------------------------------------------------------------------------
WORKSPACE_MAIN = """from pkg.big import Big
from pkg.credentials import Cred
from pkg.dirlink.mod import Deep
from pkg.ignored import Ign
from pkg.lib import Lib
from pkg.link import Linked


def a():
    return Big()


def b():
    return Cred()


def c():
    return Deep()


def d():
    return Ign()


def e():
    return Linked()


def f():
    return Lib()
"""
NEVER_READ = ("pkg/big.py", "pkg/credentials.py", "pkg/ignored.py", "pkg/link.py", ".env", "id_rsa", "server.pem")


def make_workspace(tmp: Path) -> tuple[Path, Path]:
    """A workspace folder with secrets, an ignored file, a file over 1 MB, and symlinks (to a file and
    to a folder) that lead out of it; every one of them is imported by ``pkg/main.py``."""
    ws, outside = tmp / "ws", tmp / "outside"
    (ws / "pkg").mkdir(parents=True)
    (ws / ".aws").mkdir()
    outside.mkdir()
    (outside / "secret_lib.py").write_text("class Linked:\n    token = 'outside-the-workspace'\n")
    (outside / "mod.py").write_text("class Deep:\n    pass\n")
    (ws / ".gitignore").write_text("ignored.py\n")
    (ws / ".env").write_text("API_KEY=never\n")
    (ws / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (ws / "server.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (ws / ".aws" / "credentials").write_text("[default]\naws_secret_access_key = never\n")
    (ws / "pkg" / "__init__.py").write_text("")
    (ws / "pkg" / "main.py").write_text(WORKSPACE_MAIN)
    (ws / "pkg" / "lib.py").write_text("class Lib:\n    def run(self) -> int:\n        return 1\n")
    (ws / "pkg" / "credentials.py").write_text("class Cred:\n    secret = 'never'\n")
    (ws / "pkg" / "ignored.py").write_text("class Ign:\n    pass\n")
    (ws / "pkg" / "big.py").write_text("class Big:\n    pass\n" + "# padding\n" * 120_000)
    (ws / "pkg" / "link.py").symlink_to(outside / "secret_lib.py")
    (ws / "pkg" / "dirlink").symlink_to(outside, target_is_directory=True)
    return ws, outside


def test_workspace_reads_stay_inside_the_folders(tmp_path, tokenizer_dir):
    ws, outside = make_workspace(tmp_path)
    for sub in ("home", "hf", "tmp"):
        (tmp_path / sub).mkdir()
    audit = tmp_path / "audit.log"
    env = {
        "PYTHONPATH": audit_path(),
        "CODELLAMA_AUDIT_LOG": str(audit),
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": str(tmp_path / "home"),
        "HF_HOME": str(tmp_path / "hf"),
        "TMPDIR": str(tmp_path / "tmp"),
    }
    main = ws / "pkg" / "main.py"
    lines = WORKSPACE_MAIN.split("\n")
    calls = {name: (row, line.index("(") + 1) for row, line in enumerate(lines) for name in [line.strip()[7:-2]]
             if line.startswith("    return ")}  # fmt: skip
    run = Run(tmp_path, tokenizer_dir, tokenizer_dir, tmp_path / "server.log", hub_configured=False)
    with RawServer(["--log-file", str(run.log)], env, stderr=tmp_path / "stderr.txt") as server:
        folders = [{"uri": ws.as_uri(), "name": "ws"}]
        caps = {"workspace": {"didChangeWatchedFiles": {"dynamicRegistration": True}}}
        server.call(
            "initialize",
            {
                "processId": None,
                "workspaceFolders": folders,
                "capabilities": caps,
                "initializationOptions": {"model": str(tokenizer_dir)},
            },
        )
        server.notify("initialized", {})
        server.wait_state({"ready", "failed"})
        server.open(main.as_uri(), WORKSPACE_MAIN)
        deadline = time.monotonic() + 30
        while not [c for c in server.prompt(main.as_uri(), *calls["Lib"])["context"] if "lib.py" in c["uri"]]:
            assert time.monotonic() < deadline, "the definition of Lib never reached the prompt"
            time.sleep(0.1)
        # Told about files outside the folders (and behind the links): nothing is touched.
        events = [
            (outside / "secret_lib.py").as_uri(),
            (ws / "pkg" / "link.py").as_uri(),
            (outside / "mod.py").as_uri(),
        ]
        server.notify("workspace/didChangeWatchedFiles", {"changes": [{"uri": u, "type": 2} for u in events]})
        while not server.status()["context"]["ready"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        shown = {name: server.prompt(main.as_uri(), *where)["context"] for name, where in calls.items()}
        assert server.shutdown() == 0
    assert [c["symbol"] for c in shown["Lib"]] == ["Lib"]
    assert {c["uri"].rsplit("/", 1)[-1] for found in shown.values() for c in found} == {"lib.py"}

    rows = [line.split("\t") for line in audit.read_text().splitlines()]
    opens = audited_opens(rows)
    opened = [path for path, _ in opens]
    listed = [row[1] for row in rows if row[0] in ("os.scandir", "os.listdir")]
    real_ws = os.path.realpath(ws)
    assert os.path.realpath(ws / "pkg" / "lib.py") in [_real(p) for p in opened]  # the hook saw the reads
    assert real_ws in [_real(p) for p in listed]  # ... and the walk
    # Nothing outside the workspace folder (but what the server read before: its code, the tokenizer, ...).
    assert unexpected_opens(run, [(p, how) for p, how in opens if not _under(_real(p), [real_ws])]) == []
    assert [p for p in opened + listed if _under(_real(p), [os.path.realpath(outside)])] == []
    assert [p for p in opened + listed if "dirlink" in p or p.endswith("link.py")] == []  # links: not followed
    # Inside it: ignore files and the source files context may show; never secrets, ignored or big files.
    inside = {os.path.relpath(_real(p), real_ws) for p in opened if _under(_real(p), [real_ws])}
    assert [p for p in inside if p in NEVER_READ or p.startswith(".aws")] == []
    assert {p for p in inside if os.path.basename(p) not in (".gitignore", "exclude")} <= {
        "pkg/lib.py",
        "pkg/__init__.py",
    }
    assert "pkg/main.py" not in inside  # open in the editor: its text comes from there
