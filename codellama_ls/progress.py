"""A terminal progress bar for model loading, shared by ``complete`` and ``eval``."""

from __future__ import annotations

import sys

from codellama_ls.engines.base import ProgressFn


def progress_bar() -> ProgressFn:
    """A tqdm bar on stderr fed by the engine's load progress."""
    from tqdm import tqdm

    bar = tqdm(total=100, file=sys.stderr, desc="Loading", leave=False)

    def report(message: str, pct: int | None) -> None:
        bar.set_description(message)
        if pct is not None:
            bar.update(max(pct - bar.n, 0))
        if pct is not None and pct >= 100:
            bar.close()

    return report
