"""A scripted TGI / OpenAI-compatible / Ollama server for the remote-engine tests.

Speaks the routes of ``../shared/specs/tgi-openapi.json`` that the engines use (``/info``,
``/generate``, ``/generate_stream``, ``/tokenize``), the OpenAI ``/v1/models`` and
``/v1/completions`` stream, and Ollama's ``/api/tags``, ``/api/show`` and ``/api/generate``
(newline-delimited JSON), on 127.0.0.1 with a random port. Tests queue answers per route
(errors, slow or dropped streams) and read back what the client sent and whether it hung
up before the stream was over.

The Ollama routes follow Ollama's API documentation (docs/api.md), errors included: an
unknown model is HTTP 404 ``{"error": "model 'x' not found"}``, a prompt that is not a string
(an array of token ids) is HTTP 400, an error during generation is an ``{"error": ...}`` line
in the stream, and a prompt longer than ``options.num_ctx`` (default 2048) loses its start
(recorded in ``FakeServer.truncated``, as Ollama only logs it).
"""

from __future__ import annotations

import functools
import json
import select
import socket
import ssl
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tokenizers import Tokenizer

from codellama_ls.config import Settings
from codellama_ls.engines import create_engine
from codellama_ls.engines.remote import RemoteEngine
from codellama_ls.prompt.fim import Prompt, build_prompt
from codellama_ls.prompt.tokens import CodeTokenizer


@dataclass
class Reply:
    """An answer with a status and a JSON body (errors, /info, /generate)."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering


@dataclass
class Stream:
    """A server-sent-event answer: one event per token, then (TGI) a final event with details.

    ``tokens`` are (id, text) pairs; ``finish`` is TGI's finish_reason or OpenAI's. With
    ``drop_after`` the connection is cut after that many events (an incomplete chunked body);
    with ``final=False`` the stream ends cleanly but without its final event.
    """

    tokens: list[tuple[int, str]]
    finish: str = "length"
    delay: float = 0.0
    first_delay: float = 0.0
    drop_after: int | None = None
    final: bool = True
    error_event: dict[str, Any] | None = None  # sent after the tokens instead of the final event
    # OpenAI ``n``: the tokens of each choice; their events interleave, one token of each in turn.
    choices: list[list[tuple[int, str]]] | None = None
    prompt_eval_count: int | None = None  # Ollama: prompt tokens evaluated (default: all of the prompt)


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    peer: tuple[str, int] = ("", 0)  # the client's address: the same one for a reused connection


@dataclass
class StreamLog:
    path: str
    total: int
    sent: int = 0
    disconnected: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class FakeServer:
    def __init__(
        self,
        tokenizer_dir: Path | None = None,
        *,
        model_id: str = "/nonexistent/codellama-13b",
        max_input: int = 4096,
        max_total: int = 4352,
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.model_id = model_id
        self.max_input = max_input
        self.max_total = max_total
        self.tokenizer = _server_tokenizer(str(tokenizer_dir / "tokenizer.json")) if tokenizer_dir else None
        self.replies: dict[str, deque[Reply | Stream]] = defaultdict(deque)
        self.defaults: dict[str, Reply | Stream] = {}
        # Answers chosen by the request body (parallel requests arrive in any order), before the queue.
        self.responders: dict[str, Callable[[Any], Reply | Stream | None]] = {}
        self.seen: list[Seen] = []
        self.streams: list[StreamLog] = []
        self.stream_started = threading.Event()  # set when a stream's headers went out
        # Ollama: the models pulled (name -> context length), a Modelfile's parameters, and the
        # prompt lengths Ollama would have cut to fit num_ctx.
        self.ollama_models: dict[str, int] = {"codellama:7b-code": 16384, "codellama:7b-instruct": 16384}
        self.ollama_parameters = 'stop "<EOT>"'
        self.truncated: list[int] = []
        self.load_delay = 0.0  # seconds Ollama takes to load the model
        self.request_seen = threading.Event()  # set at every request
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._httpd.daemon_threads = True
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        scheme = "https" if isinstance(self._httpd.socket, ssl.SSLSocket) else "http"
        host = "localhost" if scheme == "https" else "127.0.0.1"
        return f"{scheme}://{host}:{self._httpd.server_address[1]}"

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- scripting -------------------------------------------------------------------------
    def queue(self, path: str, *replies: Reply | Stream) -> None:
        self.replies[path].extend(replies)

    def seen_on(self, path: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path == path]

    def next_reply(self, path: str, body: Any = None) -> Reply | Stream | None:
        responder = self.responders.get(path)
        if responder is not None and (chosen := responder(body)) is not None:
            return chosen
        with self._lock:
            if self.replies[path]:
                return self.replies[path].popleft()
        return self.defaults.get(path)

    def info(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "model_sha": None,
            "model_pipeline_tag": "text-generation",
            "max_concurrent_requests": 128,
            "max_best_of": 2,
            "max_stop_sequences": 4,
            "max_input_tokens": self.max_input,
            "max_total_tokens": self.max_total,
            "validation_workers": 2,
            "max_client_batch_size": 4,
            "router": "text-generation-router",
            "version": "3.3.0",
            "sha": None,
            "docker_label": None,
        }

    # -- Ollama ----------------------------------------------------------------------------
    def ollama_tags(self) -> Reply:
        models = [
            {
                "name": name,
                "model": name,
                "modified_at": "2026-01-05T10:00:00.000000Z",
                "size": 3825910662,
                "digest": "8fdf8f752f6e" + "0" * 52,
                "details": {"format": "gguf", "family": "llama", "parameter_size": "7B", "quantization_level": "Q4_0"},
            }
            for name in self.ollama_models
        ]
        return Reply(body={"models": models})

    def ollama_show(self, body: Any) -> Reply:
        name = body.get("model") or body.get("name") if isinstance(body, dict) else None
        if name not in self.ollama_models:
            return Reply(404, {"error": f"model '{name}' not found"})
        return Reply(
            body={
                "modelfile": f"FROM /root/.ollama/models/blobs/sha256-x\nPARAMETER {self.ollama_parameters}",
                "parameters": self.ollama_parameters,
                "template": "{{ .Prompt }}",
                "details": {"format": "gguf", "family": "llama", "parameter_size": "7B", "quantization_level": "Q4_0"},
                "model_info": {
                    "general.architecture": "llama",
                    "general.parameter_count": 6738546688,
                    "llama.context_length": self.ollama_models[name],
                    "llama.embedding_length": 4096,
                    "tokenizer.ggml.model": "llama",
                },
                "capabilities": ["completion", "insert"],
            }
        )

    def generations(self) -> list[Seen]:
        """The ``/api/generate`` requests that generate (not those that only load the model)."""
        return [s for s in self.seen_on("/api/generate") if isinstance(s.body, dict) and s.body.get("prompt")]

    def ollama_generate(self, body: Any) -> Reply | None:
        """What Ollama answers before generating (a refusal; the model loaded, for an empty
        prompt); None: it generates."""
        if not isinstance(body, dict) or not isinstance(body.get("prompt", ""), str):
            kind = type(body.get("prompt")).__name__ if isinstance(body, dict) else "body"
            go = {"list": "array", "int": "number", "dict": "object"}.get(kind, kind)
            error = f"json: cannot unmarshal {go} into Go struct field GenerateRequest.prompt of type string"
            return Reply(400, {"error": error})
        if body.get("model") not in self.ollama_models:
            return Reply(404, {"error": f"model '{body.get('model')}' not found"})
        if not body.get("prompt"):
            stamp = "2026-01-05T10:00:00.000000Z"
            loaded = {"model": body["model"], "created_at": stamp, "response": "", "done": True, "done_reason": "load"}
            return Reply(body=loaded, delay=self.load_delay)
        options = body.get("options") or {}
        num_ctx = int(options.get("num_ctx") or 2048)
        prompt_tokens = len(self.token_ids(body["prompt"])) if self.tokenizer is not None else len(body["prompt"]) // 3
        if prompt_tokens + int(options.get("num_predict") or 128) > num_ctx:
            self.truncated.append(prompt_tokens)  # Ollama keeps the end of the prompt and logs a warning
        return None

    def token_ids(self, text: str) -> list[int]:
        """The ids the server's tokenizer makes of ``text`` (BOS included)."""
        assert self.tokenizer is not None, "FakeServer needs tokenizer_dir"
        return list(self.tokenizer.encode(text, add_special_tokens=True).ids)

    def tokenize(self, text: str) -> Reply:
        """TGI's /tokenize: offsets in bytes of the UTF-8 input (its router slices the input by
        bytes); without a fast tokenizer, 404 ``No fast tokenizer available``."""
        if self.tokenizer is None:
            return Reply(404, {"error": "No fast tokenizer available", "error_type": "tokenizer"})
        enc = self.tokenizer.encode(text, add_special_tokens=True)
        data = text.encode("utf-8")
        byte_at = [len(text[:i].encode("utf-8")) for i in range(len(text) + 1)]
        out = []
        for token_id, (start, stop) in zip(enc.ids, enc.offsets, strict=True):
            b_start, b_stop = byte_at[start], byte_at[stop]
            piece = data[b_start:b_stop].decode("utf-8", "replace")
            out.append({"id": token_id, "text": piece, "start": b_start, "stop": b_stop})
        return Reply(body=out)


@functools.lru_cache(maxsize=2)
def _server_tokenizer(path: str) -> Tokenizer:
    """The tokenizer as TGI loads it (BOS added, added tokens matched)."""
    return Tokenizer.from_file(path)


def tgi_events(stream: Stream) -> list[dict[str, Any]]:
    """StreamResponse records as TGI sends them (``details`` only in the last one)."""
    events = []
    text = ""
    for index, (token_id, token_text) in enumerate(stream.tokens):
        text += token_text
        last = index == len(stream.tokens) - 1 and stream.final and stream.error_event is None
        events.append(
            {
                "index": index + 1,
                "token": {"id": token_id, "text": token_text, "logprob": -0.5, "special": False},
                "top_tokens": None,
                "generated_text": text if last else None,
                "details": {
                    "finish_reason": stream.finish,
                    "generated_tokens": index + 1,
                    "input_length": 10,
                    "seed": None,
                }
                if last
                else None,
            }
        )
    if stream.error_event is not None:
        events.append(stream.error_event)
    return events


def ollama_events(stream: Stream, model: str, prompt_tokens: int) -> list[Any]:
    """``/api/generate`` chunks: one per token, then ``done: true`` with the counts and durations."""
    stamp = "2026-01-05T10:00:00.000000Z"
    events: list[Any] = [
        {"model": model, "created_at": stamp, "response": text, "done": False} for _, text in stream.tokens
    ]
    if stream.error_event is not None:
        events.append(stream.error_event)
    elif stream.final:
        events.append(
            {
                "model": model,
                "created_at": stamp,
                "response": "",
                "done": True,
                "done_reason": stream.finish,
                "total_duration": 5_043_500_667,
                "load_duration": 5_025_959,
                "prompt_eval_count": prompt_tokens if stream.prompt_eval_count is None else stream.prompt_eval_count,
                "prompt_eval_duration": 325_953_000,
                "eval_count": len(stream.tokens),
                "eval_duration": 4_709_213_000,
            }
        )
    return events


def openai_events(stream: Stream, model: str) -> list[Any]:
    events: list[Any] = []
    choices = stream.choices or [stream.tokens]
    for step in range(max(len(c) for c in choices)):
        for choice, choice_tokens in enumerate(choices):
            if step >= len(choice_tokens):
                continue
            last = step == len(choice_tokens) - 1 and stream.final
            finish = stream.finish if last else None
            text = choice_tokens[step][1]
            events.append(
                {
                    "id": "cmpl-1",
                    "object": "text_completion",
                    "created": 0,
                    "model": model,
                    "system_fingerprint": "fake",
                    "choices": [{"index": choice, "text": text, "logprobs": None, "finish_reason": finish}],
                }
            )
    if stream.error_event is not None:
        events.append(stream.error_event)
    if stream.final:
        events.append("[DONE]")
    return events


def _handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

        def _record(self, body: Any) -> None:
            with server._lock:
                server.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body, self.client_address))
            server.request_seen.set()

        def do_GET(self) -> None:
            self._record(None)
            reply = server.next_reply(self.path)
            if reply is None:
                if self.path == "/api/tags":
                    reply = server.ollama_tags()
                elif self.path == "/info":
                    reply = Reply(body=server.info())
                elif self.path == "/v1/models":
                    reply = Reply(
                        body={"object": "list", "data": [{"id": server.model_id, "object": "model", "owned_by": "me"}]}
                    )
                else:
                    reply = Reply(404, {"error": "not found"})
            self._answer(reply)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"null")
            self._record(body)
            # Ollama validates a generation before anything else.
            reply = server.ollama_generate(body) if self.path == "/api/generate" else None
            if reply is None:
                reply = server.next_reply(self.path, body)
            if reply is None and self.path == "/tokenize":
                reply = server.tokenize(body["inputs"])
            if reply is None and self.path == "/api/show":
                reply = server.ollama_show(body)
            if reply is None and self.path == "/generate":
                reply = Reply(body={"generated_text": "", "details": None})
            if reply is None:
                reply = Reply(404, {"error": "no reply scripted", "error_type": "test"})
            self._answer(reply, body)

        def _answer(self, reply: Reply | Stream, body: Any = None) -> None:
            if isinstance(reply, Stream):
                self._stream(reply, body)
                return
            time.sleep(reply.delay)
            data = json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, stream: Stream, body: Any) -> None:
            lines = self.path == "/api/generate"  # Ollama: newline-delimited JSON
            if self.path == "/v1/completions":
                events = openai_events(stream, server.model_id)
            elif lines:
                prompt = body.get("prompt", "")
                count = len(server.token_ids(prompt)) if server.tokenizer is not None else len(prompt) // 3
                events = ollama_events(stream, str(body.get("model")), count)
            else:
                events = tgi_events(stream)
            log = StreamLog(self.path, len(events))
            with server._lock:
                server.streams.append(log)
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson" if lines else "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.flush()
                server.stream_started.set()
                self._pause(stream.first_delay)
                for index, event in enumerate(events):
                    if stream.drop_after is not None and index >= stream.drop_after:
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    if index:
                        self._pause(stream.delay)
                    payload = event if isinstance(event, str) else json.dumps(event)
                    self._chunk(f"{payload}\n".encode() if lines else f"data: {payload}\n\n".encode())
                    log.sent += 1
                self._chunk(b"")
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                log.disconnected = True
                self.close_connection = True
            finally:
                log.done.set()

        def _pause(self, seconds: float) -> None:
            """Wait, watching the connection: a client that hangs up is noticed at once."""
            end = time.monotonic() + seconds
            while (left := end - time.monotonic()) > 0:
                readable, _, _ = select.select([self.connection], [], [], min(left, 0.02))
                if not readable:
                    continue
                try:
                    data = self.connection.recv(1, socket.MSG_PEEK)
                except ValueError:  # TLS sockets cannot peek: just wait
                    time.sleep(left)
                    return
                except OSError:
                    data = b""
                if not data:
                    raise BrokenPipeError("the client hung up")
                time.sleep(min(left, 0.02))

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

    return Handler


# -- helpers for the remote-engine tests ---------------------------------------------------------
def engine_for(server: FakeServer | str, tokenizer_dir: Path | None = None, **changes: Any) -> RemoteEngine:
    url = server if isinstance(server, str) else server.url
    values: dict[str, Any] = {"engine": "tgi", "url": url, "maxRetries": 2, **changes}
    if tokenizer_dir is not None:
        values["tokenizer"] = str(tokenizer_dir)
    settings, errors = Settings().updated(values)
    assert not errors
    engine = create_engine(settings)
    assert isinstance(engine, RemoteEngine)
    engine.load()
    return engine


def tokens(*texts: str, start: int = 500) -> list[tuple[int, str]]:
    return [(start + i, t) for i, t in enumerate(texts)]


_loaded: dict[str, CodeTokenizer] = {}
_load = CodeTokenizer.load


@pytest.fixture(autouse=True)
def reuse_tokenizers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading tokenizer.json takes seconds on a busy machine: load each one once per session."""

    def load(name_or_path: str, revision: str | None = None, *, cache_only: bool = False) -> CodeTokenizer:
        if name_or_path not in _loaded:
            _loaded[name_or_path] = _load(name_or_path, revision, cache_only=cache_only)
        return _loaded[name_or_path]

    monkeypatch.setattr(CodeTokenizer, "load", staticmethod(load))


def spm(engine: RemoteEngine, prefix: str = "def add(a, b):\n    return ", suffix: str = "\n") -> Prompt:
    """A suffix-first prompt built with the engine's own tokenizer (the remote engines' tests' usual prompt)."""
    assert engine.tokenizer is not None
    return build_prompt(engine.tokenizer, prefix, suffix, fmt="spm")
