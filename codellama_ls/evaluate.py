"""Measure suggestion quality on infilling problems, through the server's own pipeline.

Problems come in the human-eval-infilling format (one JSON object a line: ``task_id``,
``prompt`` = the code before the gap, ``suffix``, ``canonical_solution`` = the gap, ``test``,
``entry_point``). Each one becomes an open document with the cursor at the gap, and
``Pipeline.suggest`` answers it exactly as it answers an editor: prompt, engine,
early stop, post-processing. The edit it returns is applied to the document; the text that
ends up in the gap is the sample.

A gap made of whole lines (the prompt ends at a line start) is shown to the pipeline as an
empty line, which is where a user's cursor would be; the suggestion then gets its line
ending back. Python problems are also executed: ``prompt + completion + suffix``, the
``test`` code and ``check(entry_point)`` run in a subprocess with a timeout and no network.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lsprotocol import types

from codellama_ls.config import Settings
from codellama_ls.engines.base import Engine, EngineError, EngineState
from codellama_ls.notify import Notifier, ProgressFn
from codellama_ls.pipeline.completion import Pipeline
from codellama_ls.session import Session

CHECK_TIMEOUT_S = 10.0
_MEMORY_LIMIT = 4 << 30

# Runs in the child before the program: limits, and no sockets (so no network), then the file.
_BOOT = """
import resource, runpy, socket, sys
for limit, value in ((resource.RLIMIT_AS, {memory}), (resource.RLIMIT_CPU, {cpu})):
    try:
        resource.setrlimit(limit, (value, value))
    except (ValueError, OSError):
        pass
class _NoNetwork(socket.socket):
    def __init__(self, *args, **kwargs):
        raise OSError("network access is disabled during evaluation")
socket.socket = _NoNetwork
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


class DatasetError(ValueError):
    """The dataset file is not in the human-eval-infilling format."""


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str
    suffix: str
    canonical_solution: str = ""
    test: str = ""
    entry_point: str = ""
    language: str = "python"

    @property
    def runnable(self) -> bool:
        """Python with a test: pass@1 applies."""
        return self.language == "python" and bool(self.test) and bool(self.entry_point)


@dataclass
class Sample:
    task_id: str
    completion: str  # the text that ends up in the gap
    exact_match: bool
    passed: bool | None  # None: not a Python problem with a test
    suggested: bool
    replace: int = 0  # characters after the gap the suggestion replaced (auto-closed brackets)
    stop_reason: str | None = None
    new_tokens: int | None = None
    seconds: float = 0.0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Report:
    samples: list[Sample] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def exact_match(self) -> float:
        return _mean(s.exact_match for s in self.samples)

    @property
    def pass_at_1(self) -> float | None:
        ran = [s.passed for s in self.samples if s.passed is not None]
        return _mean(ran) if ran else None

    def table(self) -> str:
        n = len(self.samples)
        runnable = sum(s.passed is not None for s in self.samples)
        reasons = Counter(s.stop_reason or "none" for s in self.samples)
        tokens = [s.new_tokens for s in self.samples if s.new_tokens is not None]
        rows = [
            ("problems", str(n)),
            ("suggested", f"{sum(s.suggested for s in self.samples)} ({_mean(s.suggested for s in self.samples):.1%})"),
            ("exact match", f"{self.exact_match:.3f}"),
            ("pass@1", "n/a" if self.pass_at_1 is None else f"{self.pass_at_1:.3f} ({runnable} Python problems)"),
            ("stop reasons", ", ".join(f"{k} {v}" for k, v in sorted(reasons.items()))),
            ("new tokens (mean)", f"{_mean(tokens):.1f}" if tokens else "n/a"),
            ("seconds/problem (mean)", f"{_mean(s.seconds for s in self.samples):.3f}"),
        ]
        rows += [(k, str(v)) for k, v in self.settings.items()]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _mean(values: Iterable[float | bool]) -> float:
    items = [float(v) for v in values]
    return sum(items) / len(items) if items else 0.0


# -- dataset -----------------------------------------------------------------------------
def load_problems(path: str | Path, limit: int | None = None) -> list[Problem]:
    """Read a ``.jsonl`` (or ``.jsonl.gz``) file of problems."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    problems: list[Problem] = []
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if limit is not None and len(problems) >= limit:
                    break
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                    problems.append(
                        Problem(
                            task_id=str(data["task_id"]),
                            prompt=data["prompt"],
                            suffix=data.get("suffix", ""),
                            canonical_solution=data.get("canonical_solution", ""),
                            test=data.get("test", ""),
                            entry_point=data.get("entry_point", ""),
                            language=data.get("language", "python"),
                        )
                    )
                except (ValueError, KeyError, TypeError) as exc:
                    raise DatasetError(f"{path}:{number}: not a problem ({type(exc).__name__}: {exc})") from exc
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    return problems


def editor_view(problem: Problem) -> tuple[str, types.Position, bool]:
    """The document and cursor a user would have at the gap; True when the gap is whole lines."""
    whole_lines = problem.prompt == "" or problem.prompt.endswith("\n")
    text = problem.prompt + ("\n" if whole_lines else "") + problem.suffix
    line = problem.prompt.count("\n")
    column = len(problem.prompt) - (problem.prompt.rfind("\n") + 1)
    return text, types.Position(line=line, character=column), whole_lines


def _normalize(code: str) -> str:
    return "\n".join(line.rstrip() for line in code.strip("\n").split("\n"))


# -- execution ---------------------------------------------------------------------------
_SANDBOX: list[str] | None = None


def _sandbox_prefix() -> list[str]:
    """``unshare`` into a namespace without network when the system allows it."""
    global _SANDBOX
    if _SANDBOX is None:
        _SANDBOX = []
        command = ["unshare", "--user", "--net", "--map-root-user"]
        if sys.platform.startswith("linux") and shutil.which("unshare"):
            try:
                probe = subprocess.run([*command, "true"], capture_output=True, timeout=10)
                if probe.returncode == 0:
                    _SANDBOX = command
            except (OSError, subprocess.SubprocessError):
                pass
    return _SANDBOX


def run_check(program: str, problem: Problem, timeout_s: float = CHECK_TIMEOUT_S) -> tuple[bool, str | None]:
    """Run the program with the problem's test; (passed, why it failed)."""
    source = f"{program}\n\n{problem.test}\n\ncheck({problem.entry_point})\n"
    boot = _BOOT.format(memory=_MEMORY_LIMIT, cpu=max(1, math.ceil(timeout_s)) + 1)
    with tempfile.TemporaryDirectory(prefix="codellama-eval-") as tmp:
        path = Path(tmp) / "program.py"
        path.write_text(source, encoding="utf-8")
        command = [*_sandbox_prefix(), sys.executable, "-I", "-c", boot, str(path)]
        try:
            proc = subprocess.run(
                command,
                cwd=tmp,
                env={"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            return False, f"timed out after {timeout_s:g}s"
    if proc.returncode == 0:
        return True, None
    lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    return False, lines[-1] if lines else f"exit status {proc.returncode}"


# -- the pipeline ------------------------------------------------------------------------
async def _solve(service: Pipeline, problem: Problem, index: int, timeout_s: float, execute: bool) -> Sample:
    text, position, _ = editor_view(problem)
    uri = f"file:///eval/{index}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', problem.task_id)}.py"
    service.session.documents.open(types.TextDocumentItem(uri=uri, language_id=problem.language, version=0, text=text))
    engine = service.session.engine
    before = engine.generations
    started = time.perf_counter()
    try:
        answer = await service.suggest(uri, position)
    finally:
        service.session.documents.close(uri)
    seconds = time.perf_counter() - started
    result = answer.result if answer is not None else None
    if result is None and engine.generations > before and engine.history:
        result = engine.history[-1]

    cursor = len(problem.prompt)
    replaced = 0
    if answer is None:
        program, completion = problem.prompt + problem.suffix, ""
    else:
        # The document after accepting is the program (a whole-line gap's empty line now
        # holds the suggestion); the gap is what lies between the prompt and the suffix.
        replaced = answer.end - answer.start
        program = problem.prompt + answer.text + text[cursor + replaced :]
        gap_end = len(program) - len(problem.suffix)
        fits = gap_end >= cursor and program.endswith(problem.suffix)
        completion = program[cursor:gap_end] if fits else answer.text
    passed, error = None, None
    if execute and problem.runnable:
        passed, error = await asyncio.to_thread(run_check, program, problem, timeout_s)
    return Sample(
        task_id=problem.task_id,
        completion=completion,
        exact_match=_normalize(completion) == _normalize(problem.canonical_solution),
        passed=passed,
        suggested=answer is not None,
        replace=replaced,
        stop_reason=result.stop_reason if result else None,
        new_tokens=result.new_tokens if result else None,
        seconds=seconds,
        error=error,
    )


async def evaluate_async(
    problems: list[Problem],
    service: Pipeline,
    *,
    output: IO[str] | None = None,
    timeout_s: float = CHECK_TIMEOUT_S,
    execute: bool = True,
    progress: bool = False,
) -> Report:
    """Answer every problem with ``service`` (its engine already loaded)."""
    from tqdm import tqdm

    s = service.session.settings
    report = Report(
        settings={
            "engine": s.engine,
            "model": s.model,
            "fimFormat": s.fim_format,
            "maxNewTokens": s.max_new_tokens,
            "temperature": s.temperature,
        }
    )
    bar = tqdm(problems, desc="eval", unit="problem", file=sys.stderr, disable=not progress, dynamic_ncols=True)
    for index, problem in enumerate(bar):
        sample = await _solve(service, problem, index, timeout_s, execute)
        report.samples.append(sample)
        if output is not None:
            output.write(json.dumps(sample.to_json()) + "\n")
            output.flush()
        postfix = {"exact": f"{report.exact_match:.3f}"}
        if report.pass_at_1 is not None:
            postfix["pass@1"] = f"{report.pass_at_1:.3f}"
        bar.set_postfix(postfix, refresh=False)
    bar.close()
    return report


async def _prepare(service: Pipeline, engine: Engine | None) -> None:
    if engine is None:
        await service.session.load_engine()
        return
    service.session.host.use(engine)
    if engine.state is not EngineState.READY:
        await asyncio.to_thread(engine.load, None)


def evaluate(
    problems: list[Problem],
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    output: str | Path | None = None,
    timeout_s: float = CHECK_TIMEOUT_S,
    execute: bool = True,
    progress: bool = False,
    notifier: Notifier | None = None,
) -> Report:
    """Run the problems through a ``Pipeline`` built from ``settings``.

    ``engine`` replaces the engine the settings name (tests pass a stub); otherwise the
    configured engine is loaded first. Samples go to ``output`` (JSONL) as they come.
    """
    settings = dataclasses.replace(settings or Settings(), debounce_ms=0)

    async def run() -> Report:
        service = Pipeline(Session(settings, notifier))
        try:
            await _prepare(service, engine)
            if not service.session.engine.ready:
                raise EngineError(service.session.engine.error or "the engine did not load", "load")
            if output is None:
                return await evaluate_async(problems, service, timeout_s=timeout_s, execute=execute, progress=progress)
            with open(output, "w", encoding="utf-8") as fh:
                return await evaluate_async(
                    problems, service, output=fh, timeout_s=timeout_s, execute=execute, progress=progress
                )
        finally:
            if engine is None:
                service.session.shutdown()
            else:
                service.session.scheduler.shutdown()

    return asyncio.run(run())


def default_output(dataset: str | Path) -> Path:
    name = Path(dataset).name
    for ending in (".gz", ".jsonl", ".json"):
        name = name.removesuffix(ending)
    return Path(f"{name}-samples.jsonl")


def main(args: Any, settings: Settings) -> int:
    """``codellama-ls eval DATASET.jsonl``."""
    from codellama_ls.lsp.progress import progress_bar

    try:
        problems = load_problems(args.dataset, args.limit)
    except DatasetError as exc:
        print(f"codellama-ls: {exc}", file=sys.stderr)
        return 2
    if not problems:
        print(f"codellama-ls: {args.dataset} has no problems", file=sys.stderr)
        return 2
    output = Path(args.output) if args.output else default_output(args.dataset)

    async def load_progress() -> ProgressFn:
        return progress_bar()

    notifier = Notifier(lambda message, kind: print(message, file=sys.stderr), load_progress)
    try:
        report = evaluate(problems, settings, output=output, timeout_s=args.timeout, progress=True, notifier=notifier)
    except EngineError as exc:
        print(f"codellama-ls: {exc}", file=sys.stderr)
        return 1
    print(report.table())
    print(f"samples: {output}")
    return 0
