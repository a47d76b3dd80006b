"""Command line: serve LSP (stdio or TCP), run the pipeline once from a shell, or evaluate it.

Every setting is also a flag (``--max-new-tokens``), generated from the settings object so
the two never drift apart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codellama_ls import __version__
from codellama_ls.config import Settings
from codellama_ls.redact import MaskSecrets

if TYPE_CHECKING:
    from lsprotocol import types

    from codellama_ls.documents import Cursor, Document
    from codellama_ls.lsp.log import ClientLog
    from codellama_ls.notify import ProgressFn
    from codellama_ls.pipeline.completion import Pipeline
    from codellama_ls.prompt.fim import Prompt
    from codellama_ls.prompt.tokens import PromptTokenizer

log = logging.getLogger("codellama_ls")

# A folder holding one of these is a project root: the default workspace of `prompt`/`complete`.
PROJECT_MARKERS = (".git", "pyproject.toml", "package.json", "go.mod", "Cargo.toml")
CONTEXT_WAIT_S = 20.0  # the longest the one-shot commands wait for the workspace index


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (also CODELLAMA_LS_* variables and initializationOptions)")
    for f in dataclasses.fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        group.add_argument(
            flag, dest="setting_" + f.name, metavar=f.name.upper(), default=argparse.SUPPRESS, help=f.metadata["doc"]
        )


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _add_setting_flags(common)
    common.add_argument(
        "--log-file", default=argparse.SUPPRESS, help="Write the log to this file (stdio mode never logs to stdout)."
    )
    common.add_argument("--log-level", default=argparse.SUPPRESS, choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    parser = argparse.ArgumentParser(
        prog="codellama-ls", description="Code Llama completion over the Language Server Protocol.", parents=[common]
    )
    parser.add_argument("--version", action="version", version=f"codellama-ls {__version__}")
    parser.add_argument(
        "--tcp",
        metavar="[HOST:]PORT",
        default=argparse.SUPPRESS,
        help="Serve on TCP instead of stdio (host defaults to 127.0.0.1).",
    )
    parser.add_argument(
        "--stdio", action="store_true", help="Serve on stdio (the default; accepted for editors that pass it)."
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", parents=[common], help="Serve LSP (the default).").add_argument(
        "--tcp", metavar="[HOST:]PORT", default=argparse.SUPPRESS
    )
    for name, what in (("complete", "print the suggestion"), ("prompt", "print the prompt (loads only the tokenizer)")):
        p = sub.add_parser(name, parents=[common], help=f"At FILE:LINE:COL (1-based), {what}.")
        p.add_argument("location", metavar="FILE:LINE:COL")
        p.add_argument(
            "--workspace",
            metavar="DIR",
            default=None,
            help="Workspace folder for context from other files (default: the nearest folder above FILE "
            f"holding {', '.join(PROJECT_MARKERS)}; else FILE's folder).",
        )
        if name == "prompt":
            p.add_argument("--json", action="store_true", help="Print the codellama/prompt JSON.")
    p = sub.add_parser("eval", parents=[common], help="Measure suggestions on human-eval-infilling problems.")
    p.add_argument("dataset", metavar="DATASET.jsonl", help="Problems, one JSON object a line (.jsonl or .jsonl.gz).")
    p.add_argument("--limit", type=int, default=None, help="Only the first N problems.")
    p.add_argument("--output", default=None, help="Samples JSONL (default: DATASET-samples.jsonl here).")
    p.add_argument("--timeout", type=float, default=10.0, help="Seconds each Python check may run.")
    return parser


def settings_from_args(args: argparse.Namespace) -> tuple[Settings, list[str]]:
    """Defaults < environment < flags."""
    settings, errors = Settings.from_env()
    flags = {k[len("setting_") :]: v for k, v in vars(args).items() if k.startswith("setting_") and v is not None}
    settings, flag_errors = settings.updated(flags)
    return settings, errors + flag_errors


def setup_logging(args: argparse.Namespace) -> None:
    log_file = getattr(args, "log_file", None)
    handler: logging.Handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskSecrets())  # pygls logs whole messages at DEBUG, tokens included
    root = logging.getLogger()
    root.handlers[:] = [handler]
    level = getattr(args, "log_level", "INFO")
    root.setLevel(level)
    # pygls logs every message at INFO; keep it for --log-level DEBUG only.
    logging.getLogger("pygls").setLevel(level if level == "DEBUG" else "WARNING")


def log_to_client(*, stdio: bool) -> ClientLog:
    """While serving LSP the log reaches the editor as ``window/logMessage`` at each record's
    level (see ``lsp/log.py``); over stdio it leaves stderr, which editors show as errors.
    ``--log-file`` keeps its file. No progress bars: the editor shows ``$/progress``."""
    from codellama_ls.lsp.log import ClientLog, NoEchoes, quiet_progress_bars

    quiet_progress_bars()
    root = logging.getLogger()
    if stdio:
        root.handlers[:] = [h for h in root.handlers if type(h) is not logging.StreamHandler]
    for kept in root.handlers:
        kept.addFilter(NoEchoes())
    handler = ClientLog()
    handler.addFilter(MaskSecrets())
    root.addHandler(handler)
    return handler


def parse_location(text: str) -> tuple[Path, int, int]:
    try:
        file, line, col = text.rsplit(":", 2)
        return Path(file), int(line), int(col)
    except ValueError:
        raise SystemExit(f"codellama-ls: expected FILE:LINE:COL (1-based), got {text!r}") from None


def project_root(file: Path) -> Path:
    """The nearest folder at or above ``file``'s that holds a project marker, else ``file``'s folder."""
    start = file.resolve().parent
    for folder in (start, *start.parents):
        if any((folder / marker).exists() for marker in PROJECT_MARKERS):
            return folder
    return start


def parse_tcp(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    try:
        return host.strip("[]") or "127.0.0.1", int(port)
    except ValueError:
        raise SystemExit(f"codellama-ls: --tcp expects [HOST:]PORT, got {text!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args)
    serving = args.command not in ("complete", "prompt", "eval")
    client_log = log_to_client(stdio=not getattr(args, "tcp", None)) if serving else None
    settings, errors = settings_from_args(args)
    for error in errors:
        log.error("%s; using the default", error)
    if args.command in ("complete", "prompt"):
        return _run_once(args, settings, errors)
    if args.command == "eval":
        from codellama_ls.evaluate import main as run_eval

        if errors:
            print("\n".join(errors), file=sys.stderr)
            return 2
        return run_eval(args, settings)
    from codellama_ls.lsp import adapter as pygls_adapter
    from codellama_ls.lsp.server import create_server

    server = create_server(settings)
    server.client_log = client_log
    if getattr(args, "tcp", None):
        host, port = parse_tcp(args.tcp)
        log.info("codellama-ls %s on tcp %s:%d", __version__, host, port)
        server.start_tcp(host, port)
    else:
        server.start_io()
    # LSP: `exit` after `shutdown` ends with 0, otherwise 1 (pygls swallows the code). Leave at
    # once: finalizing torch's and transformers' modules can take seconds the editor waits for.
    code = 0 if pygls_adapter.is_shut_down(server) else 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(ValueError, OSError):  # pygls closes stdout on `exit`
            stream.flush()
    os._exit(code)


def _run_once(args: argparse.Namespace, settings: Settings, errors: list[str]) -> int:
    from lsprotocol import types

    from codellama_ls.documents import PositionError
    from codellama_ls.notify import Notifier
    from codellama_ls.pipeline.completion import Pipeline
    from codellama_ls.session import Session

    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 2
    path, line, col = parse_location(args.location)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"codellama-ls: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    settings = dataclasses.replace(settings, debounce_ms=0)
    service = Pipeline(Session(settings, Notifier(lambda message, kind: print(message, file=sys.stderr))))
    service.session.encoding = types.PositionEncodingKind.Utf32
    doc = service.session.documents.open(
        types.TextDocumentItem(uri=path.resolve().as_uri(), language_id="", version=0, text=text)
    )
    position = types.Position(line=line - 1, character=col - 1)
    try:
        cursor = doc.cursor(position, service.session.encoding)
    except PositionError as exc:
        print(f"codellama-ls: {args.location}: {exc}", file=sys.stderr)
        return 2
    workspace = Path(args.workspace).resolve() if args.workspace else project_root(path)
    service.session.context.begin([str(workspace)], settings)  # indexed on its thread while the tokenizer loads
    if args.command == "prompt":
        from codellama_ls.prompt.tokens import TokenizerNotFound

        try:
            tok = asyncio.run(service.session.prompt_tokenizer())
        except TokenizerNotFound as exc:
            print(f"codellama-ls: {exc}", file=sys.stderr)
            return 1
        prompt = _with_context(service, cursor, tok)
        service.session.context.stop()
        if args.json:
            print(json.dumps(prompt.to_json()))
        else:
            _print_prompt(prompt.to_json(), workspace)
        return 0
    return asyncio.run(_complete(service, doc, position))


def _with_context(service: Pipeline, cursor: Cursor, tok: PromptTokenizer) -> Prompt:
    """The prompt once the index has what it needs: one run has no later keystroke to pick up
    what the index is still parsing, so it waits (at most ``CONTEXT_WAIT_S`` in all)."""
    deadline = time.monotonic() + CONTEXT_WAIT_S
    while True:
        service.session.context.wait_ready(max(deadline - time.monotonic(), 0.0))
        prompt = service.build(cursor, tok)  # may ask for files not parsed yet ...
        if service.session.context.ready:  # ... then it is built again
            return prompt
        if time.monotonic() >= deadline:
            log.warning(
                "the workspace index was not done after %.0f s; the prompt has the context found so far", CONTEXT_WAIT_S
            )
            return prompt


def _print_prompt(data: dict[str, Any], workspace: Path) -> None:
    context = data["context"]
    print(
        f"format: {data['format']}  tokens: {len(data['ids'])}  truncated: {data['truncated']}  "
        f"context: {len(context)} snippet(s), {sum(c['tokens'] for c in context)} tokens (workspace {workspace})"
    )
    if context:
        print("--- context (lines 1-based) ---")
        for entry in context:
            where = _relative(entry["uri"], workspace)
            what = entry["reason"] + (f" of {entry['symbol']}" if entry.get("symbol") else "")
            if entry.get("score") is not None:
                what += f", similarity {entry['score']}"
            print(f"{where}:{entry['startLine'] + 1}-{entry['endLine'] + 1}  {what}  ({entry['tokens']} tokens)")
        print("--- context text ---")
        print(data["contextText"], end="")
    print("--- prefix ---")
    print(data["prefix"])
    print("--- suffix ---")
    print(data["suffix"])


def _relative(uri: str, workspace: Path) -> str:
    from codellama_ls.documents import uri_to_path

    path = uri_to_path(uri)
    if path is None:
        return uri
    try:
        return Path(path).relative_to(workspace).as_posix()
    except ValueError:
        return path


async def _complete(service: Pipeline, doc: Document, position: types.Position) -> int:
    from codellama_ls.engines.base import EngineState
    from codellama_ls.lsp.progress import progress_bar

    bar = progress_bar()

    async def progress() -> ProgressFn:
        return bar

    service.session.notifier.set_progress(progress)
    await service.session.load_engine()
    if service.session.engine.state is not EngineState.READY:
        return 1
    tok = service.session.engine.tokenizer
    if tok is not None:  # let the index parse what the prompt will show
        await asyncio.to_thread(_with_context, service, doc.cursor(position, service.session.encoding), tok)
    answer = await service.suggest(doc.uri, position)
    service.session.shutdown()
    if answer is None:
        print("codellama-ls: no suggestion", file=sys.stderr)
        return 1
    sys.stdout.write(answer.text + ("\n" if not answer.text.endswith("\n") else ""))
    return 0
