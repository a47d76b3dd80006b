"""Keystroke latency: codellama-ls over LSP against a fresh ``model.generate`` per request.

A scripted user types into a ~3,000-line Python file from this machine's standard library
(``tarfile.py``, whose two method bodies are removed and typed again): about 200
keystrokes at 8 a second in bursts, pausing after each answer, moving the cursor to the
other method and back. In every other burst the user types the first characters of the
suggestion on screen (the way people accept part of one); in the others, the code that was
removed. The same model and settings then answer the same requests the naive way.

- (a) naive: for the last keystroke of each burst (after a fixed 150 ms debounce), a fresh
  ``model.generate`` on the full prompt, greedy, stopping at ``▁<EOT>``/EOS;
- (b) codellama-ls: ``python -m codellama_ls`` over stdio, a request per keystroke (the local
  engine starts each at once; the next keystroke stops it within a token).

It also replays the (b) session's model calls through the engine with other prompt
orders, to show how many prompt tokens each must compute.

Context from other files (``--context``, default ``both``): the file lies in a workspace folder
with the standard library's other archive modules, and ``gzip.py`` is open beside it; (b) runs
once with ``contextTokens`` 0 (off) and once with the default 512 (on), and a second table sets
latency and KV reuse side by side. (a) and the replays use the first session's prompts, context
included. One command:

    python bench/latency.py            # trains the model first if bench/.cache has none (~5 min)
    python bench/latency.py --quick    # a small model and 24 keystrokes: every part, in about a minute (CI)

``--engine llamacpp``: the same keystrokes, once with the local engine and once against a real
llama-server (``.ci/llama-server.sh`` builds it) serving the same weights converted to an f32 GGUF,
side by side in one table: latency p50/p95 and the prompt tokens the server really computed per
request (its ``timings.prompt_n``). Context from other files is off in both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shutil
import statistics
import sys
import sysconfig
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from lsprotocol import types  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402
from train_model import CACHE, DEFAULT_OUT, HELD_OUT, QUICK_OUT, ensure_model  # noqa: E402

from codellama_ls.postprocess import Context, postprocess  # noqa: E402

KEY_INTERVAL = 0.125  # 8 keystrokes a second
WARM_DELAY = 0.3  # the editor tells the server where the cursor rests after this (codellama/warm)
ARRIVE_REST = 1.5  # the cursor rests at a new place (the first, after a move) before the user types or asks
TAB_ROUNDS = 8  # after the script: Tab accepts the suggestion on screen, then one keystroke typing on
WORKSPACE = CACHE / "latency-workspace"  # tarfile.py among the stdlib's other archive modules
NEIGHBOURS = ("gzip.py", "bz2.py", "lzma.py", "zipfile", "zipfile.py", "shutil.py", "_compression.py")
OPEN_BESIDE = "gzip.py"  # open in the editor too: a source of similar code
URI = (WORKSPACE / HELD_OUT).as_uri()


# -- the document and the script ---------------------------------------------------------
@dataclass
class Site:
    """A method whose body was removed; the user types it again at ``offset``."""

    name: str
    offset: int  # cursor offset in the document text
    body: str  # what the user types in "other" bursts
    typed: int = 0  # how much of ``body`` is typed


def make_document() -> tuple[str, list[Site]]:
    """tarfile.py with the bodies of two methods ~1,000 lines apart removed."""
    text = (Path(sysconfig.get_paths()["stdlib"]) / HELD_OUT).read_text(encoding="utf-8")
    lines = text.split("\n")
    methods = []
    for i, line in enumerate(lines):
        if re.fullmatch(r"    def \w+\(self.*\):", line):
            end = i + 1
            while end < len(lines) and (not lines[end].strip() or lines[end].startswith("        ")):
                end += 1
            while not lines[end - 1].strip():
                end -= 1
            if 7 <= end - i <= 15 and '"""' not in lines[i + 1]:
                methods.append((i, end))
    first = min(methods, key=lambda m: abs(m[0] - 0.45 * len(lines)))
    second = min(methods, key=lambda m: abs(m[0] - 0.8 * len(lines)))
    sites = []
    for start, end in sorted((first, second), reverse=True):  # the later one first: offsets stay valid
        body = "\n".join(lines[start + 1 : end])[8:]  # typed after the indentation of the first line
        lines[start + 1 : end] = ["        "]
        sites.append((lines[start].strip(), start + 1, body))
    text = "\n".join(lines)
    line_starts = [0]
    for line in lines:
        line_starts.append(line_starts[-1] + len(line) + 1)
    out = [Site(name, line_starts[row] + 8, body) for name, row, body in sites]
    return text, sorted(out, key=lambda s: s.offset)


@dataclass
class Burst:
    kind: str  # "accept": the suggestion's first characters; "other": the removed code; "move": cursor jump
    site: int
    length: int  # keystrokes
    pause: float  # seconds after the answer


def make_script(seed: int, keystrokes: int) -> list[Burst]:
    rng = random.Random(seed)
    bursts: list[Burst] = []
    total, site, n = 0, 0, 0
    while total < keystrokes:
        if n in (14, 28):  # move to the other method, and later back
            site = 1 - site
            bursts.append(Burst("move", site, 0, rng.uniform(0.4, 1.0)))
        length = rng.randint(3, 8)
        bursts.append(Burst("accept" if n % 2 else "other", site, length, rng.uniform(0.4, 1.2)))
        total += length
        n += 1
    return bursts


def make_workspace(text: str) -> Path:
    """The workspace folder: the edited file (as last saved) and its neighbours in the standard library."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    WORKSPACE.mkdir(parents=True, exist_ok=True)
    for name in NEIGHBOURS:
        source, target = stdlib / name, WORKSPACE / name
        if source.is_dir() and not target.exists():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.is_file():
            shutil.copyfile(source, target)
    (WORKSPACE / HELD_OUT).write_text(text, encoding="utf-8")
    return WORKSPACE


def position(text: str, offset: int) -> types.Position:
    line_start = text.rfind("\n", 0, offset) + 1
    part = text[line_start:offset]
    return types.Position(line=text.count("\n", 0, offset), character=len(part.encode("utf-16-le")) // 2)


def keys_of(text: str) -> list[str]:
    """Split typed code into keystrokes; Enter brings the next line's indentation (auto-indent)."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\n":
            j = i + 1
            while j < len(text) and text[j] == " ":
                j += 1
            out.append(text[i:j])
            i = j
        else:
            out.append(text[i])
            i += 1
    return out


# -- (b): the server over stdio ------------------------------------------------------------
@dataclass
class Record:
    burst: int
    kind: str  # accept / other / move ("accept" falls back to "other" when nothing is shown)
    keys: int
    latency_ms: float  # last keystroke -> answer
    source: str | None  # typed / cache / model (None: no answer)
    model_calls: int
    engine_ms: float = 0.0
    prefill: int = 0
    decoded: int = 0
    overhead_ms: float = 0.0  # end to end, minus engine time and the waits before it
    server_ms: float = 0.0  # inside the server, minus engine time and the waits before it
    debounce_ms: float = 0.0  # the server's debounce before the answering generation (none for the local engine)
    queue_ms: float = 0.0  # its wait for the superseded generation to stop
    generations: int = 0  # generations run during the burst, the answering one included
    prefill_all: int = 0  # prompt tokens computed by all of them
    wasted: int = 0  # tokens decoded for answers nobody saw (cancelled or superseded)
    decoded_all: int = 0  # tokens decoded by all the burst's generations
    answer: str | None = None
    prefix: str = ""  # LF text around the cursor at the last keystroke, for the replays
    suffix: str = ""
    typed_ms: list[float] = field(default_factory=list)  # answers to the burst's other keystrokes
    context: str = ""  # the context block of the prompt at the last keystroke (codellama/prompt)
    context_tokens: int = 0
    prompt_tokens: int = 0  # the answering model call's whole prompt


async def run_server(
    model: Path,
    text: str,
    sites: list[Site],
    script: list[Burst],
    settings: dict,
    context_tokens: int = 0,
    engine: dict | None = None,
    tab_rounds: int = TAB_ROUNDS,
) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODELLAMA_LS_")}
    env.update({"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": str(settings["threads"])})
    client = LanguageClient("latency-bench", "1")
    log = CACHE / "latency-server.log"
    await client.start_io(
        sys.executable, "-m", "codellama_ls", "--log-file", str(log), "--log-level", "WARNING", env=env, cwd=str(ROOT)
    )
    options = {k: v for k, v in settings.items() if k != "threads"} | {"model": str(model), "device": "cpu"}
    options["contextTokens"] = context_tokens
    options |= engine or {}  # another engine than the local one (--engine llamacpp)
    folder = types.WorkspaceFolder(uri=WORKSPACE.as_uri(), name=WORKSPACE.name)
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(), initialization_options=options, workspace_folders=[folder]
        )
    )
    client.initialized(types.InitializedParams())

    async def status() -> dict:
        return plain(await client.protocol.send_request_async("codellama/status", {}))

    while (st := await status())["state"] not in ("ready", "failed"):
        await asyncio.sleep(0.1)
    if st["state"] == "failed":
        raise SystemExit(f"the server could not load the model: {st['error']}")
    beside = WORKSPACE / OPEN_BESIDE
    for uri, content in ((beside.as_uri(), beside.read_text(encoding="utf-8")), (URI, text)):
        item = types.TextDocumentItem(uri=uri, language_id="python", version=1, text=content)
        client.text_document_did_open(types.DidOpenTextDocumentParams(item))
    version = 1

    def edit(offset: int, insert: str) -> None:
        nonlocal version, text
        version += 1
        pos = position(text, offset)
        text = text[:offset] + insert + text[offset:]
        for other in sites:  # the typing site moves with its text, and so does any site below it
            if other.offset >= offset:
                other.offset += len(insert)
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
                content_changes=[types.TextDocumentContentChangePartial(range=types.Range(pos, pos), text=insert)],
            )
        )

    async def ask(offset: int) -> tuple[str | None, float]:
        sent = time.perf_counter()
        result = await client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=URI),
                position=position(text, offset),
                context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
            )
        )
        done = time.perf_counter()
        items = result.items if result else []
        return (str(items[0].insert_text) if items else None), (done - sent) * 1000

    def warm(offset: int) -> None:
        """What the editor sends once the cursor rests (Neovim plugin, VS Code extension, Emacs)."""
        client.protocol.notify("codellama/warm", prompt_params(text, offset))

    async def rest(offset: int, seconds: float) -> None:
        """The cursor rests at ``offset``: the editor says so after WARM_DELAY."""
        if seconds >= WARM_DELAY:
            await asyncio.sleep(WARM_DELAY)
            warm(offset)
            seconds -= WARM_DELAY
        await asyncio.sleep(seconds)

    records: list[Record] = []
    shown: str | None = None
    before = await status()
    for number, burst in enumerate(script):
        site = sites[burst.site]
        if number == 0 or burst.kind == "move":  # the cursor arrives at a new place and rests there first
            await rest(site.offset, ARRIVE_REST)
        calls_before, typed_before = before["generations"], before["typedThroughHits"]
        typed_ms: list[float] = []
        kind = burst.kind
        if kind == "move":
            answer, latency = await ask(site.offset)
        else:
            typeable = shown[: min(burst.length, len(shown) - 1)] if kind == "accept" and shown else ""
            keys = keys_of(typeable) if typeable.strip() else None  # the start of it, never all of it
            if keys is None:
                kind = "other"
                keys = keys_of(site.body[site.typed :])[: burst.length] or [" "]
                site.typed += len("".join(keys))
            pending = []
            for index, key in enumerate(keys):
                start = time.perf_counter()
                edit(site.offset, key)
                pending.append(asyncio.ensure_future(ask(site.offset)))
                if index + 1 < len(keys):
                    await asyncio.sleep(max(0.0, KEY_INTERVAL - (time.perf_counter() - start)))
            answer, latency = await pending[-1]
            for future in pending[:-1]:
                earlier, ms = await future
                if earlier is not None and kind == "accept":
                    typed_ms.append(ms)
        after = await status()
        source = after["lastSource"] if answer is not None or after["generations"] > calls_before else None
        record = Record(
            number, kind, 0 if kind == "move" else len(keys), latency, source, after["generations"] - calls_before
        )
        cursor = site.offset
        record.prefix, record.suffix = text[:cursor], text[cursor:]
        record.generations = after["generations"] - calls_before
        record.prefill_all = after["decode"]["prefillTokens"] - before["decode"]["prefillTokens"]
        record.wasted = after["decode"]["wastedTokens"] - before["decode"]["wastedTokens"]
        record.decoded_all = after["decode"]["tokens"] - before["decode"]["tokens"]
        # Earlier keystrokes of the burst may have run generations too (nothing waits for typing to
        # pause): the last answer's source says whether the model answered the last keystroke.
        if after["generations"] > calls_before and after["last"] and after["lastSource"] == "model":
            last = after["last"]
            record.source = "model"
            record.engine_ms = last["seconds"] * 1000
            record.prefill, record.decoded = last["prefillTokens"], last["newTokens"]
            record.prompt_tokens = last["promptTokens"]
            record.debounce_ms, record.queue_ms = after["wait"]["debounceMs"], after["wait"]["queueMs"]
            waits = record.debounce_ms + record.queue_ms
            record.overhead_ms = latency - record.engine_ms - waits
            record.server_ms = (after["lastAnswerMs"] or 0.0) - record.engine_ms - waits
        else:
            record.overhead_ms = latency
            record.server_ms = after["lastAnswerMs"] or 0.0
        if kind == "accept":
            record.typed_ms = typed_ms if after["typedThroughHits"] - typed_before >= len(keys) - 1 else []
        record.answer = answer
        seen = plain(await client.protocol.send_request_async("codellama/prompt", prompt_params(text, cursor)))
        record.context, record.context_tokens = seen["contextText"], sum(c["tokens"] for c in seen["context"])
        records.append(record)
        shown = answer.replace("\r\n", "\n") if answer else None
        print(
            f"  {number:3d} {kind:6s} keys={record.keys} {latency:8.1f} ms  {record.source or '-':6s} "
            f"prefill={record.prefill:4d} decoded={record.decoded:3d} generations={record.generations} "
            f"wasted={record.wasted} queue={record.queue_ms:.1f} ms {answer!r:.40}",
            flush=True,
        )
        before = after
        await rest(site.offset, burst.pause)
    tabs = await tab_and_type_on(tab_rounds, sites[script[-1].site], ask, edit, status, rest)
    final = await status()
    round_trips = []  # the floor any answer pays: a request that does nothing, through the same pipes
    for _ in range(30):
        start = time.perf_counter()
        await client.protocol.send_request_async("codellama/status", {})
        round_trips.append((time.perf_counter() - start) * 1000)
        await asyncio.sleep(0.05)
    rss = peak_rss_mb(client._server.pid) if client._server else None
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return {"records": records, "status": final, "peak_rss_mb": rss, "round_trip_ms": round_trips, "tabs": tabs}


async def tab_and_type_on(rounds: int, site: Site, ask: Any, edit: Any, status: Any, rest: Any) -> list[dict]:
    """Accept the suggestion on screen with Tab after a pause, then type on: the editor asks at the end
    of the inserted text (``tab``), and again after the next keystroke, the first character of what is
    shown then (``on``). The server prefetches what follows an accept while the user reads."""
    rows: list[dict] = []
    shown, _ = await ask(site.offset)
    for _ in range(rounds * 6):
        if len(rows) >= rounds:
            break
        if not shown or not shown.strip():  # nothing to accept: the user types on (the removed code)
            key = site.body[site.typed : site.typed + 1] or " "
            site.typed += 1
            edit(site.offset, key)
            shown, _ = await ask(site.offset)
            await asyncio.sleep(KEY_INTERVAL)
            continue
        await rest(site.offset, 1.0)  # reading the suggestion: the prefetch has time
        edit(site.offset, shown.replace("\r\n", "\n"))  # Tab: the whole suggestion in one edit
        after_tab, tab_ms = await ask(site.offset)
        tab_source = (await status())["lastSource"]
        key = after_tab[0] if after_tab else " "
        edit(site.offset, key)
        shown, on_ms = await ask(site.offset)
        on_source = (await status())["lastSource"]
        rows.append({"tab_ms": tab_ms, "tab_source": tab_source, "on_ms": on_ms, "on_source": on_source})
        print(f"  tab {tab_ms:7.1f} ms {tab_source:6s} then a key {on_ms:7.1f} ms {rows[-1]['on_source']}", flush=True)
    return rows


def prompt_params(text: str, offset: int) -> dict:
    pos = position(text, offset)
    return {"textDocument": {"uri": URI}, "position": {"line": pos.line, "character": pos.character}}


def plain(value: Any) -> Any:
    """pygls hands custom results over as namedtuples; make them JSON values again."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# -- (a): naive model.generate ------------------------------------------------------------
def run_naive(model_dir: Path, records: list[Record], settings: dict) -> list[dict]:
    import torch
    from transformers import AutoModelForCausalLM

    from codellama_ls.prompt.fim import build_prompt, prompt_budget
    from codellama_ls.prompt.tokens import CodeTokenizer

    torch.set_num_threads(settings["threads"])
    tok = CodeTokenizer.load(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    budget = prompt_budget(settings["maxPromptTokens"], model.config.max_position_embeddings, settings["maxNewTokens"])
    stop = [tok.special.eot, tok.special.eos]
    out = []
    for record in records:
        prompt = build_prompt(
            tok, record.prefix, record.suffix, fmt=settings["fimFormat"], budget=budget, context=record.context
        )
        ids = torch.tensor([prompt.ids])
        start = time.perf_counter()
        with torch.inference_mode():
            generated = model.generate(
                ids, max_new_tokens=settings["maxNewTokens"], do_sample=False, eos_token_id=stop, pad_token_id=stop[1]
            )
        seconds = time.perf_counter() - start
        new = [t for t in generated[0, ids.shape[1] :].tolist() if t not in stop]
        hit_limit = len(new) >= settings["maxNewTokens"]  # no ▁<EOT>/EOS: stopped by the token limit
        suggestion = postprocess(tok.decode(new), Context(record.prefix, record.suffix), truncated=hit_limit)
        out.append(
            {
                "latency_ms": settings["debounceMs"] + seconds * 1000,
                "prefill": len(prompt.ids),
                "decoded": len(new),
                "answer": suggestion.text if suggestion else None,
            }
        )
        row = out[-1]
        print(f"  naive {record.burst:3d} {row['latency_ms']:8.1f} ms  prefill={row['prefill']} new={row['decoded']}")
    return out


# -- prompt orders: tokens each model call must compute -------------------------------------
def replay_engine(model_dir: Path, settings: dict) -> tuple[Any, Any, int]:
    """The local engine on ``model_dir`` as the server runs it, a memo tokenizer and the prompt budget,
    for replaying the session's model calls in this process."""
    import torch

    from codellama_ls.config import Settings
    from codellama_ls.engines.local import LocalEngine
    from codellama_ls.prompt.fim import prompt_budget
    from codellama_ls.prompt.memo import MemoTokenizer

    torch.set_num_threads(settings["threads"])
    engine = LocalEngine(Settings(model=str(model_dir), device="cpu"))
    engine.load()
    assert engine.tokenizer is not None
    budget = prompt_budget(settings["maxPromptTokens"], engine.context_length, settings["maxNewTokens"])
    return engine, MemoTokenizer(engine.tokenizer), budget


def replay_orders(model_dir: Path, records: list[Record], settings: dict) -> list[dict]:
    """Run the (b) session's model calls through the engine (prefill only) with other prompt orders."""
    import dataclasses

    from codellama_ls.engines.base import GenerationRequest
    from codellama_ls.prompt.fim import build_prompt

    engine, tok, budget = replay_engine(model_dir, settings)
    calls = [r for r in records if r.source == "model"]
    rows = []
    for fmt, stable in (("spm", True), ("spm", False), ("psm", True)):
        engine.kv.clear()
        engine.settings = dataclasses.replace(engine.settings, fim_format=fmt)
        prefill, seconds = [], []
        for record in calls:
            prompt = build_prompt(
                tok,
                record.prefix,
                record.suffix,
                fmt=fmt,
                budget=budget,
                prefix_share=0.75,
                stable_cut=stable,
                context=record.context,
            )
            result = engine.generate(GenerationRequest(prompt=prompt, max_new_tokens=1, key=URI))
            prefill.append(result.prefill_tokens)
            seconds.append(result.seconds)
        rows.append(
            {
                "order": fmt + ("" if stable else ", cut moves every line"),
                "calls": len(calls),
                "prefill_mean": statistics.fmean(prefill),
                "prefill_p50": statistics.median(prefill),
                "prefill_ms_mean": statistics.fmean(seconds) * 1000,
                "prefill_ms_p50": statistics.median(seconds) * 1000,
            }
        )
        print(f"  order {rows[-1]}")
    return rows


# -- prompt lookup: the same greedy tokens in fewer forward passes -------------------------------
def replay_lookup(model_dir: Path, records: list[Record], settings: dict, limit: int) -> dict:
    """The (b) session's model calls (up to ``limit``) through :func:`compare_lookup`."""
    calls = [r for r in records if r.source == "model"][:limit]
    return compare_lookup(model_dir, [(r.prefix, r.suffix, r.context) for r in calls], settings)


def compare_lookup(model_dir: Path, cursors: list[tuple[str, str, str]], settings: dict) -> dict:
    """SPM prompts at ``cursors`` (prefix, suffix, context) through the engine, greedy, without early
    stop, prompt lookup off and on: decode tokens per second, drafts, identical text. Each prompt is
    warmed first (prefill only), so the generation's time is its decoding. ``bench/lookup.py`` uses it too."""
    from codellama_ls.engines.base import GenerationRequest
    from codellama_ls.prompt.fim import build_prompt

    engine, tok, budget = replay_engine(model_dir, settings)
    rows = []
    for prefix, suffix, context in cursors:
        prompt = build_prompt(tok, prefix, suffix, fmt="spm", budget=budget, context=context)
        row: dict[str, Any] = {}
        for mode in ("plain", "lookup"):
            engine.prompt_lookup = mode == "lookup"
            engine.kv.clear()
            engine.warm(GenerationRequest(prompt=prompt, max_new_tokens=1, key=URI))
            result = engine.generate(GenerationRequest(prompt=prompt, max_new_tokens=settings["maxNewTokens"], key=URI))
            row[mode] = {
                "text": result.text,
                "stop": result.stop_reason,
                "tokens": result.new_tokens,
                "seconds": result.seconds,
                "drafted": result.drafted,
                "accepted": result.accepted,
            }
        row["lines"] = row["plain"]["text"].count("\n") + 1
        rows.append(row)
        print(
            f"  lookup lines={row['lines']} tokens={row['plain']['tokens']} "
            f"plain {row['plain']['seconds'] * 1000:.0f} ms "
            f"lookup {row['lookup']['seconds'] * 1000:.0f} ms accepted {row['lookup']['accepted']}/"
            f"{row['lookup']['drafted']} same={row['plain']['text'] == row['lookup']['text']}",
            flush=True,
        )
    engine.prompt_lookup = True
    return {"rows": rows, "budget": budget}


def lookup_report(lookup: dict, calls: str = "the (b) session's model calls") -> list[str]:
    """The table of :func:`compare_lookup`'s rows: all answers, multi-line ones (and those of them that
    ended with ``▁<EOT>`` rather than at maxNewTokens), long ones."""
    rows = lookup["rows"]
    if not rows:
        return []
    lines = [
        "",
        f"Prompt lookup: {calls}, greedy to `▁<EOT>` or maxNewTokens with no early stop, "
        "prefill done first (warm), lookup off and on, in one process.",
        "",
        "| answers | count | identical text | tokens (mean) | decode tokens/s, plain / lookup | speed-up "
        "| draft tokens accepted / proposed |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    groups = (
        ("all", rows),
        ("multi-line", [r for r in rows if r["lines"] > 1]),
        ("multi-line, ending in `▁<EOT>`", [r for r in rows if r["lines"] > 1 and r["plain"].get("stop") == "eot"]),
        ("long (≥ 32 tokens)", [r for r in rows if r["plain"]["tokens"] >= 32]),
    )
    for name, group in groups:
        if not group:
            lines.append(f"| {name} | 0 | | | | | |")
            continue
        tokens = sum(r["plain"]["tokens"] for r in group)
        plain = tokens / max(sum(r["plain"]["seconds"] for r in group), 1e-9)
        fast = tokens / max(sum(r["lookup"]["seconds"] for r in group), 1e-9)
        same = sum(r["plain"]["text"] == r["lookup"]["text"] for r in group)
        accepted = sum(r["lookup"]["accepted"] for r in group)
        drafted = sum(r["lookup"]["drafted"] for r in group)
        speedup = f"{fast / plain:.2f} ×" if plain > 0 else "–"
        lines.append(
            f"| {name} | {len(group)} | {same} of {len(group)} | {tokens / len(group):.1f} | {plain:.1f} / {fast:.1f} "
            f"| {speedup} | {accepted} / {drafted} |"
        )
    return lines


# -- report ----------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def report(
    info: dict, server: dict, naive: list[dict], orders: list[dict], settings: dict, lookup: dict | None = None
) -> str:
    records: list[Record] = server["records"]
    calls = [r for r in records if r.source == "model"]
    generations = sum(r.generations for r in records)
    wasted = sum(r.wasted for r in records)
    debounces = [r.debounce_ms for r in calls]
    queues = [r.queue_ms for r in calls]
    typed = [ms for r in records for ms in r.typed_ms] + [r.latency_ms for r in records if r.source == "typed"]
    b_lat = [r.latency_ms for r in records]
    a_lat = [n["latency_ms"] for n in naive]
    overhead = [r.overhead_ms for r in records if r.source is not None]
    model_overhead = [r.overhead_ms for r in calls]
    inside = [r.server_ms for r in records if r.source is not None]
    typed_inside = [r.server_ms for r in records if r.source == "typed"]
    trips = server["round_trip_ms"]
    same = sum(1 for r, n in zip(records, naive, strict=True) if r.source == "model" and r.answer == n["answer"])
    kinds = {k: sum(1 for r in records if r.kind == k) for k in ("accept", "other", "move")}
    sources = {k: sum(1 for r in records if r.source == k) for k in ("typed", "cache", "model")}
    keys = sum(r.keys for r in records)
    p50a, p50b = pct(a_lat, 50), pct(b_lat, 50)
    p50m = pct([r.latency_ms for r in calls], 50)
    decoded = sum(r.decoded_all for r in records)
    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
        f"({cpu_name()}), torch threads {settings['threads']}, Python {platform.python_version()}; "
        f"load average at the start {info['load']}.",
        f"Weights: {info['weights']}.",
        f"Session: {keys} keystrokes in {len(records)} bursts ({kinds['accept']} typing the suggestion's start, "
        f"{kinds['other']} other text, {kinds['move']} cursor moves) into {HELD_OUT} "
        f"({info['lines']} lines); settings {json.dumps({k: v for k, v in settings.items() if k != 'threads'})}.",
        "",
        "| | (a) naive `model.generate` | (b) codellama-ls over LSP |",
        "| --- | ---: | ---: |",
        f"| model calls answering the last keystroke of a burst | {len(naive)} | {len(calls)} "
        f"(+{sources['typed']} typed-through, {sources['cache']} cached) |",
        f"| generations run, all keystrokes | {len(naive)} | {generations} |",
        f"| latency p50, last keystroke → answer | {p50a:.0f} ms | {p50b:.0f} ms ({p50b / p50a:.2f} × a) |",
        f"| latency p95 | {pct(a_lat, 95):.0f} ms | {pct(b_lat, 95):.0f} ms |",
        f"| latency p50 of the bursts the model answered | {p50a:.0f} ms | {p50m:.0f} ms ({p50m / p50a:.2f} × a) |",
        f"| prompt tokens computed per model call (mean) | {statistics.fmean(n['prefill'] for n in naive):.0f} "
        f"| {statistics.fmean(r.prefill for r in calls) if calls else 0:.0f} |",
        f"| prompt tokens computed per burst, all generations (mean) | "
        f"{statistics.fmean(n['prefill'] for n in naive):.0f} "
        f"| {sum(r.prefill_all for r in records) / len(records):.0f} |",
        f"| tokens decoded per model call (mean) | {statistics.fmean(n['decoded'] for n in naive):.1f} "
        f"| {statistics.fmean(r.decoded for r in calls) if calls else 0:.1f} |",
        f"| wasted decode: tokens decoded for answers nobody saw (cancelled or superseded), total (share of "
        f"all decoded) / per generation (mean) | 0 / 0 | {wasted} ({wasted / max(decoded, 1):.0%}) / "
        f"{wasted / max(generations, 1):.2f} |",
        f"| wait before the answering generation: debounce p50 / max; worker still busy (a superseded "
        f"generation stopping) after the request came in, p50 / max | {settings['debounceMs']} ms (fixed) "
        f"| {pct(debounces, 50):.0f} / "
        f"{max(debounces, default=0):.0f} ms; {pct(queues, 50):.1f} / {max(queues, default=0):.1f} ms |",
        f"| typed-through answers: count, p50, max | – | {len(typed)}, {pct(typed, 50):.1f} ms, "
        f"{max(typed, default=float('nan')):.1f} ms (0 model calls) |",
        f"| typed-through answers inside the server, p50 / max | – | {pct(typed_inside, 50):.2f} / "
        f"{max(typed_inside, default=float('nan')):.2f} ms |",
        f"| JSON-RPC round trip of `codellama/status` over the same pipes, p50 / p95 | – | {pct(trips, 50):.1f} / "
        f"{pct(trips, 95):.1f} ms |",
        f"| server overhead p50 / p95: end to end minus engine time and the waits above "
        f"| – | {pct(overhead, 50):.1f} / {pct(overhead, 95):.1f} ms |",
        f"| the same, model calls only | – | {pct(model_overhead, 50):.1f} / {pct(model_overhead, 95):.1f} ms |",
        f"| the same, inside the server only (no JSON-RPC, no pipes) | – | {pct(inside, 50):.1f} / "
        f"{pct(inside, 95):.1f} ms |",
        f"| peak RSS of the server | – | {server['peak_rss_mb']:.0f} MB |",
        f"| model answers identical to (a)'s | | {same} of {len(calls)} |",
        *work_rows(server),
    ]
    if orders:
        lines += [
            "",
            "Prompt order: the (b) session's model calls replayed through the engine, prefill only.",
            "",
            "| order | model calls | tokens computed per call, mean / p50 | prefill time, mean / p50 |",
            "| --- | ---: | ---: | ---: |",
        ]
    for row in orders:
        lines.append(
            f"| {row['order']} | {row['calls']} | {row['prefill_mean']:.0f} / {row['prefill_p50']:.0f} "
            f"| {row['prefill_ms_mean']:.0f} / {row['prefill_ms_p50']:.0f} ms |"
        )
    lines += lookup_report(lookup or {"rows": []})
    return "\n".join(lines)


def work_rows(server: dict) -> list[str]:
    """Rows of the (b) column for the work done ahead and in pieces (issue 21): warm-ups, prefill
    chunks and the prefills a newer request stopped, prefetches, look-aheads, and the answers after a Tab."""
    decode = server["status"]["decode"]
    warm, prefetch, ahead = decode.get("warm", {}), decode.get("prefetch", {}), decode.get("ahead", {})
    tabs = server.get("tabs", [])
    tab_ms, on_ms = [t["tab_ms"] for t in tabs], [t["on_ms"] for t in tabs]
    tab_sources = {k: sum(t["tab_source"] == k for t in tabs) for k in ("typed", "cache", "model")}
    on_sources = {k: sum(t["on_source"] == k for t in tabs) for k in ("typed", "cache", "model")}
    timing = server["status"].get("prefillChunks", {})  # the server's own full chunks
    chunk, longest = timing.get("msP50", float("nan")), timing.get("msMax", float("nan"))
    return [
        f"| warm-ups (`codellama/warm` when the cursor rests): notifications / prefills run / prompt tokens "
        f"computed | – | {warm.get('requests', 0)} / {warm.get('prefills', 0)} / {warm.get('tokens', 0)} |",
        f"| prefill chunks ({timing.get('size', '?')} tokens: {chunk:.0f} ms median, {longest:.0f} ms the longest) "
        f"/ prefills stopped between chunks by a newer request / warm-ups, prefetches and look-aheads a request "
        f"stopped | – | {decode.get('chunks', 0)} / {decode.get('interruptedPrefills', 0)} / "
        f"{server['status']['wait'].get('backgroundStopped', 0)} |",
        f"| prefetches (the answer after accepting the shown one): made / used / tokens decoded | – | "
        f"{prefetch.get('made', 0)} / {prefetch.get('used', 0)} / {prefetch.get('tokens', 0)} |",
        f"| look-aheads (the prompt after the next step of its cut, while the user rests): computed / prompt "
        f"tokens / used by a request | – | {ahead.get('prefills', 0)} / {ahead.get('tokens', 0)} / "
        f"{server['status'].get('kvCache', {}).get('aheadUsed', 0)} |",
        f"| Tab after a 1 s pause, then the next keystroke: answer after Tab p50 / max; after the keystroke "
        f"p50 / max ({len(tabs)} rounds) | – | {pct(tab_ms, 50):.1f} / {max(tab_ms, default=float('nan')):.1f} ms "
        f"({tab_sources['cache']} cached, {tab_sources['model']} model); {pct(on_ms, 50):.1f} / "
        f"{max(on_ms, default=float('nan')):.1f} ms ({on_sources['typed']} typed-through, {on_sources['cache']} "
        f"cached, {on_sources['model']} model) |",
        f"| prompt-lookup draft tokens accepted / proposed, all generations | – | "
        f"{decode.get('draftsAccepted', 0)} / {decode.get('draftTokens', 0)} |",
    ]


def context_report(runs: dict[str, dict]) -> str:
    """Context off and on, side by side: latency and what the KV cache saved."""
    rows: dict[str, list[str]] = {}
    for server in runs.values():
        records: list[Record] = server["records"]
        calls = [r for r in records if r.source == "model"]
        latency = [r.latency_ms for r in records]
        prefill = [float(r.prefill) for r in calls]
        overhead = [r.overhead_ms for r in calls]
        blocks = server["status"].get("context", {}).get("blocks", {})
        context_mean = statistics.fmean([r.context_tokens for r in records] or [0])
        cells = {
            "model calls (+ typed-through, cached)": f"{len(calls)} (+{sum(r.source == 'typed' for r in records)}, "
            f"{sum(r.source == 'cache' for r in records)})",
            "latency p50 / p95, last keystroke → answer": f"{pct(latency, 50):.0f} / {pct(latency, 95):.0f} ms",
            "prompt tokens computed per model call (KV reuse), mean / p50": f"{statistics.fmean(prefill or [0]):.0f} "
            f"/ {pct(prefill, 50):.0f}",
            "prompt length per model call, mean": f"{statistics.fmean([r.prompt_tokens for r in calls] or [0]):.0f}",
            "context tokens in the prompt at the last keystroke, mean": f"{context_mean:.0f}",
            "server overhead of a model call p50 / p95": f"{pct(overhead, 50):.1f} / {pct(overhead, 95):.1f} ms",
            "context blocks: requests / built": f"{blocks.get('requests', 0)} / {blocks.get('rebuilt', 0)}",
        }
        for row, cell in cells.items():
            rows.setdefault(row, []).append(cell)
    lines = ["| | " + " | ".join(f"context {name}" for name in runs) + " |", "| --- |" + " ---: |" * len(runs)]
    lines += [f"| {row} | " + " | ".join(cells) + " |" for row, cells in rows.items()]
    return "\n".join(lines)


def compare_llamacpp(model: Path, script: list[Burst], settings: dict, info: dict) -> str:
    """(b) with the local engine and with llama-server on the same weights, one table (``--engine llamacpp``)."""
    from tests.support.llama_server import SKIP_REASON, LlamaServer, convert_to_gguf, have_llama_server

    if not have_llama_server():
        raise SystemExit(f"--engine llamacpp {SKIP_REASON}")
    gguf = convert_to_gguf(model, CACHE / f"{model.name}-f32.gguf")
    runs: dict[str, dict] = {}
    print(f"(b) codellama-ls over stdio, local engine: {len(script)} bursts")
    text, sites = make_document()
    runs["local"] = asyncio.run(run_server(model, text, sites, script, settings))
    threads = ("-t", str(settings["threads"]), "-tb", str(settings["threads"]))
    with LlamaServer(gguf, ctx=4096, log=CACHE / "llama-server.log", extra=threads) as server:
        print(f"(b) codellama-ls over stdio, llama-server at {server.url}: {len(script)} bursts")
        text, sites = make_document()
        engine = {"engine": "llamacpp", "url": server.url}
        runs["llamacpp"] = asyncio.run(run_server(model, text, sites, script, settings, engine=engine))
    rows = []
    for name, run in runs.items():
        records: list[Record] = run["records"]
        calls = [r for r in records if r.source == "model"]
        latency = [r.latency_ms for r in records]
        prompt = [r.prompt_tokens for r in calls]
        prefill = [r.prefill for r in calls]
        mean_prompt = statistics.mean(prompt) if prompt else 0.0
        mean_prefill = statistics.mean(prefill) if prefill else 0.0
        rows.append(
            f"| {name} | {pct(latency, 50):.0f} / {pct(latency, 95):.0f} | "
            f"{pct([r.engine_ms for r in calls], 50):.0f} | {len(calls)} | "
            f"{mean_prompt:.0f} | {pct(prefill, 50):.0f} / {mean_prefill:.0f} |"
        )
    return "\n".join(
        [
            f"Model {info['weights']}, the same weights in both engines (llama-server: f32 GGUF); "
            f"{len(script)} bursts, maxNewTokens {settings['maxNewTokens']}, {settings['threads']} thread(s).",
            "",
            "| engine | latency p50 / p95 ms | engine p50 ms | model answers | prompt tokens (mean) | "
            "prompt tokens computed p50 / mean |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    )


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="checkpoint folder (made if missing)")
    parser.add_argument("--quick", action="store_true", help="small model, 24 keystrokes: checks every part runs")
    parser.add_argument("--keystrokes", type=int, default=None, help="default 200 (24 with --quick)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on both sides")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default 128 (16 with --quick)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-orders", action="store_true", help="skip the prompt-order replay")
    parser.add_argument("--lookup-calls", type=int, default=None, help="model calls replayed for prompt lookup")
    parser.add_argument(
        "--context", choices=["on", "off", "both"], default="both", help="context from other files in (b)"
    )
    parser.add_argument(
        "--engine", choices=["local", "llamacpp"], default="local", help="llamacpp: local and llama-server side by side"
    )
    args = parser.parse_args()
    args.model = args.model or (QUICK_OUT if args.quick else DEFAULT_OUT)
    args.keystrokes = args.keystrokes or (24 if args.quick else 200)
    args.max_new_tokens = args.max_new_tokens or (16 if args.quick else 128)
    settings = {
        "threads": args.threads,
        "maxNewTokens": args.max_new_tokens,
        "maxPromptTokens": 2048,
        "fimFormat": "spm",
        "debounceMs": 150,
        "temperature": 0.0,
    }
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    model_info = ensure_model(args.model, quick=args.quick)
    text, sites = make_document()
    make_workspace(text)
    info = {"weights": model_info["weights"], "load": load, "lines": text.count("\n") + 1}
    script = make_script(args.seed, args.keystrokes)
    if args.engine == "llamacpp":
        table = compare_llamacpp(args.model, script, settings, info)
        print()
        print(table)
        (CACHE / f"{'quick-' if args.quick else ''}latency-llamacpp-table.md").write_text(table + "\n")
        return
    runs: dict[str, dict] = {}
    for mode in ("off", "on") if args.context == "both" else (args.context,):
        print(f"(b) codellama-ls over stdio, context {mode}: {len(script)} bursts")
        text, sites = make_document()  # the sessions change both
        runs[mode] = asyncio.run(run_server(args.model, text, sites, script, settings, 512 if mode == "on" else 0))
    server = next(iter(runs.values()))  # (a) and the replays answer the first session's requests
    print("(a) naive model.generate")
    naive = run_naive(args.model, server["records"], settings)
    orders = [] if args.skip_orders else replay_orders(args.model, server["records"], settings)
    lookup = replay_lookup(args.model, server["records"], settings, args.lookup_calls or (3 if args.quick else 24))
    table = report(info, server, naive, orders, settings, lookup)
    if len(runs) > 1:
        table += "\n\nContext from other files, off and on (the same keystrokes, `contextTokens` 0 and 512):\n\n"
        table += context_report(runs)
    print()
    print(table)
    raw = {
        "info": info,
        "settings": settings,
        "records": [asdict(r) | {"prefix": None, "suffix": None} for r in server["records"]],
        "naive": naive,
        "orders": orders,
        "lookup": lookup,
        "tabs": server["tabs"],
        "status": server["status"],
        "context": {
            mode: {**run, "records": [asdict(r) | {"prefix": None, "suffix": None} for r in run["records"]]}
            for mode, run in runs.items()
        },
    }
    stem = "quick-latency" if args.quick else "latency"
    (CACHE / f"{stem}-results.json").write_text(json.dumps(raw, indent=1, default=str))
    (CACHE / f"{stem}-table.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
