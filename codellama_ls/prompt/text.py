"""Prompts as text, for servers that tokenize themselves (TGI takes only text).

The text form of an infilling prompt, ``<PRE> {prefix} <SUF>{suffix} <MID>`` (psm) or
``<PRE> <SUF>{suffix} <MID> {prefix}`` (spm), is what the server's tokenizer turns back
into ids. It usually gives the reference ids (the server adds BOS itself), but Code
Llama's BPE runs over the whole text, and when the suffix starts with ``(``, ``.``, ``,``,
``)``, ``=``, a quote and similar, the merge of ``>`` with that character wins over the
last merge of ``▁<SUF>``: the model sees ``▁<SUF`` ``>(`` and no suffix marker at all.

No text can give the reference ids then (the server's tokenization of a given text is
fixed), so :func:`text_prompt` checks each prompt with the server's tokenizer and, when
the marker is lost, sends a space between ``<SUF>`` and the suffix instead: the markers
stay intact and one token of the suffix changes (``(`` becomes ``▁(``). The OpenAI engine
avoids the problem entirely by sending ids to servers that accept them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from codellama_ls.prompt.fim import Prompt
from codellama_ls.prompt.tokens import Encoder


@dataclass(frozen=True)
class TextPrompt:
    text: str
    exact: bool  # the server's ids are the reference ids
    adjusted: bool  # the text differs from the plain text form to keep the markers intact
    ids: list[int]  # what the server's tokenizer makes of ``text``


def fim_text(fmt: str, prefix: str, suffix: str, *, space_after_suf: bool = False) -> str:
    """The text form of a prompt without BOS (the server adds it)."""
    if fmt == "prefix":
        return prefix
    head = " " + prefix if prefix else ""  # encode("") is empty: no lone "▁"
    suf = "<SUF> " if space_after_suf else "<SUF>"
    if fmt == "psm":
        return f"<PRE>{head} {suf}{suffix} <MID>"
    return f"<PRE> {suf}{suffix} <MID>{head}"


def text_prompt(prompt: Prompt, encode: Encoder | None, markers: tuple[int | None, ...] = ()) -> TextPrompt:
    """The text to send for ``prompt``: exact when possible, else the least harmful text.

    ``markers`` are the ids of ``▁<PRE>``, ``▁<SUF>``, ``▁<MID>``: a text that keeps all of
    them beats one that loses any, then fewer differing tokens win. Without an ``encode``
    (no tokenizer of the model at hand) the plain text form is sent, unchecked.
    """
    text = fim_text(prompt.format, prompt.model_prefix, prompt.suffix)
    if encode is None:
        return TextPrompt(text, False, False, [])
    ids = encode(text)
    if ids == prompt.ids or prompt.format == "prefix" or not prompt.suffix:
        return TextPrompt(text, ids == prompt.ids, False, ids)
    alt = fim_text(prompt.format, prompt.model_prefix, prompt.suffix, space_after_suf=True)
    alt_ids = encode(alt)
    if harm(alt_ids, prompt.ids, markers) < harm(ids, prompt.ids, markers):
        return TextPrompt(alt, alt_ids == prompt.ids, True, alt_ids)
    return TextPrompt(text, False, False, ids)


def harm(ids: list[int], reference: list[int], markers: tuple[int | None, ...] = ()) -> tuple[int, int]:
    """(markers lost, tokens that differ) of ``ids`` against the reference; lower is better."""
    want = Counter(i for i in reference if i in markers)
    have = Counter(i for i in ids if i in markers)
    return sum((want - have).values()), token_diff(ids, reference)


def token_diff(a: list[int], b: list[int]) -> int:
    """Tokens that differ once the common head and tail are set aside (cheap, no full edit distance)."""
    n = min(len(a), len(b))
    head = 0
    while head < n and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < n - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    return max(len(a), len(b)) - head - tail
