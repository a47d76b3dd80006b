"""The evaluation harness: a dataset written here, a stub engine returning chosen raw outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codellama_ls import cli
from codellama_ls.config import Settings
from codellama_ls.evaluate import DatasetError, Problem, editor_view, evaluate, load_problems, run_check
from tests.support.fake_engine import FakeEngine
from tests.support.tiny_model import needs_tokenizer

PROBLEMS = [
    {  # whole-line gap; the model runs on into the next function
        "task_id": "T/0",
        "prompt": "def add(a, b):\n",
        "suffix": "\n\ndef unused():\n    pass\n",
        "canonical_solution": "    return a + b\n",
        "test": "def check(f):\n    assert f(2, 3) == 5\n",
        "entry_point": "add",
    },
    {  # wrong answer
        "task_id": "T/1",
        "prompt": "def sub(a, b):\n",
        "suffix": "",
        "canonical_solution": "    return a - b\n",
        "test": "def check(f):\n    assert f(5, 3) == 2\n",
        "entry_point": "sub",
    },
    {  # mid-line gap
        "task_id": "T/2",
        "prompt": "def square(x):\n    return ",
        "suffix": "\n",
        "canonical_solution": "x * x",
        "test": "def check(f):\n    assert f(3) == 9\n",
        "entry_point": "square",
    },
    {  # the rest of the line is an auto-closed bracket: the suggestion replaces it
        "task_id": "T/3",
        "prompt": "def total(xs):\n    return sum(",
        "suffix": ")\n",
        "canonical_solution": "xs",
        "test": "def check(f):\n    assert f([1, 2]) == 3\n",
        "entry_point": "total",
    },
    {  # tries the network
        "task_id": "T/4",
        "prompt": "def online():\n",
        "suffix": "",
        "canonical_solution": "    return 1\n",
        "test": "def check(f):\n    assert f() == 1\n",
        "entry_point": "online",
    },
    {  # loops forever
        "task_id": "T/5",
        "prompt": "def spin():\n",
        "suffix": "",
        "canonical_solution": "    return 0\n",
        "test": "def check(f):\n    assert f() == 0\n",
        "entry_point": "spin",
    },
]
OUTPUTS = {
    "def add(": "    return a + b\n\ndef other():\n    return 42\n",
    "def sub(": "    return a + b",
    "def square(": "x * x\n\nprint(square(2))\n",
    "def total(": "xs",
    "def online(": "    import socket; socket.socket(); return 1",
    "def spin(": "    while True: pass",
}


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "problems.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS), encoding="utf-8")
    return path


def test_load_problems(dataset: Path, tmp_path: Path) -> None:
    problems = load_problems(dataset)
    assert [p.task_id for p in problems] == [f"T/{i}" for i in range(6)]
    assert problems[0].runnable
    assert len(load_problems(dataset, limit=2)) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "x"}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"bad\.jsonl:1"):
        load_problems(bad)


def test_whole_line_gap_is_an_empty_line() -> None:
    text, position, whole = editor_view(Problem("t", "def f():\n", "    return 1\n"))
    assert whole and text == "def f():\n\n    return 1\n"
    assert (position.line, position.character) == (1, 0)
    text, position, whole = editor_view(Problem("t", "x = f(", ")\n"))
    assert not whole and text == "x = f()\n" and position.character == 6


def test_evaluate_with_stub_engine(dataset: Path, tmp_path: Path) -> None:
    engine = FakeEngine(script=OUTPUTS)
    out = tmp_path / "samples.jsonl"
    settings = Settings(fim_format="psm", max_new_tokens=333)
    report = evaluate(load_problems(dataset), settings, engine=engine, output=out, timeout_s=2)
    by_id = {s.task_id: s for s in report.samples}

    # The engine got the server's request: the prompt format and limits from settings, early stop.
    assert len(engine.requests) == 6
    assert all(r.prompt.format == "psm" and r.max_new_tokens == 333 for r in engine.requests)
    assert engine.requests[0].prompt.prefix == "def add(a, b):\n"
    assert engine.requests[0].prompt.suffix.startswith("\n\n\ndef unused")  # the empty line of the gap

    # Post-processing cut the runaway output, and decoding stopped early.
    assert by_id["T/0"].completion == "    return a + b\n"
    assert by_id["T/0"].stop_reason == "early"
    assert by_id["T/0"].new_tokens < len(OUTPUTS["def add("])
    assert by_id["T/0"].exact_match and by_id["T/0"].passed
    assert not by_id["T/1"].exact_match and by_id["T/1"].passed is False
    assert by_id["T/2"].completion == "x * x" and by_id["T/2"].passed
    assert by_id["T/3"].completion == "xs" and by_id["T/3"].replace == 1 and by_id["T/3"].passed
    assert by_id["T/4"].passed is False and "network" in by_id["T/4"].error
    assert by_id["T/5"].passed is False and "timed out" in by_id["T/5"].error

    assert report.exact_match == pytest.approx(3 / 6)  # T/0, T/2, T/3
    assert report.pass_at_1 == pytest.approx(3 / 6)
    table = report.table()
    assert "pass@1" in table and "0.500" in table

    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [row["task_id"] for row in lines] == [f"T/{i}" for i in range(6)]
    assert lines[0]["completion"] == "    return a + b\n"


def test_run_check_passes_the_canonical_solution() -> None:
    problem = Problem(**PROBLEMS[2])
    assert run_check(problem.prompt + problem.canonical_solution + problem.suffix, problem) == (True, None)
    passed, error = run_check(problem.prompt + "1" + problem.suffix, problem)
    assert not passed and "AssertionError" in error


@needs_tokenizer
@pytest.mark.slow
def test_cli_eval_with_the_local_engine(dataset: Path, tmp_path: Path, tiny_model: Path, capsys) -> None:
    out = tmp_path / "out.jsonl"
    argv = ["eval", str(dataset), "--model", str(tiny_model), "--max-new-tokens", "4", "--limit", "2"]
    assert cli.main([*argv, "--output", str(out), "--fim-format", "spm", "--timeout", "5"]) == 0
    printed = capsys.readouterr().out
    assert "problems" in printed and "pass@1" in printed and "maxNewTokens" in printed
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["task_id"] for r in rows] == ["T/0", "T/1"]
    assert all(isinstance(r["completion"], str) for r in rows)
    assert all(r["new_tokens"] is None or r["new_tokens"] <= 4 for r in rows)
