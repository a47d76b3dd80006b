"""The one fake engine of the in-process tests: scripted answers, or a chosen fault.

It stands where a model would: the real pipeline (prompt, scheduler, early stop,
post-processing) runs around it. Answers stream a character at a time through the request's
stop check, as a decoding loop would, so early stop behaves as with a model.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

from tokenizers import Tokenizer, models, pre_tokenizers

from codellama_ls.engines.base import Engine, EngineState, GenerationRequest, GenerationResult
from codellama_ls.notify import ProgressFn
from codellama_ls.prompt.fim import Prompt
from codellama_ls.prompt.tokens import CodeTokenizer, PromptTokenizer

# What the engine answers: one output per request in order (an exception is raised instead),
# a map from a text in the prompt's prefix (a chat prompt's text) to the output, or a function of the request. An
# output is a text, or a list of texts: one per sample of a request for several suggestions
# (a request for fewer gets the first ones).
Output = str | list[str]
Script = list[Output | BaseException] | dict[str, Output] | Callable[[GenerationRequest], Output]


def word_tokenizer() -> CodeTokenizer:
    """Enough of a tokenizer for prompts whose ids nobody reads (needs no ../shared)."""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "▁<PRE>": 3, "▁<SUF>": 4, "▁<MID>": 5, "▁<EOT>": 6}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return CodeTokenizer(json.loads(tok.to_str()))


class FakeEngine(Engine):
    """A ready engine answering from ``script``; ``mode`` makes it fail the way a device does.

    - ``ok``: answer from the script;
    - ``raise``: raise ``error`` (an OOM, a CUDA fault, a bug);
    - ``hang``: a slow device that still checks the cancel flag every step;
    - ``stuck``: a device call that ignores the cancel flag until ``release`` is set.

    ``load_error`` makes ``load`` fail (a reload then leaves a failed engine).
    """

    name = "fake"

    def __init__(
        self,
        tokenizer: PromptTokenizer | None = None,
        script: Script | str = "",
        *,
        mode: str = "ok",
        error: BaseException | None = None,
    ) -> None:
        super().__init__()
        self.tokenizer = tokenizer or word_tokenizer()
        self.state = EngineState.READY
        self.script = script
        self.mode, self.error = mode, error
        self.release = threading.Event()
        self.load_error: BaseException | None = None
        self.requests: list[GenerationRequest] = []

    def load(self, progress: ProgressFn | None = None) -> None:
        if self.load_error is not None:
            raise self.load_error
        self.state = EngineState.READY

    def close(self) -> None:
        return None

    def generate(self, request: GenerationRequest) -> GenerationResult:
        self.requests.append(request)
        n = len(request.prompt.ids)
        if self.mode == "raise":
            assert self.error is not None
            raise self.error
        if self.mode == "hang":
            while not request.cancel.wait(0.01):
                pass
            return self.record(GenerationResult("", 0, n, n, "cancelled"))
        if self.mode == "stuck":
            self.release.wait(60)
        out = self._next(request)
        outputs = ([out] if isinstance(out, str) else out)[: request.samples]
        texts, reasons = [], []
        for output, check in zip(outputs, request.stop_checks(), strict=False):
            text, reason = "", "eot"
            for ch in output:  # a character is a token here: max_new_tokens cuts as a model's limit would
                if request.cancel.is_set():
                    reason = "cancelled"
                    break
                if len(text) == request.max_new_tokens:
                    reason = "length"
                    break
                text += ch
                if check is not None and check(text):
                    reason = "early"
                    break
            texts.append(text)
            reasons.append(reason)
        decoded = sum(len(t) for t in texts)
        result = GenerationResult(texts[0], decoded, n, n, reasons[0], texts=texts, stop_reasons=reasons)
        return self.record(result)

    def _next(self, request: GenerationRequest) -> Output:
        script = self.script
        if isinstance(script, str):
            return script
        if isinstance(script, dict):
            prompt = request.prompt
            text = prompt.prefix if isinstance(prompt, Prompt) else prompt.text
            return next(out for key, out in script.items() if key in text)
        if isinstance(script, list):
            out = script.pop(0)
            if isinstance(out, BaseException):
                raise out
            return out
        return script(request)
