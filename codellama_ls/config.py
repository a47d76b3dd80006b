"""One typed settings object, fed by defaults, environment, CLI flags and the LSP client.

Every source goes through :meth:`Settings.updated`, so a value is validated the same way
whether it came from ``--max-new-tokens``, ``CODELLAMA_LS_MAX_NEW_TOKENS``,
``initializationOptions`` or ``workspace/didChangeConfiguration``. A bad value is reported
by name and the previous valid value stays.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from codellama_ls import redact

ENV_PREFIX = "CODELLAMA_LS_"
# Keys under which a client may nest our settings in didChangeConfiguration.
SECTION_KEYS = ("codellama", "codellama-ls", "codellamaLs", "codellama_ls")


class SettingError(ValueError):
    """A setting has a value it cannot take; the message names the setting."""


def _choice(*allowed: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip()
        if text.lower() not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return text.lower()

    return parse


def _int_range(lo: int, hi: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("must be an integer")
        if isinstance(value, float) and not value.is_integer():
            raise ValueError("must be an integer")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValueError("must be an integer") from None
        if not lo <= number <= hi:
            raise ValueError(f"must be between {lo} and {hi}")
        return number

    return parse


def _float_range(lo: float, hi: float, *, open_low: bool = False) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError("must be a number")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError("must be a number") from None
        if number != number or number > hi or number < lo or (open_low and number == lo):
            bracket = "(" if open_low else "["
            raise ValueError(f"must be in {bracket}{lo}, {hi}]")
        return number

    return parse


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value.strip()


def _optional_text(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _text(value)


def _optional_file(value: Any) -> str | None:
    """A path that must exist when given (a CA bundle file or a folder of certificates)."""
    text = _optional_text(value)
    if text is None:
        return None
    path = os.path.expanduser(text)
    if not os.path.exists(path):
        raise ValueError("must be an existing file or folder")
    return path


def _globs(value: Any) -> tuple[str, ...]:
    """A list of gitignore-style globs (a JSON list, or one comma-separated string from a flag or the
    environment); each must compile, so a typo is reported instead of silently matching nothing."""
    from pathspec import GitIgnoreSpec  # only the validator needs it

    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ValueError("must be a list of glob strings")
    globs: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError("must be a list of glob strings")
        glob = item.strip()
        if not glob:
            continue
        try:
            GitIgnoreSpec.from_lines([glob])
        except ValueError as exc:  # pathspec's pattern errors are ValueErrors
            raise ValueError(f"has an invalid glob {glob!r} ({exc})") from None
        globs.append(glob)
    return tuple(globs)


# A Go duration as Ollama parses ``keep_alive`` (time.ParseDuration), or a plain number of seconds.
_GO_DURATION = re.compile(r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+")
_SECONDS = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)")


def _keep_alive(value: Any) -> str | None:
    """Ollama's ``keep_alive``: ``5m``, ``1h30m``, ``-1`` (for ever), ``0`` (unload at once), seconds."""
    if isinstance(value, bool):
        raise ValueError("must be a duration like 5m, or a number of seconds")
    if isinstance(value, (int, float)):
        value = repr(value)
    text = _optional_text(value)
    if text is None:
        return None
    if not (_SECONDS.fullmatch(text) or _GO_DURATION.fullmatch(text)):
        raise ValueError("must be a duration like 5m or 1h30m, a number of seconds, -1 (for ever) or 0 (unload)")
    return text


def _device(value: Any) -> str:
    text = _text(value).lower()
    if text in ("auto", "cpu", "cuda", "mps") or re.fullmatch(r"cuda:\d+", text):
        return text
    raise ValueError("must be auto, cpu, cuda, cuda:N or mps")


def _setting(default: Any, parse: Callable[[Any], Any], doc: str, *, secret: bool = False, reload: bool = False) -> Any:
    """A setting: its parser, its README line, whether it is a secret, and whether changing it needs a
    new engine (``reload``: the model, where and how it runs; the rest apply to the next request)."""
    return field(default=default, metadata={"parse": parse, "doc": doc, "secret": secret, "reload": reload})


@dataclass(frozen=True)
class Settings:
    """Everything a user can configure. Field names are snake_case; the wire uses camelCase."""

    model: str = _setting(
        "codellama/CodeLlama-7b-hf",
        _text,
        "Hub id or local folder of the model (`ollama`: a tag, e.g. `codellama:7b-code`).",
        reload=True,
    )
    tokenizer: str | None = _setting(
        None, _optional_text, "Tokenizer folder or hub id, when it differs from `model`.", reload=True
    )
    engine: str = _setting(
        "local", _choice("local", "tgi", "openai", "llamacpp", "ollama"), "Where the model runs.", reload=True
    )
    url: str | None = _setting(
        None,
        _optional_text,
        "Server URL for the remote engines (`llamacpp` defaults to `http://127.0.0.1:8080`, "
        "`ollama` to `http://127.0.0.1:11434`).",
        reload=True,
    )
    api_token: str | None = _setting(
        None, _optional_text, "Token for a remote engine (else `HF_TOKEN`).", secret=True, reload=True
    )
    device: str = _setting("auto", _device, "auto, cpu, cuda, cuda:N or mps.", reload=True)
    dtype: str = _setting(
        "auto",
        _choice("auto", "float32", "float16", "bfloat16"),
        "Weights dtype (auto: bf16/fp16 on GPU, fp32 on CPU).",
        reload=True,
    )
    quantization: str = _setting(
        "none", _choice("none", "8bit", "4bit"), "bitsandbytes quantization (CUDA only).", reload=True
    )
    max_new_tokens: int = _setting(128, _int_range(1, 4096), "Longest suggestion, in tokens.")
    max_prompt_tokens: int = _setting(
        2048, _int_range(16, 100_000), "Prompt budget (capped at context minus maxNewTokens)."
    )
    prefix_share: float = _setting(0.75, _float_range(0.0, 1.0), "Share of the prompt budget given to the prefix.")
    fim_format: str = _setting("spm", _choice("psm", "spm"), "Infilling order.")
    debounce_ms: int = _setting(
        150,
        _int_range(0, 10_000),
        "Remote engines: longest wait after a keystroke, less for fast typists (0: none). Local: no wait.",
    )
    temperature: float = _setting(0.0, _float_range(0.0, 5.0), "0 = greedy decoding.")
    top_p: float = _setting(0.95, _float_range(0.0, 1.0, open_low=True), "Nucleus sampling when temperature > 0.")
    suggestions: int = _setting(
        3, _int_range(1, 8), "Suggestions made when you ask for them (typing gets one); the first is greedy."
    )
    generation_timeout_ms: int = _setting(30_000, _int_range(100, 600_000), "A generation running longer is stopped.")
    kv_cache_documents: int = _setting(
        4, _int_range(0, 1024), "Documents whose last prompt keys/values the local engine keeps for reuse (0: off)."
    )
    kv_cache_mb: int = _setting(2048, _int_range(0, 1_048_576), "Memory those reused keys/values may take, in MiB.")
    enable: bool = _setting(True, _bool, "Turn suggestions on or off.")
    connect_timeout_ms: int = _setting(5_000, _int_range(100, 120_000), "Remote engines: time to connect to `url`.")
    read_timeout_ms: int = _setting(
        20_000, _int_range(100, 600_000), "Remote engines: longest wait for the next bytes of an answer."
    )
    max_retries: int = _setting(2, _int_range(0, 10), "Remote engines: retries of a 429/503 answer (with backoff).")
    ca_bundle: str | None = _setting(
        None, _optional_file, "Remote engines: CA certificates (PEM file or folder) to verify `url` with."
    )
    keep_alive: str | None = _setting(
        None,
        _keep_alive,
        "Ollama: how long the model stays loaded after a request (`5m`, `1h`; `-1` for ever; `0` unloads it at once).",
    )
    # Code actions (Code Llama - Instruct); changing these restarts only the Instruct engine.
    instruct_model: str | None = _setting(
        None, _optional_text, "Code actions: Instruct model (hub id or folder) when `model` is not one."
    )
    instruct_url: str | None = _setting(
        None, _optional_text, "Code actions, remote engines: a second server, running an Instruct model."
    )
    instruct_max_new_tokens: int = _setting(512, _int_range(1, 4096), "Code actions: longest answer, in tokens.")
    # Context from other files of the workspace (issue 11).
    context_tokens: int = _setting(
        512, _int_range(0, 8192), "Prompt tokens for code from other files, out of maxPromptTokens (0: off)."
    )
    context_exclude: tuple[str, ...] = _setting(
        (), _globs, "Globs (gitignore syntax) of workspace files never used as context, besides `.gitignore`."
    )

    # -- names ---------------------------------------------------------------------------
    @staticmethod
    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(part.capitalize() for part in rest)

    @classmethod
    def keys(cls) -> dict[str, str]:
        """Map every accepted spelling (camelCase, snake_case) to the field name."""
        out: dict[str, str] = {}
        for f in fields(cls):
            out[f.name] = f.name
            out[cls.camel(f.name)] = f.name
        return out

    # -- updates -------------------------------------------------------------------------
    def updated(self, changes: Mapping[str, Any]) -> tuple[Settings, list[str]]:
        """Apply valid changes, return the new settings and one message per rejected key.

        Unknown keys are rejected too, so a typo in an editor config is not silently ignored.
        """
        names = self.keys()
        by_field = {f.name: f for f in fields(self)}
        accepted: dict[str, Any] = {}
        errors: list[str] = []
        for key, raw in changes.items():
            name = names.get(key)
            if name is None:
                errors.append(f"unknown setting '{key}'")
                continue
            parse = by_field[name].metadata["parse"]
            if by_field[name].metadata["secret"]:
                redact.remember(raw)  # masked in every later log line, whatever becomes of it
            try:
                accepted[name] = parse(raw)
            except ValueError as exc:
                shown = "<hidden>" if by_field[name].metadata["secret"] else repr(raw)
                errors.append(f"setting '{self.camel(name)}' = {shown} {exc}")
        return dataclasses.replace(self, **accepted), errors

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> tuple[Settings, list[str]]:
        env = os.environ if environ is None else environ
        changes = {f.name: env[ENV_PREFIX + f.name.upper()] for f in fields(cls) if ENV_PREFIX + f.name.upper() in env}
        return cls().updated(changes)

    def to_dict(self) -> dict[str, Any]:
        """camelCase view with secrets masked, for logs and `codellama/status`."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = list(value)  # as JSON and the editors' settings have it
            out[self.camel(f.name)] = "<hidden>" if f.metadata["secret"] and value else value
        return out

    def __repr__(self) -> str:  # never print a token, even by accident
        return f"Settings({self.to_dict()})"

    def same_engine(self, other: Settings) -> bool:
        """Whether ``other`` runs the same engine: no setting marked ``reload`` differs."""
        return all(getattr(self, f.name) == getattr(other, f.name) for f in fields(self) if f.metadata["reload"])

    @property
    def token(self) -> str | None:
        """The API token: the setting, else the standard ``HF_TOKEN`` variable."""
        return self.api_token or os.environ.get("HF_TOKEN") or None


for _f in fields(Settings):
    if _f.metadata["secret"]:
        redact.remember_key(_f.name)
        redact.remember_key(Settings.camel(_f.name))


def extract_section(payload: Any) -> dict[str, Any]:
    """Find our settings in a didChangeConfiguration / initializationOptions payload.

    Clients send either our keys at the top level or nested under a section name.
    """
    if not isinstance(payload, Mapping):
        return {}
    for key in SECTION_KEYS:
        nested = payload.get(key)
        if isinstance(nested, Mapping):
            return dict(nested)
    return dict(payload)


def settings_table() -> str:
    """Markdown table of all settings, used to keep README in sync with the code."""
    rows = ["| setting | env | default | meaning |", "| --- | --- | --- | --- |"]
    for f in fields(Settings):
        default = list(f.default) if isinstance(f.default, tuple) else f.default if f.default is not None else ""
        rows.append(
            f"| `{Settings.camel(f.name)}` | `{ENV_PREFIX}{f.name.upper()}` | `{default}` | {f.metadata['doc']} |"
        )
    return "\n".join(rows)
