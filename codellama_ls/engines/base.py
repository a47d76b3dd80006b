"""What every engine (local transformers, TGI, OpenAI-compatible) offers the pipeline."""

from __future__ import annotations

import enum
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from codellama_ls.config import Settings
from codellama_ls.notify import ProgressFn
from codellama_ls.prompt.chat import ChatPrompt
from codellama_ls.prompt.fim import Prompt
from codellama_ls.prompt.tokens import PromptTokenizer


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


class PromptTooLong(EngineError):
    """The engine cannot take this prompt (its limits, learnt late or from the server's refusal):
    whoever built it builds it again within at most ``limit`` tokens and asks once more. Engines
    never cut prompts themselves."""

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message, "context")
        self.limit = limit


class Cancelled(Exception):
    """The request was superseded or cancelled while generating."""


# What engines generate from: an infilling prompt (its answer ends at ``▁<EOT>``), or a chat prompt
# for Code Llama - Instruct (its answer ends at EOS). Engines tell them apart by type.
EnginePrompt = Prompt | ChatPrompt

# Decides from the text generated so far whether the suggestion is complete.
StopCheck = Callable[[str], bool]


# Sampling of the suggestions after the first when the user's temperature is 0 (greedy): the
# first stays the greedy answer, the others need some randomness to differ from it.
SAMPLE_TEMPERATURE = 0.8
SAMPLE_TOP_P = 0.95


@dataclass
class GenerationRequest:
    prompt: EnginePrompt
    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 0.95
    cancel: threading.Event = field(default_factory=threading.Event)
    # Makes the early-stop check of one sample: called once per sample (or stream), since a check
    # may remember the text it saw. None: no early stop.
    stop_check: Callable[[], StopCheck] | None = None
    timeout_s: float | None = None
    key: str = ""  # the document the request belongs to (per-document caches)
    samples: int = 1  # suggestions wanted: the first decoded as a single request would be, the others sampled
    # False for work nobody asked for yet (a prefetch): kept out of ``generations`` and ``history``,
    # which count and describe the answers to requests.
    counted: bool = True

    def stop_checks(self) -> list[StopCheck | None]:
        """A fresh early-stop check for each sample."""
        make = self.stop_check
        return [make() if make is not None else None for _ in range(self.samples)]

    def sampling(self, index: int) -> tuple[float, float]:
        """(temperature, top_p) of sample ``index``: the request's own for the first; the
        others sample with SAMPLE_TEMPERATURE / SAMPLE_TOP_P when the request is greedy."""
        if index == 0 or self.temperature > 0:
            return self.temperature, self.top_p
        return SAMPLE_TEMPERATURE, SAMPLE_TOP_P


@dataclass
class GenerationResult:
    text: str  # the first sample (the greedy one at temperature 0)
    new_tokens: int  # tokens decoded, all samples together
    prefill_tokens: int  # prompt tokens actually computed (less than the prompt with a cache hit)
    prompt_tokens: int
    stop_reason: str  # of the first sample: "eot" | "eos" | "length" | "early" | "cancelled" | "timeout"
    seconds: float = 0.0
    texts: list[str] = field(default_factory=list)  # every sample, the first being ``text``
    stop_reasons: list[str] = field(default_factory=list)  # why each sample ended
    # Local engine's work, for `codellama/status`: prompt chunks computed, whether a newer request
    # stopped the prefill between chunks, and prompt-lookup drafts proposed / accepted.
    chunks: int = 0
    interrupted: bool = False
    drafted: int = 0
    accepted: int = 0

    def __post_init__(self) -> None:
        if not self.texts:
            self.texts = [self.text]
        if not self.stop_reasons:
            self.stop_reasons = [self.stop_reason] * len(self.texts)


class Engine:
    """Base class: state, tokenizer, settings, notices and the generation entry point.

    The pipeline relies on exactly these members; engines override ``load``, ``generate``,
    ``close`` and, where they keep derived state, ``configure`` and ``status``; engines whose limits
    are not one model context (servers) override ``context_length`` and ``prompt_limit``.
    Prompts are built and fitted by their callers within these limits; an engine that finds one too
    long raises :class:`PromptTooLong` and never cuts it itself.
    """

    name = "engine"
    # Whether requests should wait for typing to pause before they reach the engine. A remote
    # server is shared and each request costs a round trip, so it is worth waiting for; an
    # in-process engine starts at once, because a newer keystroke stops it within one token.
    needs_debounce = True
    # Whether the engine keeps computed prompts (a KV cache, a server's slots) that ``warm`` fills and
    # the next request reuses; the pipeline warms and prefetches only for such engines.
    keeps_prompts = False
    # Whether it can also keep a look-ahead (``warm(..., ahead=True)``) beside the prompt in use: a
    # server slot holds one prompt, so only the in-process KV cache can.
    keeps_look_ahead = False

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.state = EngineState.IDLE
        self.error: str | None = None
        self.tokenizer: PromptTokenizer | None = None
        self._context_length: int | None = None  # the model's, where the engine reads it on load
        self.model_id: str = ""
        # Recent generations, newest last: what tests, `codellama/status` and benchmarks read.
        self.history: deque[GenerationResult] = deque(maxlen=64)
        self.generations = 0
        self._notices: list[tuple[str, str]] = []
        self._notice_lock = threading.Lock()

    def configure(self, settings: Settings) -> None:
        """Take changed settings that need no reload (timeouts, retries, cache bounds).

        The pipeline calls this on every settings change that does not recreate the engine.
        """
        self.settings = settings

    def notice(self, key: str, message: str) -> None:
        """Leave information for the user (shown once per ``key``); any thread."""
        with self._notice_lock:
            self._notices.append((key, message))

    def take_notices(self) -> list[tuple[str, str]]:
        """The notices left since the last call (the pipeline shows them)."""
        with self._notice_lock:
            notices, self._notices = self._notices, []
        return notices

    def record(self, result: GenerationResult) -> GenerationResult:
        self.generations += 1
        self.history.append(result)
        return result

    def status(self) -> dict[str, Any]:
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
    def context_length(self) -> int | None:
        """Tokens of context for a prompt and its answer (None: unknown); what prompt budgets
        (:func:`codellama_ls.prompt.fim.prompt_budget`) are computed from."""
        return self._context_length

    def prompt_limit(self, max_new_tokens: int) -> int | None:
        """The most prompt tokens that leave room for ``max_new_tokens`` (None: unknown)."""
        return self.context_length - max_new_tokens if self.context_length else None

    def chat_limit(self, max_new_tokens: int) -> int | None:
        """The longest chat prompt (code actions) that leaves room for ``max_new_tokens`` (None: unknown)."""
        limit = self.prompt_limit(max_new_tokens)
        return max(limit, 16) if limit is not None else None

    @property
    def ready(self) -> bool:
        return self.state is EngineState.READY

    def load(self, progress: ProgressFn | None = None) -> None:
        """Load weights/tokenizer (blocking; the server calls it in a worker thread)."""
        raise NotImplementedError

    def warm(self, request: GenerationRequest, *, ahead: bool = False) -> int:
        """Compute ``request.prompt`` into the engine's cache without answering: the cursor rests
        there, so the next real request at that place skips the prefill. Runs only when no real
        request waits; returns the prompt tokens computed. Engines without a cache do nothing.

        ``ahead``: a prompt the user has not reached yet (:func:`prompt.fim.next_cut_prompt`), kept
        beside the current one without displacing it; only engines that say ``keeps_look_ahead``
        are asked."""
        return 0

    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Generate a completion (blocking, in a worker thread; checks ``request.cancel`` each token)."""
        raise NotImplementedError

    def close(self) -> None:
        """Free memory / connections."""
