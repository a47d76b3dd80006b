"""llama.cpp's ``llama-server`` through its own API: ``POST /completion`` with token ids.

What the native API gives over the OpenAI route (``engine: openai`` also works with it):

- the prompt goes as the exact ids, with ``cache_prompt``, so typing on computes only the
  new tokens; ``timings.prompt_n`` says how many the server really computed;
- each document keeps its own slot (``id_slot``) on a server started with ``--parallel N``,
  so switching files does not throw away the other file's cache (least recently used
  documents give their slot up first);
- the context size comes from ``/props``, and prompts are built to fit it;
  ``/health`` answering 503 while the model loads shows as loading, not as a failure;
- the tokenizer is the server's own ``/tokenize`` (the GGUF's vocabulary, exact for Code
  Llama's infill pieces); no local tokenizer is needed, a ``tokenizer`` setting still wins;
- :meth:`warm` computes a resting cursor's prompt into the document's slot (``n_predict: 0``).

Closing the stream stops decoding on the server: llama-server checks the connection between
tokens and releases the slot. Several suggestions are parallel requests (the first greedy on
the document's slot, the others sampled on any idle slot).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from typing import Any

from codellama_ls.config import Settings
from codellama_ls.engines.base import Cancelled, EngineError, EnginePrompt, EngineState, GenerationRequest
from codellama_ls.engines.http import EventStream
from codellama_ls.engines.remote import _TEXT_MARGIN, Group, Piece, RemoteEngine, stop_texts
from codellama_ls.engines.server_tokenizer import LlamaCppTokenizer
from codellama_ls.prompt.tokens import PromptTokenizer

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8080"  # llama-server's own default
_STOP = {"eos": "eos", "word": "eot", "limit": "length"}


class LlamaCppEngine(RemoteEngine):
    name = "llamacpp"
    keeps_prompts = True  # each document's slot keeps its prompt (cache_prompt)
    label = "llama-server"
    route_suffixes = ("/completion", "/v1/completions", "/v1", "/health", "/props")

    def __init__(self, settings: Settings) -> None:
        if not settings.url:
            settings = dataclasses.replace(settings, url=DEFAULT_URL)
        super().__init__(settings)
        self.total_slots = 1
        self._slots: OrderedDict[str, int] = OrderedDict()  # document -> slot, least recently used first

    # -- server info ---------------------------------------------------------------------
    def read_info(self) -> None:
        try:
            self.http.json("GET", "/health", retries=0)
        except EngineError as exc:
            if exc.kind != "overloaded":  # 503: the model is still loading
                raise
            raise EngineError(
                f"codellama-ls: {self.label} at {self.http.shown} is still loading its model; suggestions start "
                "when it is ready.",
                "loading",
            ) from exc
        props = self.http.json("GET", "/props", retries=0)
        settings = props.get("default_generation_settings") if isinstance(props, dict) else None
        if not isinstance(props, dict) or not isinstance(settings, dict):
            raise EngineError(
                f"codellama-ls: {self.http.shown}/props is not llama-server's; is the setting 'engine' right?",
                "protocol",
            )
        n_ctx = settings.get("n_ctx")
        self.max_total = n_ctx if isinstance(n_ctx, int) and n_ctx > 0 else None
        self.max_input = None
        slots = props.get("total_slots")
        self.total_slots = slots if isinstance(slots, int) and slots > 0 else 1
        self.model_id = str(props.get("model_alias") or "")

    def _resolve_tokenizer(self) -> None:
        """The ``tokenizer`` setting, else the server's own ``/tokenize`` (every llama-server has one)."""
        if self.tokenizer_source == "setting":
            return
        super()._resolve_tokenizer()

    def server_tokenizer(self) -> PromptTokenizer | None:
        return LlamaCppTokenizer.probe(self._post_json, "/tokenize", f"{self.label} at {self.http.shown}")

    def slot(self, key: str) -> int:
        """The slot of document ``key``: its own while the server has enough, else the least
        recently used document's (-1: any idle slot, on a one-slot server or without a key)."""
        if self.total_slots <= 1 or not key:
            return -1
        with self._lock:
            if key in self._slots:
                self._slots.move_to_end(key)
                return self._slots[key]
            taken = set(self._slots.values())
            free = [i for i in range(self.total_slots) if i not in taken]
            if free:
                slot = free[0]
            else:
                _, slot = self._slots.popitem(last=False)
            self._slots[key] = slot
            return slot

    # -- requests ------------------------------------------------------------------------
    def warm(self, request: GenerationRequest, *, ahead: bool = False) -> int:
        """Compute the prompt into the document's slot (``n_predict: 0``); 0 when that is not possible,
        and for a look-ahead, which would replace the slot's prompt in use."""
        if ahead or self.state is not EngineState.READY or request.cancel.is_set():
            return 0
        tok = self.tokenizer
        try:
            self.refresh_info()
            if tok is None or not tok.exact:
                return 0
            prompt = request.prompt
            self.check_fit(prompt, request.max_new_tokens)
            body = {
                "prompt": prompt.ids,
                "n_predict": 0,
                "cache_prompt": True,
                "id_slot": self.slot(request.key),
                "stream": False,
            }
            data = self.http.json("POST", "/completion", body, cancel=request.cancel, retries=0)
        except (EngineError, Cancelled) as exc:
            log.info("%s: warming a prompt failed: %s", self.label, exc)
            return 0
        timings = data.get("timings") if isinstance(data, dict) else None
        computed = timings.get("prompt_n") if isinstance(timings, dict) else None
        return computed if isinstance(computed, int) else 0

    def open(
        self, prompt: EnginePrompt, req: GenerationRequest, deadline: float | None, group: Group
    ) -> tuple[EventStream, int]:
        tok = self.tokenizer
        content: list[int] | str
        if tok is not None and tok.exact:
            content, prompt_tokens = prompt.ids, len(prompt.ids)
            self.prompts["ids"] += 1
        else:  # only with an estimating tokenizer (a server whose /tokenize failed)
            self.check_fit(prompt, req.max_new_tokens, _TEXT_MARGIN)
            sent = self.send(prompt)
            content, prompt_tokens = sent.text, len(sent.ids) or len(prompt.ids)
        sampling = group.temperature > 0
        body: dict[str, Any] = {
            "prompt": content,
            "n_predict": self.new_tokens(req, prompt_tokens),
            "stream": True,
            "cache_prompt": True,
            "timings_per_token": True,  # prompt_n arrives with the first token
            "temperature": group.temperature if sampling else 0.0,
            # Plain sampling, as the local engine does: llama-server's defaults add top-k, min-p
            # and, in some versions, a repetition penalty.
            "top_k": 0,
            "min_p": 0.0,
            "top_p": group.top_p if sampling and 0 < group.top_p < 1 else 1.0,
            "repeat_penalty": 1.0,
            "stop": stop_texts(prompt),
            # The first sample on the document's slot (its cache); the others on any idle slot.
            "id_slot": self.slot(req.key) if group.first == 0 else -1,
        }
        return self.http.stream("/completion", body, cancel=req.cancel, deadline=deadline), prompt_tokens

    def parse(self, data: Any) -> list[Piece]:
        if not isinstance(data, dict):
            raise EngineError(f"codellama-ls: {self.label} at {self.http.shown} sent an unexpected event.", "protocol")
        if data.get("error") is not None:
            raise self.error_event(data)
        stop = _STOP.get(str(data.get("stop_type")), "length") if data.get("stop") else None
        timings = data.get("timings")
        prefill = timings.get("prompt_n") if isinstance(timings, dict) else None
        index = data.get("index")
        return [
            Piece(
                str(data.get("content") or ""),
                stop,
                index if isinstance(index, int) else 0,
                prompt_eval=prefill if isinstance(prefill, int) else None,
            )
        ]

    def status(self) -> dict[str, Any]:
        out = super().status()
        out["slots"] = self.total_slots
        return out
