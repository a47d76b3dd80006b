"""Keep tokens out of logs and messages (a module named ``secrets`` would shadow the stdlib's).

At ``--log-level DEBUG`` pygls logs every message it sends and parts of those it receives
(``initializationOptions`` included, before any of our code has seen the token in it). The log
handler therefore masks two things in every record: the value of any secret-named key, in JSON
(``"apiToken": "..."``) and in Python reprs (``'apiToken': '...'``, ``api_token='...'``),
and every secret value seen so far (the tokens of the environment and of the settings), wherever
it appears.
"""

from __future__ import annotations

import logging
import os
import re
import threading

HIDDEN = "<hidden>"
ENV_TOKENS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "CODELLAMA_LS_API_TOKEN")
# Key names whose values are secrets: the settings marked secret add theirs (see remember_key).
_keys: set[str] = {"authorization", "password", "hf_token", "hfToken", "HF_TOKEN"}
_values: set[str] = set()
_lock = threading.Lock()
_pattern: re.Pattern[str] | None = None


def remember(value: object) -> None:
    """A secret value to mask wherever it shows up (short values would mask ordinary words)."""
    global _pattern
    if isinstance(value, str) and len(value.strip()) >= 6:
        with _lock:
            _values.add(value.strip())
            _pattern = None


def remember_key(name: str) -> None:
    global _pattern
    with _lock:
        _keys.add(name)
        _pattern = None


def _keyed() -> re.Pattern[str]:
    global _pattern
    with _lock:
        if _pattern is None:
            keys = "|".join(sorted(map(re.escape, _keys), key=len, reverse=True))
            quoted = r'"(?:[^"\\]|\\.)*(?:"|$)' + r"|'(?:[^'\\]|\\.)*(?:'|$)"
            nested = r"\[[^\]]*(?:\]|$)|\{[^}]*(?:\}|$)"
            _pattern = re.compile(
                rf"(?P<key>[\"']?\b(?:{keys})\b[\"']?\s*[:=]\s*)(?P<value>{quoted}|{nested}|[^\s,}}\])]+)",
                re.IGNORECASE,
            )
        return _pattern


def mask(text: str) -> str:
    """``text`` with secret-keyed values and known secret values replaced by ``<hidden>``."""
    if not text:
        return text
    text = _keyed().sub(lambda m: m.group("key") + repr(HIDDEN), text)
    for value in sorted(_values, key=len, reverse=True):
        if value in text:
            text = text.replace(value, HIDDEN)
    return text


_PATH = re.compile(r"(?<![\w.:/\\])(?:[A-Za-z]:)?(?:[\\/][\w.@~+-]+){2,}[\\/]?")


def without_paths(text: str) -> str:
    """``text`` with file system paths replaced: exception texts shown to the user or put in an
    answer say what failed, the server's files stay in the log."""
    return _PATH.sub("<path>", text)


class MaskSecrets(logging.Filter):
    """A handler filter: the formatted message and any traceback text pass through ``mask``."""

    def __init__(self) -> None:
        super().__init__()
        for name in ENV_TOKENS:
            remember(os.environ.get(name))

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        return True
