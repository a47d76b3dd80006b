"""Chat prompts for Code Llama - Instruct, with the token ids of Meta's reference ``chat_completion``.

The reference (7B/13B/34B - Instruct) builds a dialog like this:

- a leading ``system`` message is merged into the first user message:
  ``<<SYS>>\\n{system}\\n<</SYS>>\\n\\n{user}``;
- each finished exchange is ``BOS + encode("[INST] {user.strip()} [/INST] {answer.strip()} ") + EOS``;
- the last user message is ``BOS + encode("[INST] {user.strip()} [/INST]")``.

``encode`` has sentencepiece semantics: each segment is encoded on its own with the implied
leading ``▁``, and ``<s>``, ``</s>`` or ``[INST]`` written in a message stay plain text. Rendering
a chat template to one string and tokenizing it cannot give these ids (a literal ``<s>`` in the
content would become BOS, and segment boundaries would merge), so ids are built per segment here.

The answer ends with EOS (``</s>``), not with the infilling ``▁<EOT>``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant"]
ROLES: tuple[Role, ...] = ("system", "user", "assistant")

B_INST, E_INST = "[INST]", "[/INST]"
B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"
# Shown in ``ChatPrompt.text`` where BOS/EOS ids are; display only (tokenizing this text is wrong).
BOS_TEXT, EOS_TEXT = "<s>", "</s>"
# Put in place of the lines cut from the middle of an over-long message.
ELISION = "..."
# Default ``instructMaxNewTokens``: a docstring, a fixed function or a few tests fit.
INSTRUCT_MAX_NEW_TOKENS = 512


class ChatTokenizer(Protocol):
    """What chat prompts need from a tokenizer (``CodeTokenizer`` has it)."""

    @property
    def special(self) -> Any: ...

    def encode(self, text: str) -> list[int]: ...


@dataclass(frozen=True)
class Message:
    role: Role
    content: str

    @classmethod
    def from_json(cls, data: Any) -> Message:
        """A message from ``{role, content}`` JSON, with an error that says what is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a message must be an object with role and content, not {type(data).__name__}")
        role, content = data.get("role"), data.get("content")
        if role not in ROLES:
            raise ValueError(f"message role must be one of {', '.join(ROLES)}, not {role!r}")
        if not isinstance(content, str):
            raise ValueError(f"message content must be a string, not {type(content).__name__}")
        return cls(role, content)

    def to_json(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class Dialog:
    """A validated dialog: optional system text, finished exchanges, and the last user message."""

    system: str | None
    exchanges: tuple[tuple[str, str], ...]
    last: str

    def messages(self) -> list[Message]:
        out = [Message("system", self.system)] if self.system is not None else []
        for user, answer in self.exchanges:
            out += [Message("user", user), Message("assistant", answer)]
        return [*out, Message("user", self.last)]

    def turns(self) -> list[tuple[str, str | None]]:
        """The user/answer pairs as the model sees them, the system text merged into the first user text."""
        pairs: list[tuple[str, str | None]] = [*self.exchanges, (self.last, None)]
        if self.system is not None:
            user, answer = pairs[0]
            pairs[0] = (B_SYS + self.system + E_SYS + user, answer)
        return pairs


@dataclass
class ChatPrompt:
    """A chat prompt as engines take it and ``codellama/instructPrompt`` answers it; ``messages`` are
    the ones kept after trimming. Its answer ends at EOS (no infilling stop), and it is built within
    the engine's limits (``Engine.chat_limit``), never re-cut by an engine."""

    ids: list[int]
    text: str
    truncated: bool
    messages: list[Message] = field(default_factory=list, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"ids": self.ids, "text": self.text, "truncated": self.truncated}


def server_text(prompt: ChatPrompt) -> str:
    """A chat prompt as text for a server that tokenizes it and adds BOS itself (TGI, vLLM).

    The display text without its leading ``<s>``: a server's tokenizer reads the ``</s><s>``
    between turns as EOS and BOS and starts each turn with the implied ``▁``, which gives the
    reference ids, unless a message itself contains ``<s>`` or ``</s>`` (then read as specials too).
    """
    return prompt.text.removeprefix(BOS_TEXT)


def parse_messages(data: Any) -> list[Message]:
    """``messages`` of a request (a list of ``{role, content}``) as ``Message`` objects."""
    if not isinstance(data, list):
        raise ValueError("messages must be a list of {role, content} objects")
    return [m if isinstance(m, Message) else Message.from_json(m) for m in data]


def dialog(messages: Sequence[Message]) -> Dialog:
    """Validate the order Meta's reference accepts: [system], user, assistant, user, ..., user."""
    msgs = list(messages)
    system = None
    if msgs and msgs[0].role == "system":
        system = msgs.pop(0).content
    if not msgs:
        raise ValueError("a dialog needs at least one user message")
    for i, msg in enumerate(msgs):
        want = "user" if i % 2 == 0 else "assistant"
        if msg.role != want:
            where = "first" if i == 0 else f"message {i + 1 + (system is not None)}"
            extra = " (only the first message may be a system message)" if msg.role == "system" else ""
            raise ValueError(f"{where}: expected role {want}, got {msg.role}{extra}")
    if msgs[-1].role != "user":
        raise ValueError("the last message must come from the user")
    exchanges = tuple((msgs[i].content, msgs[i + 1].content) for i in range(0, len(msgs) - 1, 2))
    return Dialog(system, exchanges, msgs[-1].content)


def _special_ids(tok: ChatTokenizer) -> tuple[int, int]:
    bos, eos = tok.special.bos, tok.special.eos
    if bos is None or eos is None:
        raise ValueError("the tokenizer has no <s>/</s> pieces; it is not a Llama tokenizer")
    return bos, eos


def _segment(user: str, answer: str | None) -> str:
    if answer is None:
        return f"{B_INST} {user.strip()} {E_INST}"
    return f"{B_INST} {user.strip()} {E_INST} {answer.strip()} "


def _segment_ids(tok: ChatTokenizer, user: str, answer: str | None) -> list[int]:
    bos, eos = _special_ids(tok)
    ids = [bos, *tok.encode(_segment(user, answer))]
    return ids if answer is None else [*ids, eos]


def stop_ids(tok: ChatTokenizer) -> list[int]:
    """The ids that end an answer: EOS only (Instruct answers end with ``</s>``, never with ``▁<EOT>``)."""
    return [_special_ids(tok)[1]]


def chat_ids(tok: ChatTokenizer, messages: Sequence[Message]) -> list[int]:
    """The prompt ids of Meta's reference ``chat_completion`` for these messages."""
    return [i for user, answer in dialog(messages).turns() for i in _segment_ids(tok, user, answer)]


def chat_text(messages: Sequence[Message]) -> str:
    """The prompt as readable text, ``<s>``/``</s>`` marking the BOS/EOS ids (for display only)."""
    return "".join(
        BOS_TEXT + _segment(user, answer) + ("" if answer is None else EOS_TEXT)
        for user, answer in dialog(messages).turns()
    )


def build_chat_prompt(tok: ChatTokenizer, messages: Sequence[Message], budget: int) -> ChatPrompt:
    """The prompt ids for ``messages``, trimmed to at most ``budget`` tokens.

    Whole exchanges go first, oldest first (the system message moves to the new first user
    message): an action's request is the last message and earlier turns matter less. If the last
    message alone is still too long, lines are cut from the *middle* of its largest fenced code
    block (else of the message) and replaced by one ``...`` line. The middle goes because the head
    holds the instruction and the signature of the code, and the tail holds the end of the code and
    the closing fence, which the model needs to see to answer with a complete block.
    Raises ``ValueError`` when not even that fits.
    """
    dlg = dialog(messages)
    ids = chat_ids(tok, dlg.messages())
    if len(ids) <= budget:
        return ChatPrompt(ids, chat_text(dlg.messages()), False, dlg.messages())
    for drop in range(1, len(dlg.exchanges) + 1):
        shorter = Dialog(dlg.system, dlg.exchanges[drop:], dlg.last)
        ids = chat_ids(tok, shorter.messages())
        if len(ids) <= budget:
            return ChatPrompt(ids, chat_text(shorter.messages()), True, shorter.messages())
    fence = _largest_fence(dlg.last.split("\n"))
    systems = (dlg.system, None) if dlg.system is not None else (None,)
    # Cutting the code comes before dropping the system text; cutting the instruction comes last.
    attempts = [(system, fence) for system in systems if fence is not None] + [(None, None)]
    for system, region in attempts:
        last = _trim_middle(tok, Dialog(system, (), dlg.last), budget, region)
        if last is not None:
            kept = Dialog(system, (), last).messages()
            return ChatPrompt(chat_ids(tok, kept), chat_text(kept), True, kept)
    need = len(chat_ids(tok, Dialog(None, (), ELISION).messages()))
    raise ValueError(f"the request does not fit in {budget} prompt tokens, even cut down (it needs at least {need})")


def _trim_middle(tok: ChatTokenizer, dlg: Dialog, budget: int, region: tuple[int, int] | None) -> str | None:
    """The last user message with the fewest middle lines of ``region`` (default: all) cut, or None.

    The cut lines become one ``...`` line, indented like the first of them.
    """
    lines = dlg.last.split("\n")
    lo, hi = region if region is not None else (0, len(lines))

    def cut(k: int) -> str:
        if k == 0:
            return dlg.last
        end = min(hi, max(lo, (lo + hi) // 2 - k // 2) + k)
        start = end - k
        indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
        return "\n".join([*lines[:start], indent + ELISION, *lines[end:]])

    def fits(k: int) -> bool:
        return len(chat_ids(tok, Dialog(dlg.system, (), cut(k)).messages())) <= budget

    if not fits(hi - lo):
        return None
    low, high = 0, hi - lo  # fits(high) holds; find the fewest lines to cut
    while low < high:
        k = (low + high) // 2
        if fits(k):
            high = k
        else:
            low = k + 1
    return cut(high)


def _largest_fence(lines: list[str]) -> tuple[int, int] | None:
    """The inner line range of the longest ``` fenced block (an unclosed fence runs to the end)."""
    best: tuple[int, int] | None = None
    start: int | None = None
    for i, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            if start is None:
                start = i + 1
            else:
                if best is None or i - start > best[1] - best[0]:
                    best = (start, i)
                start = None
    if start is not None and (best is None or len(lines) - start > best[1] - best[0]):
        best = (start, len(lines))
    return best if best is not None and best[1] > best[0] else None


# -- which models take these prompts ------------------------------------------------------------


@dataclass(frozen=True)
class InstructCheck:
    """Whether a model takes these chat prompts, and why (for ``codellama/status``)."""

    instruct: bool
    reason: str


def _words(name: str) -> list[str]:
    out, word = [], []
    for ch in name.lower():
        if ch.isalnum():
            word.append(ch)
        elif word:
            out.append("".join(word))
            word = []
    if word:
        out.append("".join(word))
    return out


def _name_check(name: str) -> InstructCheck | None:
    words = _words(name)
    if "instruct" not in words:
        return None
    if "70b" in words:
        # CodeLlama-70b-Instruct was trained on another format ("Source: user ... <step>").
        return InstructCheck(False, f"{name} uses the 70B chat format (Source:/<step>), which is not supported")
    return InstructCheck(True, f"{name} is an Instruct model")


def _candidate_names(model_id: str) -> Iterable[str]:
    """Names that may tell the model: the id or folder name, a hub-cache folder, local config files."""
    path = Path(model_id).expanduser()
    yield path.name or model_id
    for part in reversed(path.parts):
        if part.startswith("models--"):  # ~/.cache/huggingface/hub/models--org--name/snapshots/sha
            yield part.removeprefix("models--").replace("--", "/")
            break
    if path.is_dir():
        for file, key in (("config.json", "_name_or_path"), ("tokenizer_config.json", "name_or_path")):
            value = _json_field(path / file, key)
            if value:
                yield value


def _json_field(file: Path, key: str) -> str | None:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def check_instruct_model(model_id: str) -> InstructCheck:
    """Whether ``model_id`` (hub id, local folder, or a remote server's model name) is Code Llama - Instruct.

    Decided by the name (the word ``instruct`` in ``codellama/CodeLlama-7b-Instruct-hf``, a folder
    name, a hub-cache ``models--org--name`` folder, or ``_name_or_path`` in a local ``config.json``),
    so no weights are read and a remote server's ``model_id`` works the same way.
    """
    if not model_id.strip():
        return InstructCheck(False, "no model is set")
    for name in _candidate_names(model_id.strip()):
        found = _name_check(name)
        if found is not None:
            return found
    return InstructCheck(False, f"{model_id} is not an Instruct model; set instructModel to one")


def is_instruct_model(model_id: str) -> bool:
    return check_instruct_model(model_id).instruct
