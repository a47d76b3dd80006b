"""text-generation-inference and Inference Endpoints: ``POST /generate_stream`` with text.

TGI takes the prompt as text and tokenizes it itself (adding BOS), so each prompt goes
through :func:`codellama_ls.prompt.text.text_prompt`: checked against the server's
tokenization and, where BPE would swallow the ``▁<SUF>`` marker, sent in the least
harmful form. Events are parsed with huggingface_hub's typed TGI stream records.
"""

from __future__ import annotations

from typing import Any

from huggingface_hub import TextGenerationStreamOutput

from codellama_ls.engines.base import EngineError, EnginePrompt, GenerationRequest
from codellama_ls.engines.http import EventStream
from codellama_ls.engines.remote import _TEXT_MARGIN, EOT_TEXT, Group, Piece, RemoteEngine, stop_texts

_FINISH = {"length": "length", "eos_token": "eos", "stop_sequence": "eot"}


class TGIEngine(RemoteEngine):
    name = "tgi"
    label = "TGI"
    route_suffixes = ("/generate_stream", "/generate", "/info")

    def read_info(self) -> None:
        info = self.http.json("GET", "/info", retries=0)
        if not isinstance(info, dict) or "model_id" not in info:
            raise EngineError(
                f"codellama-ls: {self.http.shown}/info is not a TGI info record; is the setting 'engine' right?",
                "protocol",
            )
        self.model_id = str(info["model_id"])
        # TGI < 2 called them max_input_length / max_total_tokens.
        self.max_input = _int(info.get("max_input_tokens", info.get("max_input_length")))
        self.max_total = _int(info.get("max_total_tokens"))

    def open(
        self, prompt: EnginePrompt, req: GenerationRequest, deadline: float | None, group: Group
    ) -> tuple[EventStream, int]:
        """One sample per request: several suggestions are parallel requests (TGI batches them)."""
        self.check_fit(prompt, req.max_new_tokens, _TEXT_MARGIN)
        sent = self.send(prompt)
        prompt_tokens = len(sent.ids) or len(prompt.ids)
        sampling = group.temperature > 0
        parameters: dict[str, Any] = {
            "max_new_tokens": self.new_tokens(req, prompt_tokens),
            "stop": stop_texts(prompt),
            "details": True,
            "return_full_text": False,
            "do_sample": sampling,
        }
        if sampling:
            parameters["temperature"] = group.temperature
            if 0 < group.top_p < 1:  # TGI rejects top_p = 1.0
                parameters["top_p"] = group.top_p
        body = {"inputs": sent.text, "parameters": parameters}
        return self.http.stream("/generate_stream", body, cancel=req.cancel, deadline=deadline), prompt_tokens

    def parse(self, data: Any) -> list[Piece]:
        if not isinstance(data, dict):
            raise EngineError(f"codellama-ls: TGI at {self.http.shown} sent an unexpected event.", "protocol")
        if data.get("error") is not None:
            raise self.error_event(data)
        out = TextGenerationStreamOutput.parse_obj_as_instance(data)
        token = out.token
        eot = self.tokenizer.special.eot if self.tokenizer is not None else None
        if (eot is not None and token.id == eot) or token.text.strip() == EOT_TEXT:
            return [Piece("", "eot")]
        text = "" if token.special else token.text
        if out.details is not None:
            return [Piece(text, _FINISH.get(str(out.details.finish_reason), "length"))]
        return [Piece(text)]


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
