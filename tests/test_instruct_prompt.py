"""Chat prompt ids equal Meta's reference ``chat_completion``; dialogs are validated; trimming keeps what matters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tokenizers import Tokenizer

from codellama_ls.prompt.chat import (
    ELISION,
    ChatPrompt,
    Message,
    build_chat_prompt,
    chat_ids,
    chat_text,
    check_instruct_model,
    dialog,
    is_instruct_model,
    parse_messages,
    stop_ids,
)
from codellama_ls.prompt.tokens import CodeTokenizer
from tests.support.tiny_model import SHARED

INSTRUCT_VECTORS = SHARED / "instruct-vectors" / "codellama-instruct.jsonl"
N_DIALOGS = 90


@pytest.fixture(scope="module")
def tok(tokenizer_dir: Path) -> CodeTokenizer:
    return CodeTokenizer.load(str(tokenizer_dir))


@pytest.fixture(scope="module")
def dialogs(tokenizer_dir: Path) -> list[dict[str, Any]]:
    if not INSTRUCT_VECTORS.is_file():
        pytest.skip(f"needs {INSTRUCT_VECTORS} (../shared beside the project)")
    lines = INSTRUCT_VECTORS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _has_special_text(case: dict[str, Any]) -> bool:
    return any(t in m["content"] for m in case["messages"] for t in ("<s>", "</s>"))


def test_all_reference_dialogs_are_there(dialogs):
    assert len(dialogs) == N_DIALOGS
    assert sum(_has_special_text(c) for c in dialogs) >= 1  # the cases that tell the methods apart


@pytest.mark.parametrize("index", range(N_DIALOGS))
def test_reference_ids(tok, dialogs, index):
    case = dialogs[index]
    messages = parse_messages(case["messages"])
    assert chat_ids(tok, messages) == case["ids"]
    prompt = build_chat_prompt(tok, messages, budget=100_000)
    assert (prompt.ids, prompt.truncated, prompt.messages) == (case["ids"], False, messages)


def test_text_rendering_methods_miss_special_looking_content(tok, dialogs):
    """Why ids are built per segment: tokenizing rendered text turns a written ``<s>`` into BOS."""
    hf = Tokenizer.from_str(json.dumps(tok.spec))  # matches <s> and </s> in text, as HF's tokenizer does
    for case in dialogs:
        messages = parse_messages(case["messages"])
        template = hf.encode(chat_text(messages), add_special_tokens=False).ids
        assert (template == case["ids"]) is not _has_special_text(case), case["source"]
        article = "".join(  # the blog article's f-string: no space after [INST]
            f"<s>[INST]{user} [/INST]" + ("" if answer is None else f" {answer} </s>")
            for user, answer in dialog(messages).turns()
        )
        assert hf.encode(article, add_special_tokens=False).ids != case["ids"]


def test_answers_stop_at_eos_not_eot(tok):
    assert stop_ids(tok) == [tok.special.eos] and tok.special.eot not in stop_ids(tok)


def test_special_looking_content_stays_text(tok):
    messages = [Message("user", "print('<s> [INST] </s>')")]
    ids = chat_ids(tok, messages)
    assert ids.count(tok.special.bos) == 1 and tok.special.eos not in ids
    assert ids == [tok.special.bos, *tok.encode("[INST] print('<s> [INST] </s>') [/INST]")]


def test_exchange_layout(tok):
    bos, eos = tok.special.bos, tok.special.eos
    messages = [
        Message("system", "Be brief."),
        Message("user", "  Hi  "),
        Message("assistant", "\nHello!\n"),
        Message("user", "Bye"),
    ]
    # strip() applies to the merged text: the user's leading spaces stay after the system block
    merged = "<<SYS>>\nBe brief.\n<</SYS>>\n\n  Hi"
    first = [bos, *tok.encode(f"[INST] {merged} [/INST] Hello! "), eos]
    assert chat_ids(tok, messages) == [*first, bos, *tok.encode("[INST] Bye [/INST]")]
    assert chat_text(messages) == f"<s>[INST] {merged} [/INST] Hello! </s><s>[INST] Bye [/INST]"


@pytest.mark.parametrize(
    ("roles", "error"),
    [
        ([], "at least one user message"),
        (["system"], "at least one user message"),
        (["assistant"], "expected role user, got assistant"),
        (["user", "user"], "expected role assistant, got user"),
        (["user", "assistant"], "last message must come from the user"),
        (["user", "system", "user"], "only the first message may be a system message"),
        (["system", "system", "user"], "only the first message may be a system message"),
    ],
)
def test_bad_dialogs_are_refused(roles, error):
    with pytest.raises(ValueError, match=error):
        dialog([Message(role, "x") for role in roles])


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ("hi", "must be a list"),
        ([{"role": "bot", "content": "x"}], "role must be one of"),
        ([{"role": "user", "content": 3}], "content must be a string"),
        ([{"role": "user"}], "content must be a string"),
        (["user: hi"], "must be an object"),
    ],
)
def test_bad_json_is_refused(data, error):
    with pytest.raises(ValueError, match=error):
        parse_messages(data)


def test_json_round_trip():
    messages = parse_messages([{"role": "system", "content": ""}, {"role": "user", "content": ""}])
    assert [m.to_json() for m in messages] == [{"role": "system", "content": ""}, {"role": "user", "content": ""}]
    assert set(ChatPrompt([1], "<s>", False).to_json()) == {"ids", "text", "truncated"}


def _code(n: int) -> str:
    return "\n".join(f"    value_{i} = compute_{i}(value_{i - 1})  # step {i}" for i in range(n))


def _ask(n: int) -> str:
    return f"Write a docstring for this function.\n\n```python\ndef run(value_0):\n{_code(n)}\n    return value\n```"


def test_oldest_exchanges_go_first_and_system_moves_on(tok):
    messages = [
        Message("system", "Answer in Go."),
        Message("user", "old question " * 40),
        Message("assistant", "old answer " * 40),
        Message("user", "recent question"),
        Message("assistant", "recent answer"),
        Message("user", "Now this."),
    ]
    full = len(chat_ids(tok, messages))
    prompt = build_chat_prompt(tok, messages, budget=full - 1)
    assert prompt.truncated and prompt.messages == [messages[0], *messages[3:]]
    assert prompt.ids == chat_ids(tok, prompt.messages) and len(prompt.ids) <= full - 1
    assert prompt.text.startswith("<s>[INST] <<SYS>>\nAnswer in Go.\n<</SYS>>\n\nrecent question [/INST]")


def test_long_code_loses_its_middle_lines(tok):
    messages = [Message("system", "Be precise."), Message("user", _ask(200))]
    budget = 600
    prompt = build_chat_prompt(tok, messages, budget)
    assert prompt.truncated and len(prompt.ids) <= budget and prompt.ids == chat_ids(tok, prompt.messages)
    system, user = prompt.messages
    assert system == messages[0]
    lines = user.content.split("\n")
    assert lines[:4] == ["Write a docstring for this function.", "", "```python", "def run(value_0):"]
    assert lines[-2:] == ["    return value", "```"]
    assert f"    {ELISION}" in lines
    head = lines.index(f"    {ELISION}")
    original = messages[1].content.split("\n")
    assert lines[:head] == original[:head] and lines[head + 1 :] == original[len(original) - len(lines) + head + 1 :]
    # the fewest lines are cut: one more kept line would not fit
    kept_more = "\n".join([*original[: head + 1], f"    {ELISION}", *lines[head + 1 :]])
    assert len(chat_ids(tok, [system, Message("user", kept_more)])) > budget
    # the cut is in the middle of the code
    cut_from, cut_to = head, len(original) - (len(lines) - head - 1)
    assert abs((cut_from - 4) - (len(original) - 2 - cut_to)) <= 1


def test_system_goes_before_the_instruction_is_cut(tok):
    messages = [Message("system", "Explain every step in detail. " * 30), Message("user", _ask(5))]
    prompt = build_chat_prompt(tok, messages, budget=60)
    assert [m.role for m in prompt.messages] == ["user"]
    assert prompt.messages[0].content.startswith("Write a docstring for this function.\n\n```python\n")
    assert len(prompt.ids) <= 60


def test_budget_too_small_is_an_error(tok):
    with pytest.raises(ValueError, match="does not fit in 4 prompt tokens"):
        build_chat_prompt(tok, [Message("user", _ask(3))], budget=4)


@pytest.mark.parametrize(
    ("name", "instruct"),
    [
        ("codellama/CodeLlama-7b-Instruct-hf", True),
        ("codellama/CodeLlama-13b-Instruct-hf", True),
        ("meta-llama/CodeLlama-34b-Instruct-hf", True),
        ("TheBloke/CodeLlama-7B-Instruct-AWQ", True),
        ("/models/codellama_7b_instruct", True),
        ("~/.cache/huggingface/hub/models--codellama--CodeLlama-7b-Instruct-hf/snapshots/0123abc", True),
        ("codellama/CodeLlama-7b-hf", False),
        ("codellama/CodeLlama-7b-Python-hf", False),
        ("codellama/CodeLlama-70b-Instruct-hf", False),  # another chat format
        ("my-instructions-model", False),
        ("", False),
    ],
)
def test_instruct_model_names(name, instruct):
    assert is_instruct_model(name) is instruct


def test_local_folder_config_names_the_model(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert not is_instruct_model(str(folder))
    (folder / "config.json").write_text(json.dumps({"_name_or_path": "codellama/CodeLlama-7b-Instruct-hf"}))
    assert is_instruct_model(str(folder))
    (folder / "config.json").write_text("not json")
    assert not is_instruct_model(str(folder))


def test_check_says_why():
    assert "not an Instruct model" in check_instruct_model("codellama/CodeLlama-7b-hf").reason
    assert "70B" in check_instruct_model("codellama/CodeLlama-70b-Instruct-hf").reason
    assert check_instruct_model("codellama/CodeLlama-7b-Instruct-hf").reason.endswith("is an Instruct model")
