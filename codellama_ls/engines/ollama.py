"""Ollama's own API: ``POST /api/generate`` with ``raw: true``, read as newline-delimited JSON.

Ollama takes the prompt only as text (an array of ids is refused with HTTP 400) and has no
tokenize route, so each prompt goes through :mod:`codellama_ls.prompt.text`, checked with
the model's tokenizer when one is at hand (the ``tokenizer`` setting, or the Hugging Face
id an Ollama tag such as ``codellama:7b-code`` is made from, in the local cache), else
cut by estimate. ``raw`` keeps Ollama's chat template out: the model gets the infilling
text (or the Instruct chat text) as built here.

Ollama's default context (2048 or 4096 tokens, by version) silently drops the start of a
longer prompt, so every request sets ``options.num_ctx`` to room for the prompt budget plus
the answer, capped at the model's context length from ``/api/show``. The value depends only
on the settings, not on each prompt: Ollama reloads the model whenever ``num_ctx`` changes.
``/api/show`` also checks once that the model is pulled; if it is not, the message names
the ``ollama pull`` command and the models that are there (``/api/tags``). Then the model is
loaded into Ollama in the background (a request without a prompt, with the same ``num_ctx``),
so the first suggestion does not wait out a cold load against ``readTimeoutMs``; suggestions
asked for meanwhile wait for it (a newer keystroke still cancels them).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from typing import Any

from codellama_ls.config import Settings
from codellama_ls.engines.base import Cancelled, EngineError, EnginePrompt, GenerationRequest
from codellama_ls.engines.http import Deadline, EventStream
from codellama_ls.engines.remote import _TEXT_MARGIN, Group, Piece, RemoteEngine, stop_texts
from codellama_ls.engines.server_tokenizer import CODE_LLAMA_SPECIAL, EstimatingTokenizer
from codellama_ls.notify import ProgressFn

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:11434"
DEFAULT_MODEL = "codellama:7b-code"  # used while 'model' keeps its default (a Hugging Face id)
PRELOAD_TIMEOUT_S = 600.0  # loading a large model from a slow disk takes minutes
_NUM_CTX_STEP = 256  # num_ctx is rounded up to this, so small setting changes seldom reload the model
_SIZES = ("7b", "13b", "34b", "70b")
_VARIANTS = {"code": "", "instruct": "-Instruct", "python": "-Python"}


def ollama_model(settings: Settings) -> str:
    """The Ollama model to use: the 'model' setting, or codellama:7b-code while it is the default."""
    if settings.model == Settings().model:
        return DEFAULT_MODEL
    return settings.model


def hub_id(name: str) -> str | None:
    """The Hugging Face id a Code Llama tag of the Ollama library is made from, else None.

    ``codellama:13b-code-q4_K_M`` -> ``codellama/CodeLlama-13b-hf``; a bare size or ``latest``
    is the Instruct model (as the library tags them); other models' names give None.
    """
    last = name.strip().lower().rsplit("/", 1)[-1]
    base, _, tag = last.partition(":")
    if base != "codellama":
        return None
    parts = (tag or "latest").split("-")
    if parts == ["latest"]:
        parts = ["7b", "instruct"]
    elif parts[0] in _VARIANTS:  # codellama:code is codellama:7b-code
        parts = ["7b", *parts]
    size, variant = parts[0], parts[1] if len(parts) > 1 else "instruct"  # the rest: a quantization
    if size not in _SIZES or variant not in _VARIANTS:
        return None  # a tag of another shape: no guess
    return f"codellama/CodeLlama-{size}{_VARIANTS[variant]}-hf"


def infills(name: str) -> bool:
    """Whether an Ollama tag's model was trained to infill: not Code Llama 34B nor the Python models."""
    hub = hub_id(name)
    return hub is None or not ("-34b" in hub or "-Python" in hub)


class PrefixEstimate(EstimatingTokenizer):
    """The estimate for a model without infilling: prompts are the prefix only."""

    special = dataclasses.replace(CODE_LLAMA_SPECIAL, pre=None, suf=None, mid=None, eot=None)


def keep_alive(value: str) -> str | float:
    """The setting as Ollama parses it: a plain number is seconds (Go durations need a unit)."""
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() else number


class OllamaEngine(RemoteEngine):
    name = "ollama"
    label = "Ollama"
    route_suffixes = ("/api/generate", "/api/show", "/api")
    tokenize_route = None  # Ollama has no tokenize route
    default_url = DEFAULT_URL

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.model_name = ollama_model(settings)
        self.model_num_ctx: int | None = None  # a num_ctx the model's Modelfile sets
        self._preloaded = threading.Event()  # set: no load of the model in flight
        self._preloaded.set()
        self._closed = threading.Event()  # set by close(): a preload in flight ends, silently

    # -- loading ---------------------------------------------------------------------------
    def load(self, progress: ProgressFn | None = None) -> None:
        super().load(progress)
        if self._info_ok:  # the model is there: have Ollama load it now rather than at the first keystroke
            self._preloaded.clear()
            threading.Thread(target=self._preload, name="codellama-ollama-load", daemon=True).start()

    def _preload(self) -> None:
        """``/api/generate`` without a prompt loads the model (with this num_ctx, so the first
        suggestion does not reload it). A failure here is only logged: requests report their own."""
        body: dict[str, Any] = {"model": self.model_name, "stream": False, "options": {"num_ctx": self.num_ctx(0)}}
        if self.settings.keep_alive is not None:
            body["keep_alive"] = keep_alive(self.settings.keep_alive)
        started = time.perf_counter()
        try:
            self.http.json("POST", "/api/generate", body, cancel=self._closed, retries=0, read_s=PRELOAD_TIMEOUT_S)
            log.info("Ollama loaded %s in %.1fs", self.model_name, time.perf_counter() - started)
        except Exception as exc:  # EngineError, or the client closed under it by close()
            if not self._closed.is_set():  # after close() nobody wants to hear of it
                log.info("Ollama did not load %s ahead: %s", self.model_name, exc)
        finally:
            self._preloaded.set()

    def _wait_for_preload(self, req: GenerationRequest, deadline: float | None) -> None:
        while not self._preloaded.wait(0.02):
            if req.cancel.is_set():
                raise Cancelled()
            if deadline is not None and time.monotonic() > deadline:
                raise Deadline()

    # -- the model -------------------------------------------------------------------------
    def read_info(self) -> None:
        """``/api/show``: the model is there, and its context length."""
        try:
            show = self.http.json("POST", "/api/show", {"model": self.model_name}, retries=0)
        except EngineError as exc:
            if exc.kind == "not-found":
                raise self.missing_model() from exc
            raise
        if not isinstance(show, dict) or not any(k in show for k in ("model_info", "details", "modelfile")):
            raise EngineError(
                f"codellama-ls: {self.http.shown}/api/show is not an Ollama model record; is the setting 'engine' "
                "right?",
                "protocol",
            )
        self.model_id = self.model_name
        info = show.get("model_info")
        self.max_total = context_length(info) if isinstance(info, dict) else None
        self.model_num_ctx = _parameter(show.get("parameters"), "num_ctx")

    def missing_model(self) -> EngineError:
        """The model is not pulled: say how to get it and what is there (``/api/tags``)."""
        name = self.model_name
        try:
            tags = self.http.json("GET", "/api/tags", retries=0)
        except EngineError as exc:
            if exc.kind in ("not-found", "protocol"):
                return EngineError(
                    f"codellama-ls: {self.http.shown} has no /api/show or /api/tags: it is not an Ollama server. "
                    "Is the setting 'engine' or 'url' right?",
                    "protocol",
                )
            return exc
        models = tags.get("models") if isinstance(tags, dict) else None
        names = sorted(str(m["name"]) for m in models or [] if isinstance(m, dict) and m.get("name"))
        there = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "") if names else "none"
        return EngineError(
            f"codellama-ls: Ollama at {self.http.shown} has no model '{name}'. Pull it with `ollama pull {name}` "
            f"(or set 'model' to one that is there: {there}). Suggestions start once it is there.",
            "model-missing",
        )

    def cached_tokenizer_ids(self) -> list[str]:
        hub = hub_id(self.model_name)
        return [hub] if hub else []

    def _resolve_tokenizer(self) -> None:
        """As for every remote engine; without a tokenizer, the tag says whether the model infills
        (a tokenizer.json says it by its pieces)."""
        super()._resolve_tokenizer()
        if self.tokenizer_source == "estimate" and not infills(self.model_name):
            self.tokenizer = PrefixEstimate()

    # -- requests --------------------------------------------------------------------------
    def num_ctx(self, needed: int) -> int:
        """Context to ask for: room for the prompt budget and the longer of the two answers
        (suggestions, code actions), the same for every request, within the model's context."""
        s = self.settings
        want = s.max_prompt_tokens + max(s.max_new_tokens, s.instruct_max_new_tokens) + _TEXT_MARGIN
        want = -(-want // _NUM_CTX_STEP) * _NUM_CTX_STEP
        if self.model_num_ctx is not None and self.model_num_ctx >= needed:
            want = self.model_num_ctx  # the Modelfile's own is big enough: no reload for it
        want = max(want, needed)
        return min(want, self.max_total) if self.max_total else want

    def open(
        self, prompt: EnginePrompt, req: GenerationRequest, deadline: float | None, group: Group
    ) -> tuple[EventStream, int]:
        """One sample per request: several suggestions are parallel requests."""
        self._wait_for_preload(req, deadline)
        self.check_fit(prompt, req.max_new_tokens, _TEXT_MARGIN)
        sent = self.send(prompt)
        prompt_tokens = len(sent.ids) or len(prompt.ids)
        predict = self.new_tokens(req, prompt_tokens)
        options: dict[str, Any] = {
            "num_predict": predict,
            "num_ctx": self.num_ctx(prompt_tokens + predict + _TEXT_MARGIN),
            "temperature": group.temperature,  # 0: greedy
        }
        stops = stop_texts(prompt)
        if stops:
            options["stop"] = stops
        if group.temperature > 0:
            options["top_p"] = group.top_p
        body: dict[str, Any] = {
            "model": self.model_name,
            "prompt": sent.text,
            "raw": True,
            "stream": True,
            "options": options,
        }
        if self.settings.keep_alive is not None:
            body["keep_alive"] = keep_alive(self.settings.keep_alive)
        try:
            stream = self.http.stream("/api/generate", body, cancel=req.cancel, deadline=deadline, lines=True)
        except EngineError as exc:
            if exc.kind != "not-found":
                raise
            # The model was removed since /api/show: say so, and check again before the next request.
            with self._lock:
                self._info_ok = False
            raise self.missing_model() from exc
        return stream, prompt_tokens

    def status(self) -> dict[str, Any]:
        out = super().status()
        out["numCtx"] = self.num_ctx(0)  # what every request asks Ollama for
        return out

    def close(self) -> None:
        self._closed.set()
        super().close()  # closing the client ends a preload in flight
        self._preloaded.set()

    def parse(self, data: Any) -> list[Piece]:
        if not isinstance(data, dict):
            raise EngineError(f"codellama-ls: Ollama at {self.http.shown} sent an unexpected line.", "protocol")
        if data.get("error") is not None:
            raise self.error_event(data)
        text = data.get("response")
        text = text if isinstance(text, str) else ""
        if not data.get("done"):
            return [Piece(text)]
        stop = "length" if data.get("done_reason") == "length" else "eot"
        prompt_eval, generated = _int(data.get("prompt_eval_count")), _int(data.get("eval_count"))
        return [Piece(text, stop, prompt_eval=prompt_eval, generated=generated)]


def context_length(model_info: dict[str, Any]) -> int | None:
    """``<architecture>.context_length`` of ``/api/show``'s ``model_info``."""
    arch = model_info.get("general.architecture")
    value = model_info.get(f"{arch}.context_length") if isinstance(arch, str) else None
    if value is None:  # an older record without the architecture: any context length it has
        value = next((v for k, v in model_info.items() if k.endswith(".context_length")), None)
    length = _int(value)
    return length if length else None


def _parameter(text: Any, name: str) -> int | None:
    """An integer parameter of the Modelfile, from ``/api/show``'s ``parameters`` text."""
    if not isinstance(text, str):
        return None
    match = re.search(rf"^\s*{re.escape(name)}\s+(\d+)\s*$", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def _int(value: Any) -> int | None:
    """A count from Ollama's JSON (None when absent or not a count)."""
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None
