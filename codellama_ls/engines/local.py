"""In-process generation with transformers (+ accelerate, bitsandbytes).

The decoding loop is our own rather than ``model.generate``: it checks the cancel flag and
the stop check after every token, so a superseded request frees the device within one
step, and it ends on ``▁<EOT>`` (which is not the tokenizer's EOS). The prefill reuses the
key/value cache of the document's previous prompt (``kvcache.py``) and computes only the
tokens after the longest common prefix, in chunks of ``PREFILL_CHUNK`` tokens: between chunks
a newer request (the request's cancel flag) stops it, and the chunks done stay in the cache,
so a keystroke never waits longer than one chunk and the next prompt starts from them.
``warm`` is that prefill alone (the cursor rests somewhere). Several suggestions share one
prefill and decode as one batch; the prompt's cache is kept for reuse with one row, as for one
suggestion. A single greedy suggestion decodes with prompt lookup: the tokens that followed the
last generated n-gram where it occurs earlier (the suffix, context from other files and the
answer so far often hold the continuation) are checked all at once in one forward pass, and
those the model would have picked anyway are kept: the same tokens as plain greedy decoding,
in fewer passes.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codellama_ls import hub
from codellama_ls.config import Settings
from codellama_ls.engines.base import (
    Engine,
    EngineError,
    EngineState,
    GenerationRequest,
    GenerationResult,
)
from codellama_ls.engines.kvcache import PrefixCache, crop, expand
from codellama_ls.notify import ProgressFn
from codellama_ls.prompt.tokens import CodeTokenizer, TokenizerNotFound

log = logging.getLogger(__name__)

PREFILL_CHUNK = 256  # prompt tokens per forward pass: the longest a newer request waits for the worker
DRAFT_TOKENS = 8  # prompt-lookup draft tokens checked in one forward pass, at most
DRAFT_START = 2  # the first draft's length: it doubles while drafts are accepted, shrinks when one is not
LOOKUP_NGRAM = 3  # the longest n-gram matched
LOOKUP_MIN_NGRAM = 2  # one token matches almost anywhere: its drafts are mostly rejected, and cost a wider pass
LOOKUP_WINDOW = 4096  # how far back (tokens) drafts are looked for, bounding the search per step
# A look-ahead missing no more than this many of its last tokens is not brought up to date: the request
# at the step computes them with what was typed, and the rests before it cost no forward pass each.
AHEAD_SLACK = 32
# A look-ahead is work the next keystroke does not need: its chunks are smaller, so that keystroke waits
# less for the one in progress (on a 2-core CPU, 64 tokens of the bench's model: ~85 ms, at 1.3 × the
# time per token of 256-token chunks; the look-ahead has the user's rests to finish in).
AHEAD_CHUNK = 64


@dataclass
class _Prefill:
    """What a prefill left: the last position's logits (None when a newer request stopped it
    between chunks), the cache, tokens computed and chunks run."""

    logits: Any
    cache: Any
    computed: int
    chunks: int

    @property
    def interrupted(self) -> bool:
        return self.logits is None


def missing_model_hint(model: str) -> str:
    if Path(model).expanduser().is_dir():
        return (
            f"Model folder '{model}' could not be loaded: it needs config.json, the weights "
            "(*.safetensors or pytorch_model*.bin) and tokenizer.json, as `save_pretrained` or "
            "`hf download` writes them."
        )
    return (
        f"Model '{model}' could not be loaded: it is neither a local folder nor in the Hugging Face "
        f"cache. Download it with `hf download {model}` (needs network; HF_HUB_OFFLINE must be unset) "
        "or set `model` to a local folder that holds config.json, the weights and tokenizer.json."
    )


class LocalEngine(Engine):
    """A causal LM loaded through ``AutoModelForCausalLM.from_pretrained``."""

    name = "local"
    needs_debounce = False  # a newer keystroke stops a generation within one token
    keeps_prompts = True  # the KV cache of each document's last prompts (kvcache.py)
    keeps_look_ahead = True  # and a look-ahead per document, beside them
    prefill_chunk = PREFILL_CHUNK
    prompt_lookup = True  # greedy single suggestions draft from the prompt (the benchmark compares it off)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.code_tokenizer: CodeTokenizer | None = None  # the prompt tokenizer, which also decodes
        self.model: Any = None
        self.device: Any = None
        self._lock = threading.Lock()  # one generation at a time
        self._cache_kw = "cache"
        self.kv = PrefixCache(settings.kv_cache_documents, settings.kv_cache_mb << 20)
        self.chunk_seconds: deque[float] = deque(maxlen=1024)  # the last full prefill chunks' times

    # -- loading -------------------------------------------------------------------------
    def load(self, progress: ProgressFn | None = None) -> None:
        report = progress or (lambda message, pct: None)
        s = self.settings
        self.state = EngineState.LOADING
        self.model_id = s.model
        try:
            report("Loading tokenizer", 5)
            try:
                self.tokenizer = self.code_tokenizer = CodeTokenizer.load(s.tokenizer or s.model)
            except TokenizerNotFound as exc:
                if isinstance(exc.__cause__, hub.HubUnreachable):  # says what to do already
                    raise EngineError(f"Model {exc.__cause__}", "load") from exc
                raise EngineError(missing_model_hint(s.model) + f" ({exc})", "load") from exc
            report("Loading model weights", 20)
            self.model, self.device = self._load_model()
            config = self.model.config
            self._context_length = getattr(config, "max_position_embeddings", None)
            report("Model ready", 100)
            self.state = EngineState.READY
            self.error = None
        except EngineError as exc:
            self.state, self.error = EngineState.FAILED, str(exc)
            raise
        except Exception as exc:  # any loader failure leaves the server answering
            self.state = EngineState.FAILED
            self.error = f"Loading model '{s.model}' failed: {type(exc).__name__}: {exc}"
            raise EngineError(self.error, "load") from exc

    def _load_model(self) -> tuple[Any, Any]:
        import torch
        from transformers import AutoModelForCausalLM

        s = self.settings
        device = resolve_device(s.device)
        dtype = resolve_dtype(s.dtype, device)
        kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": False}
        if s.quantization != "none":
            if device.type != "cuda":
                raise EngineError(
                    f"setting 'quantization' = {s.quantization!r} needs a CUDA GPU (bitsandbytes); "
                    f"this run uses {device.type}. Set quantization to none.",
                    "load",
                )
            from transformers import BitsAndBytesConfig

            if s.quantization == "8bit":
                kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
            else:
                kwargs["quantization_config"] = BitsAndBytesConfig(
                    load_in_4bit=True,
                    bnb_4bit_quant_type="nf4",
                    bnb_4bit_use_double_quant=True,
                    bnb_4bit_compute_dtype=dtype,
                )
        if device.type == "cuda":
            kwargs["device_map"] = "auto" if s.device in ("auto", "cuda") else {"": device.index or 0}
        local = Path(s.model).expanduser()
        source = str(local) if local.is_dir() else s.model
        if not local.is_dir():
            try:
                hub.check_download(s.model, "config.json")
            except hub.HubUnreachable as exc:
                raise EngineError(f"Model {exc}", "load") from exc
        try:
            model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
        except OSError as exc:
            raise EngineError(missing_model_hint(s.model) + f" ({exc})", "load") from exc
        if device.type != "cuda":
            model = model.to(device)
        model.eval()
        torch.set_grad_enabled(False)
        first = next(model.parameters()).device
        # transformers 5.x renamed ``past_key_values`` to ``cache`` in a minor release.
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        return model, first

    # -- generation ----------------------------------------------------------------------
    def generate(self, request: GenerationRequest) -> GenerationResult:
        if not self.ready or self.code_tokenizer is None:
            raise EngineError(self.error or "the model is not loaded", "not-ready")
        with self._lock:
            return self._generate(request)

    def warm(self, request: GenerationRequest, *, ahead: bool = False) -> int:
        """Compute the prompt into the document's KV cache (chunks, stopped by ``request.cancel``);
        ``ahead``: as its look-ahead, from a fork of what it shares with a kept prompt, and only when
        it is not there yet and fits beside the prompts in use."""
        if not self.ready or self.code_tokenizer is None:
            return 0
        import torch

        with self._lock:
            ids = list(request.prompt.ids)
            if ahead and (
                not self.kv.enabled
                or self.kv.holds(request.key, ids, AHEAD_SLACK)
                or not self.kv.room_for(request.key, len(ids))
            ):
                return 0
            try:
                with torch.inference_mode():
                    prefill = self._prefill(ids, request.key, request.cancel, ahead=ahead)
                if not prefill.interrupted:
                    self.kv.put(request.key, ids, prefill.cache, ahead=ahead)
            except torch.cuda.OutOfMemoryError:  # only a warm-up: the next request reports it
                self.kv.clear()
                torch.cuda.empty_cache()
                return 0
            return prefill.computed

    def _generate(self, req: GenerationRequest) -> GenerationResult:
        import torch

        tok = self.code_tokenizer
        assert tok is not None
        ids = list(req.prompt.ids)
        deadline = time.monotonic() + req.timeout_s if req.timeout_s else None
        started = time.perf_counter()
        drafts = [0, 0]  # prompt-lookup tokens proposed, accepted
        try:
            with torch.inference_mode():
                prefill = self._prefill(ids, req.key, req.cancel)
                if prefill.interrupted:  # a newer request wants the worker; the chunks done are kept
                    generated: list[list[int]] = [[] for _ in range(req.samples)]
                    reasons = ["cancelled"] * req.samples
                else:
                    cache = prefill.cache
                    if req.samples == 1 and req.temperature <= 0 and self.prompt_lookup:
                        generated, reasons = self._decode_lookup(req, ids, prefill.logits, cache, deadline, drafts)
                    else:
                        # Several samples decode on a copy of the prompt's cache; one decodes on the cache itself.
                        rows = expand(cache, req.samples) if req.samples > 1 else cache
                        generated, reasons = self._decode(req, prefill.logits, rows, deadline)
                    self.kv.put(req.key, ids, cache)  # cropped back to the prompt: generated tokens do not stay
        except torch.cuda.OutOfMemoryError as exc:
            self.kv.clear()
            torch.cuda.empty_cache()
            raise EngineError(
                "The GPU ran out of memory while generating; the suggestion was skipped. "
                "Lower maxPromptTokens or suggestions, or use quantization 8bit/4bit.",
                "oom",
            ) from exc
        texts = [tok.decode(tokens) for tokens in generated]
        record = self.record if req.counted else _same
        return record(
            GenerationResult(
                text=texts[0],
                new_tokens=sum(len(tokens) for tokens in generated),
                prefill_tokens=prefill.computed,
                prompt_tokens=len(ids),
                stop_reason=reasons[0],
                seconds=time.perf_counter() - started,
                texts=texts,
                stop_reasons=reasons,
                chunks=prefill.chunks,
                interrupted=prefill.interrupted,
                drafted=drafts[0],
                accepted=drafts[1],
            )
        )

    def _decode_lookup(
        self,
        req: GenerationRequest,
        ids: list[int],
        logits: Any,
        cache: Any,
        deadline: float | None,
        drafts: list[int],
    ) -> tuple[list[list[int]], list[str]]:
        """Greedy decoding of one row with prompt-lookup drafts; the same tokens as ``_decode``.

        Each step feeds the picked token and up to ``DRAFT_TOKENS`` drafted ones in one pass; a
        draft is kept while it is what greedy decoding picks from the logits before it, and each
        kept token goes through the same stop checks as in the plain loop. The cache is cropped
        back to the kept tokens. ``drafts`` receives [proposed, accepted].
        """
        import torch

        tok = self.code_tokenizer
        assert tok is not None
        stop_ids = {i for i in (tok.special.eot, tok.special.eos) if i is not None}
        [check] = req.stop_checks()  # one sample
        generated: list[int] = []
        seq = list(ids)  # the prompt and the answer so far: where drafts are looked up

        def take(token: int) -> str | None:
            """Add a picked token; the stop reason when decoding ends with it (None: go on)."""
            if token in stop_ids:
                return "eot" if token == tok.special.eot else "eos"
            generated.append(token)
            seq.append(token)
            if check is not None and check(tok.decode(generated)):
                return "early"
            if len(generated) >= req.max_new_tokens:
                return "length"
            return None

        if req.max_new_tokens <= 0:
            return [generated], ["length"]
        width = DRAFT_START
        while True:
            if req.cancel.is_set() or (deadline is not None and time.monotonic() > deadline):
                return [generated], ["cancelled" if req.cancel.is_set() else "timeout"]
            reason = take(int(torch.argmax(logits).item()))
            if reason is not None:
                return [generated], [reason]
            draft = lookup(seq, min(width, req.max_new_tokens - len(generated)))
            drafts[0] += len(draft)
            out = self.model(
                input_ids=torch.tensor([[generated[-1], *draft]], device=self.device),
                use_cache=True,
                **{self._cache_kw: cache},
            )
            step, cache = out.logits[0], out[self._cache_kw]
            if not draft:
                logits = step[-1]
                continue
            picks = torch.argmax(step[:-1], dim=-1).tolist()
            kept = 0
            for proposed, picked in zip(draft, picks, strict=True):
                if proposed != picked:
                    break
                kept += 1
                drafts[1] += 1
                reason = take(picked)
                if reason is not None:
                    return [generated], [reason]
            crop(cache, len(seq))  # drop the rejected drafts' positions
            logits = step[kept]
            width = next_draft_width(width, len(draft), kept)

    def _decode(
        self, req: GenerationRequest, logits: Any, cache: Any, deadline: float | None
    ) -> tuple[list[list[int]], list[str]]:
        """Decode ``req.samples`` rows together from the prompt's last logits.

        Row 0 decodes as a single request would (greedy at temperature 0), the others sample
        (``GenerationRequest.sampling``). Each row ends on its own (EOT/EOS, its own early-stop
        check, ``max_new_tokens``) and leaves the batch, so finished rows cost nothing more.
        The cancel flag and the deadline are checked before every step, for all rows at once.
        """
        import torch

        tok = self.code_tokenizer
        assert tok is not None
        stop_ids = {i for i in (tok.special.eot, tok.special.eos) if i is not None}
        n = req.samples
        checks = req.stop_checks()
        sampling = [req.sampling(row) for row in range(n)]
        generated: list[list[int]] = [[] for _ in range(n)]
        reasons = ["length"] * n
        live = list(range(n))  # the rows still decoding, in the order of the batch
        logits = logits.unsqueeze(0).expand(n, -1)
        for _ in range(req.max_new_tokens):
            if req.cancel.is_set() or (deadline is not None and time.monotonic() > deadline):
                for row in live:
                    reasons[row] = "cancelled" if req.cancel.is_set() else "timeout"
                break
            keep: list[int] = []  # positions in the batch of the rows that go on
            for position, row in enumerate(live):
                token = _pick(logits[position], *sampling[row])
                if token in stop_ids:
                    reasons[row] = "eot" if token == tok.special.eot else "eos"
                    continue
                generated[row].append(token)
                check = checks[row]
                if check is not None and check(tok.decode(generated[row])):
                    reasons[row] = "early"
                    continue
                if len(generated[row]) >= req.max_new_tokens:
                    continue
                keep.append(position)
            if not keep:
                break
            if len(keep) < len(live):
                cache.batch_select_indices(torch.tensor(keep, device=self.device))
            live = [live[position] for position in keep]
            out = self.model(
                input_ids=torch.tensor([[generated[row][-1]] for row in live], device=self.device),
                use_cache=True,
                **{self._cache_kw: cache},
            )
            logits, cache = out.logits[:, -1], out[self._cache_kw]
        return generated, reasons

    def _prefill(
        self, ids: list[int], key: str, stop: threading.Event | None = None, *, ahead: bool = False
    ) -> _Prefill:
        """Run the prompt through the model, reusing the document's cached prefix.

        The rest is computed ``prefill_chunk`` tokens at a time; when ``stop`` is set between
        chunks, the prompt's computed part goes back to the KV cache (the next prompt at this
        place starts from it) and the result has no logits. ``ahead``: a look-ahead, which
        starts from a fork and leaves the entry it shares a prefix with as it was.
        """
        import torch

        s = self.settings
        self.kv.max_documents, self.kv.max_bytes = s.kv_cache_documents, s.kv_cache_mb << 20
        if not self.kv.enabled:
            self.kv.clear()
        cache, keep = (self.kv.fork if ahead else self.kv.take)(key, ids) if self.kv.enabled else (None, 0)
        size = max(1, min(self.prefill_chunk, AHEAD_CHUNK) if ahead else self.prefill_chunk)
        done, chunks, logits = keep, 0, None
        while done < len(ids):
            if stop is not None and stop.is_set():
                if cache is not None:
                    self.kv.put(key, ids[:done], cache, ahead=ahead)
                return _Prefill(None, cache, done - keep, chunks)
            end = min(done + size, len(ids))
            past = {self._cache_kw: cache} if cache is not None else {}
            started = time.perf_counter()
            out = self.model(
                input_ids=torch.tensor([ids[done:end]], device=self.device), use_cache=True, logits_to_keep=1, **past
            )
            if end - done == self.prefill_chunk:  # a full chunk: the longest a newer request waits
                self.chunk_seconds.append(time.perf_counter() - started)
            logits, cache, done, chunks = out.logits[0, -1], out[self._cache_kw], end, chunks + 1
        return _Prefill(logits, cache, done - keep, chunks)

    def status(self) -> dict[str, Any]:
        chunks = sorted(self.chunk_seconds)
        timing: dict[str, float] = {"count": len(chunks), "size": self.prefill_chunk}
        if chunks:
            timing |= {"msP50": round(chunks[len(chunks) // 2] * 1000, 1), "msMax": round(chunks[-1] * 1000, 1)}
        return {**super().status(), "kvCache": self.kv.status(), "prefillChunks": timing}

    def close(self) -> None:
        self.model = None
        self.kv.clear()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception:  # pragma: no cover - best effort
            pass


def _same(result: GenerationResult) -> GenerationResult:
    return result


def next_draft_width(width: int, proposed: int, kept: int) -> int:
    """Draft as far as drafts are being accepted: a rejected draft costs a wider pass for nothing."""
    return min(DRAFT_TOKENS, width * 2) if kept == proposed else max(1, kept)


def lookup(seq: list[int], limit: int) -> list[int]:
    """Up to ``limit`` tokens that followed the latest earlier occurrence of the longest suffix
    n-gram of ``seq`` (``LOOKUP_NGRAM`` tokens down to ``LOOKUP_MIN_NGRAM``) within the last
    ``LOOKUP_WINDOW``."""
    if limit <= 0:
        return []
    start = max(0, len(seq) - LOOKUP_WINDOW)
    for n in range(min(LOOKUP_NGRAM, len(seq) - 1), LOOKUP_MIN_NGRAM - 1, -1):
        tail = seq[-n:]
        first = tail[0]
        for i in range(len(seq) - n - 1, start - 1, -1):
            if seq[i] == first and seq[i : i + n] == tail:
                return seq[i + n : i + n + limit]
    return []


def _pick(logits: Any, temperature: float, top_p: float) -> int:
    """Greedy at temperature 0, else nucleus sampling."""
    import torch

    if temperature <= 0:
        return int(torch.argmax(logits).item())
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(sorted_probs, dim=-1) - sorted_probs < top_p
        sorted_probs = sorted_probs * keep
        probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
    return int(torch.multinomial(probs / probs.sum(), 1).item())


def resolve_device(name: str) -> Any:
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", 0)
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EngineError(f"setting 'device' = {name!r}: no CUDA GPU is available", "load")
    return device


def resolve_dtype(name: str, device: Any) -> Any:
    import torch

    if name != "auto":
        return getattr(torch, name)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32
