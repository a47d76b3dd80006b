"""Process figures for `codellama/status`: what the soak bench and the load tests watch.

``tasks`` is the number of asyncio tasks alive (it returns to its idle value once every request
has been answered); ``rssBytes`` is the resident memory now, not the peak.
"""

from __future__ import annotations

import asyncio
import os
import sys


def rss_bytes() -> int | None:
    """Resident set size now (``/proc``), else the peak that ``getrusage`` knows."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource  # not on Windows
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def pending_tasks() -> int | None:
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # no running loop (the CLI's one-shot commands)
        return None


def process() -> dict[str, int | None]:
    return {"tasks": pending_tasks(), "rssBytes": rss_bytes()}
