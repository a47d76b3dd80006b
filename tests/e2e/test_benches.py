"""Every benchmark runs from a clean clone: each ``bench/*.py`` in its ``--quick`` mode.

The cache folder is a new empty one (``CODELLAMA_BENCH_CACHE``), so a model made by an earlier
run can never hide a broken step of making it, as it once hid ``python bench/latency.py``
failing on a clean clone.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.rawlsp import server_env
from tests.support.tiny_model import needs_tokenizer

ROOT = Path(__file__).resolve().parents[2]
BENCHES = sorted(p.name for p in (ROOT / "bench").glob("*.py"))
# What a bench's --quick output must say, beyond that it ran.
PRINTS = {
    # every answer the same with prompt lookup as plain greedy, and the draft loop it replays on
    # token ids proposes and keeps exactly what the engine counted (else its predictions mean nothing)
    "lookup.py": (r"\| all \| 6 \| 6 of 6 \|", r"the drafts the engine counted for 6 of 6;"),
}

pytestmark = [pytest.mark.slow, needs_tokenizer]


def test_there_are_benchmarks() -> None:
    assert {"latency.py", "lookup.py", "soak.py", "train_model.py", "text_prompt_exactness.py"} <= set(BENCHES)


@pytest.mark.parametrize("script", BENCHES)
def test_bench_quick_mode_runs_from_an_empty_cache(script: str, tmp_path: Path) -> None:
    env = server_env(CODELLAMA_BENCH_CACHE=str(tmp_path / "cache"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--quick"],
        cwd=tmp_path,  # not the checkout: the script must find its own way to the code and data
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{script} --quick failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert done.stdout.strip(), f"{script} --quick printed nothing"
    for pattern in PRINTS.get(script, ()):
        assert re.search(pattern, done.stdout), f"{script} --quick did not print {pattern!r}:\n{done.stdout[-3000:]}"
