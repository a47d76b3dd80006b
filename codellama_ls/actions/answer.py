"""The code in a model's answer: fenced blocks, prose dropped, the end-of-sequence text removed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from codellama_ls.actions.syntax import FENCE_TAGS, JS_FAMILY, parses_cleanly
from codellama_ls.lines import indent_of, split_lines

EOS_TEXT = "</s>"
# How many lines of prose an unfenced answer may have before or after its code.
_MAX_PROSE_LINES = 6


def strip_eos(answer: str) -> str:
    """The answer without the trailing ``</s>`` that decoding EOS leaves (a ``</s>`` inside stays)."""
    text = answer.rstrip()
    while text.endswith(EOS_TEXT):
        text = text[: -len(EOS_TEXT)].rstrip()
    return text


@dataclass(frozen=True)
class CodeBlock:
    tag: str  # the fence's language tag, lower case ("" when none)
    code: str


def code_blocks(answer: str) -> list[CodeBlock]:
    """The fenced blocks of a markdown answer, in order; an unclosed fence runs to the end."""
    blocks: list[CodeBlock] = []
    lines = split_lines(strip_eos(answer))
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        fence = stripped[:3]
        if fence not in ("```", "~~~"):
            i += 1
            continue
        marker = stripped[: len(stripped) - len(stripped.lstrip(fence[0]))]
        info = stripped[len(marker) :].strip()
        tag = info.split()[0].lower() if info else ""
        indent = indent_of(lines[i])
        body: list[str] = []
        i += 1
        while i < len(lines):
            closing = lines[i].strip()
            if closing.startswith(marker) and not closing.lstrip(fence[0]):
                break
            line = lines[i]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            i += 1
        i += 1
        blocks.append(CodeBlock(tag, _trim_blank_lines("\n".join(body))))
    return blocks


def _trim_blank_lines(text: str) -> str:
    lines = text.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(line.rstrip() for line in lines)


def _matches(tag: str, lang: str) -> bool:
    if not tag:
        return True
    if lang in JS_FAMILY:
        return any(tag in FENCE_TAGS[key] for key in JS_FAMILY)
    return tag in FENCE_TAGS.get(lang, ())


def _same_code(a: str, b: str) -> bool:
    def norm(text: str) -> list[str]:
        return [line.strip() for line in text.split("\n") if line.strip()]

    return norm(a) == norm(b)


def pick_code(
    answer: str,
    lang: str,
    *,
    prefer: Callable[[str], bool] | None = None,
    unchanged: str | None = None,
) -> str:
    """The code the answer gives for a target in ``lang``.

    The first fenced block in the language (or untagged) that ``prefer`` likes, else the first such
    block, else the first block ``prefer`` likes; blocks equal to ``unchanged`` (a "before" copy of
    the code) are skipped. Without fences, the whole answer minus prose lines around the code.
    """
    fenced = code_blocks(answer)
    blocks = [b for b in fenced if b.code.strip()]
    if fenced and not blocks:
        return ""  # only empty blocks: the answer has no code
    if unchanged is not None:
        changed = [b for b in blocks if not _same_code(b.code, unchanged)]
        blocks = changed or blocks
    if blocks:
        ours = [b for b in blocks if _matches(b.tag, lang)]
        liked = [b for b in ours if prefer is None or prefer(b.code)]
        if liked:
            return liked[0].code
        if ours:
            return ours[0].code
        others = [b for b in blocks if prefer is not None and prefer(b.code)]
        return (others or blocks)[0].code
    text = strip_eos(answer).strip()
    if "\n" not in text and len(text) > 2 and text[0] == text[-1] == "`":
        return text.strip("`")  # one line of inline code
    return drop_prose(text, lang)


def drop_prose(text: str, lang: str) -> str:
    """An unfenced answer without the sentences before and after its code.

    The fewest leading and trailing lines are dropped that make the rest parse without errors; when
    no such cut exists (the answer is all prose, or broken code) the text is kept as it is.
    """
    lines = _trim_blank_lines(text).split("\n")
    n = len(lines)
    if n == 0 or parses_cleanly("\n".join(lines), lang):
        return "\n".join(lines)
    limit = min(_MAX_PROSE_LINES, n - 1)
    for total in range(1, 2 * limit + 1):
        for head in range(max(0, total - limit), min(total, limit) + 1):
            tail = total - head
            kept = lines[head : n - tail]
            if not kept or not kept[0].strip() or not kept[-1].strip():
                continue
            if parses_cleanly("\n".join(kept), lang):
                return "\n".join(kept)
    return "\n".join(lines)


def explain_markdown(answer: str) -> str:
    """The answer to Explain, as markdown: it is shown as the model wrote it."""
    return strip_eos(answer).strip()
