"""Turn the text around the cursor into the exact token ids Code Llama was trained on.

Formats (Meta's reference infilling):
- ``psm``: BOS ▁<PRE> encode(prefix) ▁<SUF> encode_infill(suffix) ▁<MID>
- ``spm``: BOS ▁<PRE> ▁<SUF> encode_infill(suffix) ▁<MID> encode(prefix)
- ``prefix`` (models without infilling): BOS encode(prefix)

The token budget is split between prefix and suffix; whole lines farthest from the cursor
are dropped first. Only a window near the cursor is ever tokenized, so a 10,000-line file
costs the same as a 100-line one.

Context from other files (:mod:`codellama_ls.context`) is a block of comment lines ending
with a newline that goes right before the prefix, in every format: the prefix part of the
prompt is ``encode(context + prefix)``, as if the block were the start of the file. Its
tokens come off the budget first. Code Llama's tokenizer never merges across a newline
(:mod:`codellama_ls.prompt.memo`), so that is ``encode(context) + encode_infill(prefix)``, and
with ``spm`` an unchanged block still lets a typed character only append to the prompt.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from codellama_ls.context.block import EMPTY, ContextBlock, ContextEntry
from codellama_ls.prompt.tokens import PromptTokenizer

FORMATS = ("psm", "spm", "prefix")
# Code averages 3-4 characters a token; start with a window this many chars per token,
# and widen it when it turns out too small.
_CHARS_PER_TOKEN = 6


@dataclass
class Prompt:
    """A prompt as the model gets it; ``prefix``/``suffix`` are the parts kept after trimming.

    ``context_text`` (with ``context``, where each part came from) precedes ``prefix`` in the
    prompt; ``prefix_ids`` are the ids of ``prefix`` alone, as it is encoded after the block.
    """

    format: str
    prefix: str
    suffix: str
    ids: list[int]
    truncated: bool
    prefix_ids: list[int] = field(default_factory=list, repr=False)
    suffix_ids: list[int] = field(default_factory=list, repr=False)
    context_text: str = ""
    context: tuple[ContextEntry, ...] = ()
    context_ids: list[int] = field(default_factory=list, repr=False)

    @property
    def model_prefix(self) -> str:
        """The text the prefix ids encode: the context block, then the file's prefix."""
        return self.context_text + self.prefix

    @property
    def context_block(self) -> ContextBlock:
        return ContextBlock(self.context_text, self.context, len(self.context_ids))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["prefix_ids"], data["suffix_ids"], data["context_ids"], data["context_text"]
        data["context"] = [entry.to_json() for entry in self.context]
        data["contextText"] = self.context_text
        return data


def prompt_budget(max_prompt_tokens: int, context_length: int | None, max_new_tokens: int) -> int:
    """The prompt budget: the setting, but never more than the context leaves after generation."""
    if context_length:
        return max(8, min(max_prompt_tokens, context_length - max_new_tokens))
    return max_prompt_tokens


def build_prompt(
    tok: PromptTokenizer,
    prefix: str,
    suffix: str,
    *,
    fmt: str = "spm",
    budget: int = 2048,
    prefix_share: float = 0.75,
    stable_cut: bool = False,
    context: ContextBlock | str | None = None,
) -> Prompt:
    """Build the prompt ids for a cursor between ``prefix`` and ``suffix`` (LF text).

    ``stable_cut`` makes the trimmed prompt keep its start while the user types at the cursor
    (see :func:`stable_prefix`), so a KV cache of the previous prompt stays reusable.
    ``context`` is a block to put before the prefix (empty, or ending with a newline); a block
    that would take more than half of the budget is left out.
    """
    prompt = _build(tok, prefix, suffix, fmt, budget, prefix_share, stable_cut, context, ahead=False)
    assert prompt is not None
    return prompt


def next_cut_prompt(
    tok: PromptTokenizer,
    prefix: str,
    suffix: str,
    *,
    fmt: str = "spm",
    budget: int = 2048,
    prefix_share: float = 0.75,
    context: ContextBlock | str | None = None,
) -> Prompt | None:
    """The ``stable_cut`` prompt as it will be once typing at the cursor moves a cut by its next step,
    with what is typed so far; None when no cut moves with typing (the whole text fits, or the
    prompt is the prefix only). Such a step changes every token after the suffix's start, the
    costliest prefill of typing on; computed while the user rests, it costs only what was typed since.
    """
    return _build(tok, prefix, suffix, fmt, budget, prefix_share, True, context, ahead=True)


def _build(
    tok: PromptTokenizer,
    prefix: str,
    suffix: str,
    fmt: str,
    budget: int,
    prefix_share: float,
    stable_cut: bool,
    context: ContextBlock | str | None,
    ahead: bool,
) -> Prompt | None:
    sp = tok.special
    if fmt not in FORMATS:
        raise ValueError(f"unknown prompt format {fmt!r}")
    if fmt != "prefix" and not sp.infill:
        fmt = "prefix"
    if ahead and (fmt == "prefix" or not stable_cut):  # the prefix-only prompt's start moves on every line
        return None
    bos = [sp.bos] if sp.bos is not None else []
    block = ContextBlock(context) if isinstance(context, str) else context or EMPTY
    if block.text and not block.text.endswith("\n"):
        raise ValueError("a context block ends with a newline")
    markers = 0 if fmt == "prefix" else 3
    c_ids = tok.encode(block.text) if block.text else []
    if len(c_ids) > max(budget - len(bos) - markers, 0) // 2:
        block, c_ids = EMPTY, []
    infill = bool(c_ids)  # the prefix continues the block: no implied leading space
    if fmt == "prefix":
        kept, ids, cut = trim_prefix(tok, prefix, budget - len(bos) - len(c_ids), infill=infill)
        full = _after_context(tok, block.text, c_ids, kept, ids)
        return Prompt("prefix", kept, "", bos + full, cut, ids, [], block.text, block.entries, c_ids)

    content = max(budget - len(bos) - 3 - len(c_ids), 2)
    want_prefix = max(1, int(content * prefix_share))
    want_suffix = max(content - want_prefix, 0)
    # Measure each side within its own share; whatever one side leaves unused goes to the other.
    p_text, p_ids, p_cut = trim_prefix(tok, prefix, want_prefix, infill=infill)
    s_text, s_ids, s_cut = trim_suffix(tok, suffix, want_suffix)
    p_budget = want_prefix
    if p_cut and not s_cut and len(s_ids) < want_suffix:
        p_budget = content - len(s_ids)
        p_text, p_ids, p_cut = trim_prefix(tok, prefix, p_budget, infill=infill)
    elif s_cut and not p_cut and len(p_ids) < want_prefix:
        spare = want_prefix - len(p_ids)
        if stable_cut:  # hand the spare over in steps, so the suffix is not re-cut on each keystroke
            step = max(1, content // 16)
            spare -= spare % step
            if ahead and spare:  # the next step gives one back
                spare, ahead = spare - step, False
        if spare:
            s_text, s_ids, s_cut = trim_suffix(tok, suffix, want_suffix + spare)
    elif ahead and not p_cut:  # the whole text fits: typing only makes the prompt longer
        return None
    if stable_cut and (p_cut or ahead):  # ahead here: the prefix is cut next (at the first grid line)
        grid = max(1, p_budget // 4)
        cut_text, cut_ids = stable_prefix(tok, prefix, p_text, p_ids, grid=grid, infill=infill, steps=int(ahead))
        if ahead and cut_text == p_text:  # the next cut would pass the cursor line
            return None
        p_text, p_ids, p_cut = cut_text, cut_ids, p_cut or ahead
    assert sp.pre is not None and sp.suf is not None and sp.mid is not None
    full = _after_context(tok, block.text, c_ids, p_text, p_ids)
    if fmt == "psm":
        ids = [*bos, sp.pre, *full, sp.suf, *s_ids, sp.mid]
    else:
        ids = [*bos, sp.pre, sp.suf, *s_ids, sp.mid, *full]
    return Prompt(fmt, p_text, s_text, ids, p_cut or s_cut, p_ids, s_ids, block.text, block.entries, c_ids)


def _after_context(tok: PromptTokenizer, context: str, c_ids: list[int], prefix: str, p_ids: list[int]) -> list[int]:
    """``encode(context + prefix)``: the two encodings joined when the tokenizer splits at newlines."""
    if not c_ids:
        return p_ids
    if tok.newline_id is not None:
        return [*c_ids, *p_ids]
    return tok.encode(context + prefix)


def trim_prefix(tok: PromptTokenizer, text: str, budget: int, *, infill: bool = False) -> tuple[str, list[int], bool]:
    """Keep the longest tail of ``text`` that starts at a line start and fits ``budget`` tokens.

    ``infill``: ``text`` continues other text (a context block), so it has no implied leading space.
    """
    if budget <= 0:
        return "", [], bool(text)
    reach = _reach(tok, budget)
    if len(text) > reach:
        # Text farther than ``reach`` characters from the cursor can never fit, so it is never
        # tokenized: a 10 MB minified line costs what a short one does.
        start = _next_line_start(text, len(text) - reach)
        kept, ids, _ = _trim_prefix(tok, text[start:] if start < len(text) else text[-reach:], budget, infill)
        return kept, ids, True
    return _trim_prefix(tok, text, budget, infill)


def _trim_prefix(tok: PromptTokenizer, text: str, budget: int, infill: bool = False) -> tuple[str, list[int], bool]:
    encode = tok.encode_infill if infill else tok.encode
    encode_with_offsets = tok.encode_infill_with_offsets if infill else tok.encode_with_offsets
    window = budget * _CHARS_PER_TOKEN
    offsets: list[tuple[int, int]] = []
    while True:
        start = 0 if window >= len(text) else _next_line_start(text, len(text) - window)
        part = text[start:]
        ids, offsets = encode_with_offsets(part)
        if len(ids) <= budget:
            if start == 0:
                return text, ids, False
            window *= 2  # the window fits: there may be more lines to keep
            continue
        break
    # ``part`` is over budget: skip enough tokens, then snap forward to a line start.
    target = offsets[len(ids) - budget][0]
    cut = _next_line_start(text, start + target) if target > 0 else start
    while cut < len(text):
        ids = encode(text[cut:])
        if len(ids) <= budget:
            return text[cut:], ids, cut > 0
        cut = _next_line_start(text, cut + 1)
    # Not even the cursor line fits: keep its last tokens.
    line_start = text.rfind("\n") + 1
    if line_start == len(text):
        return "", [], bool(text)
    ids, offsets = encode_with_offsets(text[line_start:])
    start_char = line_start + offsets[max(len(ids) - budget, 0)][0]
    while True:
        ids = encode(text[start_char:])
        if len(ids) <= budget:
            return text[start_char:], ids, True
        start_char += 1


def stable_prefix(
    tok: PromptTokenizer, text: str, kept: str, ids: list[int], grid: int, *, infill: bool = False, steps: int = 0
) -> tuple[str, list[int]]:
    """Move the cut of a trimmed prefix forward to the first line start after a multiple of ``grid``.

    The shortest cut moves by a line every few tokens typed at the cursor, and each move
    changes the whole prompt; a cut on this coarser grid of absolute positions stays put
    until the prefix has grown by about ``grid`` characters, at the price of at most that
    many characters of context. ``steps``: that many grid lines further (where the cut goes next).
    """
    cut = len(text) - len(kept)
    snapped = _next_line_start(text, (-(-cut // grid) + steps) * grid)
    if snapped <= cut or snapped > text.rfind("\n") + 1:
        return kept, ids
    snapped_ids = (tok.encode_infill if infill else tok.encode)(text[snapped:])
    if len(snapped_ids) > len(ids):  # cannot happen with line-wise tokenization; be safe
        return kept, ids
    return text[snapped:], snapped_ids


def trim_suffix(tok: PromptTokenizer, text: str, budget: int) -> tuple[str, list[int], bool]:
    """Keep the longest head of ``text`` that ends at a line end and fits ``budget`` tokens."""
    if budget <= 0:
        return "", [], bool(text)
    reach = _reach(tok, budget)
    if len(text) > reach:  # as in trim_prefix: what lies beyond ``reach`` can never fit
        end = _prev_line_end(text, reach)
        kept, ids, _ = _trim_suffix(tok, text[:end] if end > 0 else text[:reach], budget)
        return kept, ids, True
    return _trim_suffix(tok, text, budget)


def _trim_suffix(tok: PromptTokenizer, text: str, budget: int) -> tuple[str, list[int], bool]:
    window = budget * _CHARS_PER_TOKEN
    offsets: list[tuple[int, int]] = []
    while True:
        end = len(text) if window >= len(text) else _prev_line_end(text, window)
        part = text[:end]
        ids, offsets = tok.encode_infill_with_offsets(part)
        if len(ids) <= budget:
            if end == len(text):
                return text, ids, False
            window *= 2
            continue
        break
    cut = _prev_line_end(text, offsets[budget][0])  # offsets[budget]: first token that does not fit
    while cut > 0:
        ids = tok.encode_infill(text[:cut])
        if len(ids) <= budget:
            return text[:cut], ids, True
        cut = _prev_line_end(text, cut - 1)
    # Even the rest of the cursor line is over budget: keep its first tokens.
    ids, offsets = tok.encode_infill_with_offsets(text)
    end_char = offsets[budget][0] if len(ids) > budget else len(text)
    while end_char > 0:
        ids = tok.encode_infill(text[:end_char])
        if len(ids) <= budget:
            return text[:end_char], ids, True
        end_char -= 1
    return "", [], bool(text)


def _reach(tok: PromptTokenizer, budget: int) -> int:
    """Characters that ``budget`` tokens can cover at most."""
    return budget * tok.max_token_chars


def _next_line_start(text: str, pos: int) -> int:
    """The first line start at or after ``pos`` (``len(text)`` if none)."""
    if pos <= 0:
        return 0
    if text[pos - 1] == "\n":
        return pos
    nl = text.find("\n", pos)
    return len(text) if nl < 0 else nl + 1


def _prev_line_end(text: str, pos: int) -> int:
    """The last line end (index just after a newline) at or before ``pos``; 0 if none."""
    if pos >= len(text):
        return len(text)
    nl = text.rfind("\n", 0, pos)
    return 0 if nl < 0 else nl + 1
