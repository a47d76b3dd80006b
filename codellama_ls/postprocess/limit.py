"""Step 1, ``token_limit``: decoding stopped at ``maxNewTokens``, so the last line may be cut
mid-way (``return x +``). Drop it, unless it is the only line of code (an opening fence line,
which ``fence`` drops, not counted). Only the end of decoding knows the limit was hit, so this
step has no finder for ``stop_check``."""

from __future__ import annotations

from dataclasses import replace

from codellama_ls.postprocess.cursor import Context, Suggestion
from codellama_ls.postprocess.text import (
    _FENCE,
)


def token_limit(s: Suggestion, ctx: Context) -> Suggestion:
    """Decoding stopped at ``maxNewTokens``: drop the last line, cut mid-way, unless it is the only one."""
    if not ctx.truncated:
        return s
    nl = s.text.rfind("\n")
    head = s.text[:nl]
    if nl < 0 or not s.text[nl + 1 :].strip() or all(not ln.strip() or _FENCE.match(ln) for ln in head.split("\n")):
        return s  # the only line of code (after an opening fence, which ``fence`` drops)
    return replace(s, text=s.text[: nl + 1])
