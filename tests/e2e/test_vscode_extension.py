"""The VS Code extension (editors/vscode): settings mirror the server, it builds, its unit
tests pass, it works against the real server, and it packages into a .vsix.

The npm steps need node >= 20 and npm with registry access or a warm npm cache; they are
skipped with the reason when node/npm are missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import fields
from pathlib import Path

import pytest

from codellama_ls.config import Settings

ROOT = Path(__file__).resolve().parents[2]  # the project
VSCODE = ROOT / "editors" / "vscode"
MANIFEST = json.loads((VSCODE / "package.json").read_text(encoding="utf-8"))
PROPERTIES: dict[str, dict] = MANIFEST["contributes"]["configuration"]["properties"]
CLIENT_ONLY = {"codellama.server.path", "codellama.server.args"}


def _server_properties() -> dict[str, dict]:
    return {name.removeprefix("codellama."): p for name, p in PROPERTIES.items() if name not in CLIENT_ONLY}


def test_every_server_setting_is_contributed_except_secrets():
    contributed = set(_server_properties())
    for f in fields(Settings):
        name = Settings.camel(f.name)
        if f.metadata["secret"]:
            assert name not in contributed, f"{name} is a secret and must not live in settings.json"
        else:
            assert name in contributed, f"package.json does not contribute codellama.{name}"
    unknown = contributed - set(Settings.keys())
    assert not unknown, f"package.json contributes settings the server rejects: {unknown}"


def test_contributed_defaults_and_choices_match_the_server():
    server = Settings().to_dict()
    for name, prop in _server_properties().items():
        assert len(prop.get("description", "")) > 10, f"codellama.{name} needs a description"
        assert prop.get("default") == server[name], f"codellama.{name} default differs from the server's"
        for value in prop.get("enum", []):
            assert Settings().updated({name: value})[1] == [], f"server rejects codellama.{name} = {value!r}"


def test_contributed_ranges_match_the_server():
    for name, prop in _server_properties().items():
        step = 1 if prop["type"] == "integer" else 1e-6
        if "minimum" in prop:
            assert not Settings().updated({name: prop["minimum"]})[1], name
            assert Settings().updated({name: prop["minimum"] - step})[1], f"server accepts codellama.{name} < minimum"
        if "exclusiveMinimum" in prop:
            assert Settings().updated({name: prop["exclusiveMinimum"]})[1], name
            assert not Settings().updated({name: prop["exclusiveMinimum"] + step})[1], name
        if "maximum" in prop:
            assert not Settings().updated({name: prop["maximum"]})[1], name
            assert Settings().updated({name: prop["maximum"] + step})[1], f"server accepts codellama.{name} > maximum"
        if "pattern" in prop:
            assert re.fullmatch(prop["pattern"], str(prop["default"])), name


def _npm() -> str:
    npm = shutil.which("npm")
    node = shutil.which("node")
    if npm is None or node is None:
        pytest.skip("npm/node not found: the VS Code extension build is not tested")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 20:
        pytest.skip(f"node {version} is too old for the extension toolchain (needs >= 20)")
    return npm


def _run(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> str:
    proc = subprocess.run(
        cmd, cwd=VSCODE, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{output[-4000:]}"
    return output


def _installed_matches_lock() -> bool:
    """node_modules was installed from this package-lock.json (saves a 30 s `npm ci` locally)."""
    hidden = VSCODE / "node_modules" / ".package-lock.json"
    if not hidden.is_file():
        return False
    want = json.loads((VSCODE / "package-lock.json").read_text(encoding="utf-8"))["packages"]
    have = json.loads(hidden.read_text(encoding="utf-8"))["packages"]
    same = all(want.get(k, {}).get("version") == v.get("version") for k, v in have.items())
    # Optional packages for other platforms are in the lock file but never installed.
    complete = all(k in have for k, v in want.items() if k and not v.get("optional"))
    return same and complete


@pytest.fixture(scope="module")
def built() -> str:
    """`npm ci` (unless node_modules already matches the lock file) and `npm run build`."""
    npm = _npm()
    if not _installed_matches_lock():
        _run([npm, "ci", "--prefer-offline", "--no-audit", "--no-fund"])
    _run([npm, "run", "build"])
    assert (VSCODE / "out" / "extension.js").is_file()
    return npm


def _tap_counts(output: str) -> dict[str, int]:
    """The summary counts of `node --test`: TAP (`# pass 3`, what package.json's scripts ask for)
    or the spec reporter (`ℹ pass 3`, node >= 23's default on a terminal and in pipes)."""
    found = re.findall(r"^(?:#|\N{INFORMATION SOURCE}) (pass|fail|skipped|cancelled) (\d+)\s*$", output, re.M)
    return {k: int(v) for k, v in found}


TAP_SUMMARY = "ok 2 - settings\n1..2\n# tests 33\n# suites 5\n# pass 31\n# fail 1\n# cancelled 0\n# skipped 1\n"
SPEC_SUMMARY = (
    "\N{CHECK MARK} settings (1.2ms)\n\N{INFORMATION SOURCE} tests 33\n\N{INFORMATION SOURCE} suites 5\n"
    "\N{INFORMATION SOURCE} pass 31\n\N{INFORMATION SOURCE} fail 1\n\N{INFORMATION SOURCE} cancelled 0\n"
    "\N{INFORMATION SOURCE} skipped 1\n\N{INFORMATION SOURCE} duration_ms 812.5\n"
)


@pytest.mark.parametrize("output", [TAP_SUMMARY, SPEC_SUMMARY], ids=["tap", "spec"])
def test_result_counts_are_read_from_either_reporter(output):
    assert _tap_counts(output) == {"pass": 31, "fail": 1, "cancelled": 0, "skipped": 1}


def test_npm_scripts_fix_the_reporter():
    """Counts come from TAP whichever node runs them (node >= 23 defaults to the spec reporter)."""
    scripts = MANIFEST["scripts"]
    for name in ("test", "test:e2e"):
        assert "--test-reporter=tap" in scripts[name], f"npm run {name} must fix the reporter"


@pytest.mark.slow
def test_unit_tests_pass(built):
    counts = _tap_counts(_run([built, "test"]))
    assert counts.get("fail") == 0 and counts.get("cancelled", 0) == 0
    assert counts.get("pass", 0) >= 30, counts


@pytest.mark.slow
def test_extension_against_the_real_server(built, tiny_model):
    """extension.ts + vscode-languageclient under node with a stand-in `vscode` module
    (src/test/e2e/): status bar from $/progress and codellama/status, inline items, stale
    answers dropped, toggle, Edit Selection and Explain (code actions), load failure, restart on a new
    server command."""
    output = _run(
        [built, "run", "test:e2e"],
        env={
            "CODELLAMA_LS_TEST_PYTHON": sys.executable,
            "CODELLAMA_LS_TEST_MODEL": str(tiny_model),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        },
    )
    counts = _tap_counts(output)
    assert counts.get("fail") == 0 and counts.get("skipped", 0) == 0, output[-3000:]
    assert counts.get("pass", 0) >= 9, output[-3000:]


@pytest.mark.slow
def test_packages_into_a_vsix(built, tmp_path):
    vsix = tmp_path / "codellama-ls.vsix"
    _run([str(VSCODE / "node_modules" / ".bin" / "vsce"), "package", "--no-rewrite-relative-links", "--out", str(vsix)])
    names = set(zipfile.ZipFile(vsix).namelist())
    for needed in (
        "extension/package.json",
        "extension/out/extension.js",
        "extension/out/settings.js",
        "extension/node_modules/vscode-languageclient/lib/node/main.js",
    ):
        assert needed in names, f"{needed} missing from the .vsix"
    assert not [n for n in names if n.startswith(("extension/src/", "extension/out/test/"))], "sources/tests packaged"
