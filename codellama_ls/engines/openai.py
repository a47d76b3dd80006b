"""OpenAI-compatible servers (vLLM, llama.cpp server, TGI's OpenAI route): ``/v1/completions``.

The prompt goes as token ids (vLLM and llama.cpp accept a list of ints), so the model gets
exactly the reference ids. Several suggestions use ``n``: at temperature 0 the first is a
greedy request of its own and the others one sampled request with ``n`` (OpenAI's ``n``
shares one temperature); their streams interleave, told apart by ``choices[i].index``.
A server that rejects ids (TGI's route takes only strings) gets the text form from
:mod:`codellama_ls.prompt.text`, and the engine remembers that. A prompt the server finds longer
than its context is another matter (:class:`~codellama_ls.engines.http.ContextOverflow`): the
engine learns the context the server names and raises :class:`~codellama_ls.engines.base.PromptTooLong`,
and the pipeline builds the prompt again to fit it, sent again as ids. The context size comes from
vLLM's ``max_model_len`` or llama.cpp's ``meta.n_ctx`` in ``/v1/models``.
"""

from __future__ import annotations

import logging
from typing import Any

from codellama_ls.engines.base import SAMPLE_TEMPERATURE, SAMPLE_TOP_P, EngineError, EnginePrompt, GenerationRequest
from codellama_ls.engines.http import EventStream
from codellama_ls.engines.remote import _TEXT_MARGIN, Group, Piece, RemoteEngine, stop_texts

log = logging.getLogger(__name__)


class OpenAIEngine(RemoteEngine):
    name = "openai"
    label = "OpenAI-compatible server"
    route_suffixes = ("/v1/completions", "/v1")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.accepts_ids: bool | None = None  # learnt from the first answer

    def read_info(self) -> None:
        try:
            data = self.http.json("GET", "/v1/models", retries=0)
        except EngineError as exc:
            if exc.kind not in ("not-found", "protocol"):
                raise
            log.info("%s has no model list (%s); using the settings' model name", self.label, exc)
            return
        models = data.get("data") if isinstance(data, dict) else None
        if not isinstance(models, list):
            raise EngineError(
                f"codellama-ls: {self.http.shown}/v1/models is not an OpenAI model list; is the setting 'engine' "
                "right?",
                "protocol",
            )
        first = models[0] if models and isinstance(models[0], dict) else {}
        self.model_id = str(first.get("id") or "")
        if first.get("max_model_len"):  # vLLM
            self.max_total = int(first["max_model_len"])
            return
        meta = first.get("meta")
        if isinstance(meta, dict) and isinstance(meta.get("n_ctx"), int) and meta["n_ctx"] > 0:  # llama.cpp
            self.max_total = int(meta["n_ctx"])
            return
        try:  # TGI's OpenAI route: its /info has the limits
            info = self.http.json("GET", "/info", retries=0)
        except EngineError:
            return
        if isinstance(info, dict) and info.get("max_total_tokens"):
            self.max_total = int(info["max_total_tokens"])
            self.max_input = int(info.get("max_input_tokens") or self.max_total - 1)

    def groups(self, req: GenerationRequest) -> list[Group]:
        """One request with ``n`` when all samples sample; else the greedy first alone."""
        n = req.samples
        if req.temperature > 0:
            return [Group(0, n, req.temperature, req.top_p)]
        rest = [Group(1, n - 1, SAMPLE_TEMPERATURE, SAMPLE_TOP_P)] if n > 1 else []
        return [Group(0, 1, req.temperature, req.top_p), *rest]

    def open(
        self, prompt: EnginePrompt, req: GenerationRequest, deadline: float | None, group: Group
    ) -> tuple[EventStream, int]:
        tok = self.tokenizer
        if self.accepts_ids is not False and tok is not None and tok.exact:
            body = self._body(prompt.ids, req, len(prompt.ids), group)
            try:
                stream = self.http.stream("/v1/completions", body, cancel=req.cancel, deadline=deadline)
            except EngineError as exc:
                if exc.kind != "validation" or self.accepts_ids is not None:
                    raise
                log.info("%s rejected a prompt of token ids (%s); sending text from now on", self.label, exc)
                self.accepts_ids = False
            else:
                self.accepts_ids = True
                self.prompts["ids"] += 1
                return stream, len(prompt.ids)
        self.check_fit(prompt, req.max_new_tokens, _TEXT_MARGIN)
        sent = self.send(prompt)
        prompt_tokens = len(sent.ids) or len(prompt.ids)
        body = self._body(sent.text, req, prompt_tokens, group)
        return self.http.stream("/v1/completions", body, cancel=req.cancel, deadline=deadline), prompt_tokens

    def _body(
        self, prompt: list[int] | str, req: GenerationRequest, prompt_tokens: int, group: Group
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model_id or self.settings.model,
            "prompt": prompt,
            "max_tokens": self.new_tokens(req, prompt_tokens),
            "temperature": group.temperature,
            "stream": True,
        }
        stops = stop_texts(req.prompt)
        if stops:
            body["stop"] = stops
        if group.count > 1:
            body["n"] = group.count
        if group.temperature > 0 and 0 < group.top_p < 1:
            body["top_p"] = group.top_p
        return body

    def parse(self, data: Any) -> list[Piece]:
        if not isinstance(data, dict):
            raise EngineError(f"codellama-ls: {self.label} at {self.http.shown} sent an unexpected event.", "protocol")
        if data.get("error") is not None:
            raise self.error_event(data)
        pieces = []
        for choice in data.get("choices") or []:  # none in a usage-only chunk
            if not isinstance(choice, dict):
                continue
            text = choice.get("text") or ""
            finish = choice.get("finish_reason")
            stop = None if finish is None else "length" if finish == "length" else "eot"
            index = choice.get("index")
            pieces.append(Piece(text, stop, index if isinstance(index, int) else 0))
        return pieces
