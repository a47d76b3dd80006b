"""What every engine (local transformers, TGI, OpenAI-compatible) offers the pipeline."""

from __future__ import annotations

import enum
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from codellama_ls.prompt import Prompt
from codellama_ls.tokens import CodeTokenizer


class EngineState(enum.Enum):
    IDLE = "idle"  # not loaded yet
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class EngineError(RuntimeError):
    """A failure worth one message to the user; ``kind`` groups repeats of the same failure."""

    def __init__(self, message: str, kind: str = "engine") -> None:
        super().__init__(message)
        self.kind = kind


class Cancelled(Exception):
    """The request was superseded or cancelled while generating."""


# Decides from the text generated so far whether the suggestion is complete.
StopCheck = Callable[[str], bool]
# Reports load progress: (message, percentage or None).
ProgressFn = Callable[[str, "int | None"], None]


@dataclass
class GenerationRequest:
    prompt: Prompt
    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 0.95
    cancel: threading.Event = field(default_factory=threading.Event)
    should_stop: StopCheck | None = None
    timeout_s: float | None = None
    key: str = ""  # the document the request belongs to (per-document caches)


@dataclass
class GenerationResult:
    text: str
    new_tokens: int
    prefill_tokens: int  # prompt tokens actually computed (less than the prompt with a cache hit)
    prompt_tokens: int
    stop_reason: str  # "eot" | "eos" | "length" | "early" | "cancelled" | "timeout"
    seconds: float = 0.0


class Engine:
    """Base class: state, tokenizer and the generation entry point."""

    name = "engine"

    def __init__(self) -> None:
        self.state = EngineState.IDLE
        self.error: str | None = None
        self.tokenizer: CodeTokenizer | None = None
        self.context_length: int | None = None
        self.model_id: str = ""
        # Recent generations, newest last: what tests, `codellama/status` and benchmarks read.
        self.history: deque[GenerationResult] = deque(maxlen=64)
        self.generations = 0

    def record(self, result: GenerationResult) -> GenerationResult:
        self.generations += 1
        self.history.append(result)
        return result

    def status(self) -> dict[str, object]:
        last = self.history[-1] if self.history else None
        return {
            "engine": self.name,
            "state": self.state.value,
            "model": self.model_id,
            "error": self.error,
            "contextLength": self.context_length,
            "generations": self.generations,
            "last": None
            if last is None
            else {
                "newTokens": last.new_tokens,
                "prefillTokens": last.prefill_tokens,
                "promptTokens": last.prompt_tokens,
                "stopReason": last.stop_reason,
                "seconds": round(last.seconds, 4),
            },
        }

    @property
    def ready(self) -> bool:
        return self.state is EngineState.READY

    def load(self, progress: ProgressFn | None = None) -> None:
        """Load weights/tokenizer (blocking; the server calls it in a worker thread)."""
        raise NotImplementedError

    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Generate a completion (blocking, in a worker thread; checks ``request.cancel`` each token)."""
        raise NotImplementedError

    def close(self) -> None:
        """Free memory / connections."""
