"""The Hugging Face hub, asked only when it can answer.

Without network and without ``HF_HUB_OFFLINE``, a download of a file that is not cached makes
huggingface_hub retry for about 24 s (``Retrying in 8s [Retry 5/5]``) before it gives up, and the
user waits that long for a message that only says the model is missing. Before any download
the cache is looked at first, and then one short connection attempt to the hub (the endpoint
the user's environment names) tells at once whether a download can work. Nothing is sent: the
attempt opens a TCP connection and closes it. With ``HF_HUB_OFFLINE=1`` nothing is attempted.
"""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit

PROBE_TIMEOUT_S = 2.0
_REMEMBER_S = 30.0  # a laptop can come back online: ask again after this long

_lock = threading.Lock()
_last: tuple[float, bool] | None = None


class HubUnreachable(OSError):
    """A file is not cached and the hub cannot be reached; the message says what to do."""


def offline() -> bool:
    """``HF_HUB_OFFLINE`` as huggingface_hub read it."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def endpoint() -> tuple[str, int]:
    from huggingface_hub import constants

    parts = urlsplit(constants.ENDPOINT)
    return parts.hostname or "huggingface.co", parts.port or (80 if parts.scheme == "http" else 443)


def reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a connection to the hub opens within ``timeout`` (remembered for a while)."""
    global _last
    with _lock:
        if _last is not None and time.monotonic() - _last[0] < _REMEMBER_S:
            return _last[1]
    host, port = endpoint()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            ok = True
    except OSError:
        ok = False
    with _lock:
        _last = (time.monotonic(), ok)
    return ok


def cached(repo_id: str, filename: str, revision: str | None = None) -> str | None:
    """The file's path in the local Hugging Face cache, or None."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, filename, revision=revision)
    except Exception:  # an id the hub would reject: let the download report it
        return None
    return found if isinstance(found, str) else None


def check_download(repo_id: str, filename: str, revision: str | None = None) -> None:
    """Raise :class:`HubUnreachable` at once when ``filename`` of ``repo_id`` would have to be
    downloaded and the hub cannot be reached (instead of retrying for half a minute)."""
    if offline() or cached(repo_id, filename, revision) is not None:
        return
    if not reachable():
        host, _ = endpoint()
        raise HubUnreachable(
            f"'{repo_id}' is not in the Hugging Face cache and {host} cannot be reached (no network?). "
            f"Download it where there is network (`hf download {repo_id}`) and copy the cache "
            "(~/.cache/huggingface), or set `model` to a local folder. Set HF_HUB_OFFLINE=1 to never "
            "try the network."
        )
