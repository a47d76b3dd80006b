"""The request side of code actions: which engine answers, how chat prompts reach the engines,
and how actions share the generation worker with suggestions (fake engine, fake TGI server)."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import client_capabilities

from codellama_ls.actions.service import ActionError, ActionService, choose
from codellama_ls.config import Settings
from codellama_ls.engines.base import EngineState, GenerationRequest
from codellama_ls.engines.openai import OpenAIEngine
from codellama_ls.lsp.actions import ClientSupport
from codellama_ls.notify import Notifier
from codellama_ls.pipeline.completion import Pipeline
from codellama_ls.prompt.chat import ChatPrompt, build_chat_prompt, parse_messages, server_text
from codellama_ls.prompt.fim import Prompt
from codellama_ls.prompt.tokens import CodeTokenizer
from codellama_ls.session import Session
from tests.support.fake_engine import FakeEngine
from tests.support.fake_remote import FakeServer, Stream, engine_for, reuse_tokenizers, tokens  # noqa: F401
from tests.support.tiny_model import SHARED

INSTRUCT = "codellama/CodeLlama-7b-Instruct-hf"
BASE = "codellama/CodeLlama-7b-hf"
VECTORS = SHARED / "instruct-vectors" / "codellama-instruct.jsonl"


def settings(**values: Any) -> Settings:
    s, errors = Settings().updated(values)
    assert not errors
    return s


def served(model_id: str) -> FakeEngine:
    engine = FakeEngine()
    engine.model_id = model_id
    return engine


# -- which engine ----------------------------------------------------------------------------------
def test_local_engine_choice():
    assert choose(settings(model=INSTRUCT), FakeEngine()).where == "completion"
    none = choose(settings(model=BASE), FakeEngine())
    assert none.where is None
    assert none.reason == (
        f"no code actions: model {BASE} is not an Instruct model; set instructModel to a Code Llama - Instruct "
        f"model (e.g. {INSTRUCT})"
    )
    second = choose(settings(model=BASE, instructModel=INSTRUCT, tokenizer="/tok"), FakeEngine())
    assert second.where == "instruct" and second.settings is not None
    assert (second.settings.engine, second.settings.model, second.settings.tokenizer) == ("local", INSTRUCT, None)
    # 70B - Instruct speaks another chat format: not offered.
    assert choose(settings(model="codellama/CodeLlama-70b-Instruct-hf"), FakeEngine()).where is None
    # instructUrl is for remote engines; with the local engine the reason says so.
    assert (
        "instructUrl applies to the tgi, openai and llamacpp engines"
        in choose(settings(model=BASE, instructUrl="http://gpu:8080"), FakeEngine()).reason
    )


def test_instruct_model_naming_the_completion_model_shares_it(tmp_path: Path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    (tmp_path / "link").symlink_to(folder)
    for name in (str(folder), str(tmp_path / "link"), str(folder) + "/"):
        choice = choose(settings(model=str(folder), instructModel=name), FakeEngine())
        assert (choice.where, choice.reason) == ("completion", "instructModel is the completion model"), name
    assert choose(settings(model=str(folder), instructModel=str(tmp_path)), FakeEngine()).where == "instruct"


def test_remote_engine_choice():
    tgi = {"engine": "tgi", "url": "http://gpu:8080"}
    assert choose(settings(**tgi), served(INSTRUCT)).where == "completion"
    waiting = choose(settings(**tgi), served(""))
    assert waiting.where is None and "has not said which model it serves yet" in waiting.reason
    base = choose(settings(**tgi), served(BASE))
    assert base.where is None and f"serves {BASE}, which is not an Instruct model" in base.reason
    second = choose(settings(**tgi, instructUrl="http://gpu:8081", instructModel="cl-instruct"), served(BASE))
    assert second.where == "instruct" and second.settings is not None
    assert (second.settings.engine, second.settings.url, second.settings.model) == (
        "tgi",
        "http://gpu:8081",
        "cl-instruct",
    )
    assert choose(settings(**tgi, instructUrl="http://gpu:8080/"), served(BASE)).where == "completion"
    # instructModel alone: a model loaded in this process beside the remote completions.
    local = choose(settings(**tgi, instructModel=INSTRUCT), served(BASE))
    assert local.where == "instruct" and local.settings is not None and local.settings.engine == "local"
    # An OpenAI-compatible server without a model list is sent the `model` setting: that name decides.
    openai = {"engine": "openai", "url": "http://gpu:8000", "model": INSTRUCT}
    assert choose(settings(**openai), served("")).where == "completion"


def test_ollama_engine_choice():
    """One Ollama serves every pulled model: instructModel is another name on the same server."""
    ollama = {"engine": "ollama", "model": "codellama:7b-code"}
    assert choose(settings(**ollama), served("codellama:7b-instruct")).where == "completion"
    base = choose(settings(**ollama), served("codellama:7b-code"))
    assert base.where is None and "set instructModel to an Instruct model pulled into Ollama" in base.reason
    second = choose(settings(**ollama, instructModel="codellama:13b-instruct"), served("codellama:7b-code"))
    assert second.where == "instruct" and second.settings is not None
    assert (second.settings.engine, second.settings.url, second.settings.model) == (
        "ollama",
        None,  # the same (default) server
        "codellama:13b-instruct",
    )
    other = choose(
        settings(**ollama, url="http://a:11434", instructUrl="http://b:11434", instructModel="codellama:7b-instruct"),
        served("codellama:7b-code"),
    )
    assert other.settings is not None and (other.settings.url, other.settings.model) == (
        "http://b:11434",
        "codellama:7b-instruct",
    )


@pytest.mark.parametrize(
    ("client", "resolve", "create", "changes"),
    [("visual-studio-code", True, True, True), ("neovim", True, True, True), ("emacs", False, False, True)],
)
def test_what_clients_support(client: str, resolve: bool, create: bool, changes: bool):
    support = ClientSupport.of(client_capabilities(client))
    assert (support.resolve_edit, support.create_files, support.document_changes) == (resolve, create, changes)
    assert support.literals
    assert not ClientSupport.of(types.ClientCapabilities()).literals


# -- chat prompts through the engines ----------------------------------------------------------------
@pytest.fixture(scope="module")
def dialogs(tokenizer_dir: Path) -> list[dict[str, Any]]:
    if not VECTORS.is_file():
        pytest.skip(f"needs {VECTORS}")
    return [json.loads(line) for line in VECTORS.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def tok(tokenizer_dir: Path) -> CodeTokenizer:
    return CodeTokenizer.load(str(tokenizer_dir))


def test_text_for_servers_gives_the_reference_ids(tok, dialogs, tokenizer_dir):
    """TGI tokenizes text and adds BOS: the display text without its first ``<s>`` gives Meta's ids,
    except where a message itself contains ``<s>``/``</s>`` (the server reads those as specials)."""
    server = FakeServer(tokenizer_dir)  # only its tokenizer, as TGI loads tokenizer.json
    exact = 0
    for case in dialogs:
        prompt = build_chat_prompt(tok, parse_messages(case["messages"]), 100_000)
        special = any(t in m["content"] for m in case["messages"] for t in ("<s>", "</s>"))
        assert (server.token_ids(server_text(prompt)) == case["ids"]) is not special, case["source"]
        exact += not special
    assert exact == len(dialogs) - 2


def chat_request(tok: CodeTokenizer, text: str = "Write a haiku about tabs.", **kw: Any) -> GenerationRequest:
    prompt = build_chat_prompt(tok, parse_messages([{"role": "user", "content": text}]), 4096)
    return GenerationRequest(prompt=prompt, max_new_tokens=kw.pop("max_new_tokens", 512), **kw)


def test_tgi_chat_goes_as_text_to_eos(tok, tokenizer_dir):
    with FakeServer(tokenizer_dir, model_id=INSTRUCT) as server:
        engine = engine_for(server, tokenizer_dir)
        request = chat_request(tok)
        # An answer may write "<EOT>" (infilling stops there); only EOS ends it (TGI's eos_token).
        pieces = tokens("Tabs", " <", "EOT", ">", " and", " spaces")
        server.queue("/generate_stream", Stream(pieces, finish="eos_token"))
        result = engine.generate(request)
        assert (result.text, result.stop_reason) == ("Tabs <EOT> and spaces", "eos")
        body = server.seen_on("/generate_stream")[-1].body
        assert body["inputs"] == "[INST] Write a haiku about tabs. [/INST]"
        assert server.token_ids(body["inputs"]) == request.prompt.ids
        assert body["parameters"]["stop"] == [] and body["parameters"]["max_new_tokens"] == 512
        assert engine.status()["prompts"] == {"chatExact": 1}
        # The room a chat prompt has: within max input, and within max total minus the answer.
        server_limits = (server.max_input, server.max_total)
        assert engine.chat_limit(512) == min(server_limits[0], server_limits[1] - 512)


def test_openai_chat_goes_as_ids_without_stop(tok, tokenizer_dir):
    with FakeServer(tokenizer_dir, model_id=INSTRUCT) as server:
        engine = engine_for(server, tokenizer_dir, engine="openai")
        assert isinstance(engine, OpenAIEngine)
        request = chat_request(tok)
        server.queue("/v1/completions", Stream(tokens("Tabs", " align."), finish="stop"))
        assert engine.generate(request).text == "Tabs align."
        body = server.seen_on("/v1/completions")[-1].body
        assert body["prompt"] == request.prompt.ids and "stop" not in body


# -- sharing the worker -----------------------------------------------------------------------------
URI = "file:///w/geometry.py"
TEXT = "import math\n\n\ndef hyp(a, b):\n    return math.sqrt(a * a + b * b)\n"


def make(fake: FakeEngine, **values: Any) -> tuple[Pipeline, ActionService, list[str]]:
    shown: list[str] = []
    session = Session(settings(debounceMs=0, **values), Notifier(lambda m, k: shown.append(m)))
    session.host.use(fake)
    session.documents.open(types.TextDocumentItem(uri=URI, language_id="python", version=1, text=TEXT))
    return Pipeline(session), ActionService(session), shown


def docstring_plan(actions: ActionService) -> Any:
    doc = actions.session.documents.get(URI)
    plan = actions.plan("docstring", doc, (3, 5), (3, 5))
    assert plan is not None
    return plan


async def test_an_action_on_the_local_completion_model_is_not_dropped_by_typing(tok):
    """One worker for one model: the action runs on the completion scheduler under its own key, so a
    suggestion for the same document waits behind it instead of cancelling it."""
    release = threading.Event()

    def script(request: GenerationRequest) -> str:
        if isinstance(request.prompt, ChatPrompt):
            release.wait(30)
            return '```python\n"""Hypotenuse."""\n```'
        return "compute()"

    engine = FakeEngine(tok, script)
    completion, actions, shown = make(engine, model=INSTRUCT)
    _, scheduler = await actions.engine()
    assert scheduler is completion.session.scheduler
    running = asyncio.ensure_future(actions.run(docstring_plan(actions), completion.session.documents.get(URI)))
    while not engine.requests:
        await asyncio.sleep(0.01)
    suggestion = asyncio.ensure_future(completion.suggest(URI, types.Position(line=4, character=4)))
    await asyncio.sleep(0.2)
    assert not suggestion.done()  # queued behind the action
    release.set()
    outcome = await asyncio.wait_for(running, 30)
    assert outcome is not None and outcome.result.changes  # the action was not superseded
    assert (await asyncio.wait_for(suggestion, 30)) is not None
    chat, fim = engine.requests
    assert isinstance(chat.prompt, ChatPrompt)
    assert (chat.max_new_tokens, chat.timeout_s, chat.key) == (512, None, "codellama-ls:actions")
    [check] = chat.stop_checks()
    assert check is not None and not check("```python\n")  # no early stop for answers
    assert isinstance(fim.prompt, Prompt) and fim.prompt.format == "spm" and not shown


async def test_a_suggestion_queued_behind_a_long_action_says_so(tok):
    release = threading.Event()

    def script(request: GenerationRequest) -> str:
        if isinstance(request.prompt, ChatPrompt):
            release.wait(30)
        return '```python\n"""Hypotenuse."""\n```'

    engine = FakeEngine(tok, script)
    completion, actions, shown = make(engine, model=INSTRUCT, generationTimeoutMs=100)
    running = asyncio.ensure_future(actions.run(docstring_plan(actions), completion.session.documents.get(URI)))
    while not engine.requests:
        await asyncio.sleep(0.01)
    try:
        assert await asyncio.wait_for(completion.suggest(URI, types.Position(line=4, character=4)), 30) is None
    finally:
        release.set()
    assert shown == [
        "codellama-ls: another generation held the model for longer than 1.1s; the suggestion was skipped."
    ]
    assert (await asyncio.wait_for(running, 30)) is not None
    assert len(engine.requests) == 1  # the skipped suggestion never reached the model


async def test_actions_on_a_remote_engine_run_beside_suggestions(tok):
    engine = FakeEngine(tok, "x")
    engine.model_id = INSTRUCT
    completion, actions, _ = make(engine, engine="tgi", url="http://gpu:8080")
    _, scheduler = await actions.engine()
    assert scheduler is actions.beside and scheduler is not completion.session.scheduler


async def test_unavailable_actions_say_why(tok):
    engine = FakeEngine(tok, "x")
    completion, actions, _ = make(engine, model=BASE)
    assert actions.plans(completion.session.documents.get(URI), (3, 5), (3, 5), []) == []
    with pytest.raises(ActionError, match="set instructModel"):
        await actions.generate(docstring_plan(actions))
    engine.state = EngineState.LOADING
    completion.session.configure({"model": INSTRUCT})
    with pytest.raises(ActionError, match="still loading"):
        await actions.generate(docstring_plan(actions))
