"""HTTP for the remote engines: one client, bounded retries, streams that can be cut at once.

huggingface_hub's ``InferenceClient`` speaks TGI's API, but it sends through the hub's
process-wide session: that session refuses every request while ``HF_HUB_OFFLINE`` is set
(so a team server on the LAN would be unreachable from an offline laptop), has one
timeout for connect and read, and cannot take a CA bundle without changing the hub
downloads of the whole process. So the engines use the HTTP library huggingface_hub is
built on (httpx2) directly, with its server-sent-events reader, and the hub's typed TGI
stream records for parsing.

Failures become :class:`EngineError` with a ``kind`` (``connect``, ``timeout``, ``auth``,
``overloaded``, ...) so the user sees one message per kind. Messages name the server by
its URL without credentials and never include request headers or the token.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import queue
import random
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx2

from codellama_ls import __version__
from codellama_ls.config import Settings
from codellama_ls.engines.base import Cancelled, EngineError

log = logging.getLogger(__name__)

RETRY_STATUS = (429, 503)  # the server is busy or starting: worth another try
_MAX_BACKOFF_S = 8.0
_POLL_S = 0.02  # how often a waiting stream looks at the cancel flag
_END = object()


class Deadline(Exception):
    """The generation ran past its time budget (``GenerationRequest.timeout_s``)."""


class ContextOverflow(EngineError):
    """The server refused a prompt as longer than its context: worth fitting and retrying, unlike
    a refusal of the prompt's form (kind ``validation``). ``n_ctx``: the limit it named, if any."""

    def __init__(self, message: str, n_ctx: int | None) -> None:
        super().__init__(message, "context")
        self.n_ctx = n_ctx


# How servers say "prompt too long", with the limit they name: llama.cpp ("exceeds the available
# context size (512 tokens)", "larger than the max context size (512 tokens)"), vLLM ("maximum
# context length is 4096 tokens"), TGI ("`inputs` tokens + `max_new_tokens` must be <= 4096").
_OVERFLOW = re.compile(
    r"context size \((\d+) tokens\)|maximum context length is (\d+)|max_new_tokens` must be <= (\d+)"
)


def context_overflow(text: str) -> tuple[bool, int | None]:
    """Whether an error body says the prompt is too long, and the context size it names."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and error.get("type") == "exceed_context_size_error":  # llama.cpp
        n_ctx = error.get("n_ctx")
        return True, n_ctx if isinstance(n_ctx, int) and n_ctx > 0 else None
    found = _OVERFLOW.search(text)
    if found is None:
        return False, None
    return True, int(next(g for g in found.groups() if g))


def public_url(url: str) -> str:
    """The URL without user info, query or fragment: safe to show and log."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def base_url(url: str, suffixes: tuple[str, ...]) -> str:
    """The server root, also when the user pasted the URL of one of its routes."""
    text = url.strip().rstrip("/")
    for suffix in suffixes:
        if text.endswith(suffix):
            return text[: -len(suffix)].rstrip("/")
    return text


def check_url(url: str | None, engine: str) -> str:
    """Validate the ``url`` setting for a remote engine (raises EngineError kind ``load``)."""
    if not url:
        raise EngineError(
            f"codellama-ls: engine '{engine}' needs the setting 'url' (for example http://localhost:8080).", "load"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = public_url(url)
        raise EngineError(f"codellama-ls: setting 'url' = {shown!r} must be an http:// or https:// URL.", "load")
    return url


class Http:
    """A keep-alive client for one server, configured from the settings at each request."""

    def __init__(self, settings: Settings, url: str, label: str) -> None:
        self.settings = settings
        parts = urlsplit(url.rstrip("/"))
        # Credentials in the URL travel as basic auth, never inside URLs that get logged.
        self._basic = (parts.username or "", parts.password or "") if parts.username else None
        self.url = public_url(url.rstrip("/")) + (f"?{parts.query}" if parts.query else "")
        self.label = label  # "TGI", "OpenAI-compatible server"
        self.shown = public_url(self.url)
        self._client: httpx2.Client | None = None
        self._client_ca: str | None = None
        self._lock = threading.Lock()

    # -- configuration ---------------------------------------------------------------------
    def client(self) -> httpx2.Client:
        with self._lock:
            ca = self.settings.ca_bundle
            if self._client is None or ca != self._client_ca:
                if self._client is not None:
                    self._client.close()
                self._client = httpx2.Client(
                    verify=_ssl_context(ca),
                    follow_redirects=False,  # a redirect must not carry the token to another host
                    headers={"User-Agent": f"codellama-ls/{__version__}"},
                )
                self._client_ca = ca
            return self._client

    def timeout(self, read_s: float | None = None) -> httpx2.Timeout:
        """The settings' timeouts; ``read_s`` replaces the read timeout (a request known to be slow)."""
        s = self.settings
        connect, read = s.connect_timeout_ms / 1000, read_s or s.read_timeout_ms / 1000
        return httpx2.Timeout(read, connect=connect, pool=connect)

    def headers(self) -> dict[str, str]:
        token = self.settings.token
        if token:
            return {"Authorization": f"Bearer {token}"}
        if self._basic is not None:
            pair = ":".join(unquote(part) for part in self._basic)
            return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
        return {}

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- requests --------------------------------------------------------------------------
    def json(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        cancel: threading.Event | None = None,
        retries: int | None = None,
        read_s: float | None = None,
    ) -> Any:
        """A small JSON request (``/info``, ``/tokenize``)."""
        response = self.send(method, path, body, cancel=cancel, retries=retries, read_s=read_s)
        try:
            data = response.read()
        except httpx2.HTTPError as exc:
            raise self.transport_error(exc, path) from exc
        finally:
            response.close()
        try:
            return json.loads(data)
        except ValueError as exc:
            raise EngineError(
                f"codellama-ls: {self.label} at {self.shown} answered {path} with something that is not JSON; "
                "is the setting 'engine' right for this server?",
                "protocol",
            ) from exc

    def stream(
        self, path: str, body: Any, *, cancel: threading.Event, deadline: float | None = None, lines: bool = False
    ) -> EventStream:
        """POST ``body`` and read the answer as server-sent events, or with ``lines`` as
        newline-delimited JSON (Ollama), each line then being one event's ``data``."""
        response = self.send("POST", path, body, cancel=cancel, sse=not lines)
        return EventStream(self, path, response, cancel, deadline, lines=lines)

    def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        cancel: threading.Event | None = None,
        retries: int | None = None,
        sse: bool = False,
        read_s: float | None = None,
    ) -> httpx2.Response:
        """Send with retries of 429/503 while the request is still wanted; raise EngineError otherwise."""
        limit = self.settings.max_retries if retries is None else retries
        headers = self.headers()
        if sse:
            headers |= {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        attempt = 0
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            client = self.client()
            request = client.build_request(
                method, self.url + path, json=body, headers=headers, timeout=self.timeout(read_s)
            )
            log.debug("%s %s%s (attempt %d)", method, self.shown, path, attempt + 1)
            try:
                response = client.send(request, stream=True)
            except httpx2.HTTPError as exc:
                raise self.transport_error(exc, path) from exc
            status = response.status_code
            if status < 400:
                return response
            try:
                text = response.read().decode("utf-8", "replace")
            except httpx2.HTTPError:
                text = ""
            finally:
                response.close()
            if cancel is not None and cancel.is_set():
                raise Cancelled()  # nobody waits for this answer any more: no retry, no message
            if status in RETRY_STATUS and attempt < limit:
                delay = backoff(attempt, response.headers.get("retry-after"))
                log.info(
                    "%s at %s answered HTTP %d; retry %d of %d in %.2fs",
                    self.label,
                    self.shown,
                    status,
                    attempt + 1,
                    limit,
                    delay,
                )
                if cancel is not None:
                    if cancel.wait(delay):
                        raise Cancelled()
                else:
                    time.sleep(delay)
                attempt += 1
                continue
            raise self.status_error(status, path, text, attempts=attempt + 1)

    # -- errors ----------------------------------------------------------------------------
    def transport_error(self, exc: Exception, path: str) -> EngineError:
        where = f"{self.label} at {self.shown}"
        if isinstance(exc, httpx2.ConnectTimeout):
            return EngineError(
                f"codellama-ls: cannot reach {where}: no answer within connectTimeoutMs="
                f"{self.settings.connect_timeout_ms}. Suggestions resume when it is back.",
                "connect",
            )
        if isinstance(exc, httpx2.ConnectError):
            reason = _reason(exc)
            if "CERTIFICATE" in reason.upper() or isinstance(exc.__context__, ssl.SSLError):
                return EngineError(
                    f"codellama-ls: TLS verification of {where} failed ({reason}). "
                    "Set 'caBundle' to the CA certificates of that server.",
                    "tls",
                )
            return EngineError(
                f"codellama-ls: cannot reach {where} ({reason}). Suggestions resume when it is back.", "connect"
            )
        if isinstance(exc, httpx2.TimeoutException):
            return EngineError(
                f"codellama-ls: {where} sent nothing for readTimeoutMs={self.settings.read_timeout_ms} "
                f"({path}); the suggestion was skipped.",
                "timeout",
            )
        return EngineError(
            f"codellama-ls: the connection to {where} failed during {path} ({type(exc).__name__}: {_reason(exc)}).",
            "stream",
        )

    def status_error(self, status: int, path: str, text: str, *, attempts: int = 1) -> EngineError:
        where = f"{self.label} at {self.shown}"
        detail = self.scrub(server_message(text))
        said = f": {detail}" if detail else ""
        if status in (401, 403):
            return EngineError(
                f"codellama-ls: {where} refused the request (HTTP {status}{said}). "
                "Check the setting 'apiToken' or the HF_TOKEN variable.",
                "auth",
            )
        if status == 404:
            return EngineError(
                f"codellama-ls: {where} has no {path} (HTTP 404{said}). Is the setting 'engine' right for this "
                "server? 'tgi' needs text-generation-inference or an Inference Endpoint, 'openai' an "
                "OpenAI-compatible /v1/completions.",
                "not-found",
            )
        if status in RETRY_STATUS:
            tries = f" after {attempts} attempts" if attempts > 1 else ""
            return EngineError(
                f"codellama-ls: {where} is busy (HTTP {status}{tries}{said}); suggestions are skipped until it "
                "has room.",
                "overloaded",
            )
        if status in (400, 413, 422):
            overflow, n_ctx = context_overflow(text)
            if overflow:
                return ContextOverflow(
                    f"codellama-ls: {where} found the prompt longer than its context (HTTP {status}{said}).", n_ctx
                )
            return EngineError(f"codellama-ls: {where} rejected the request (HTTP {status}{said}).", "validation")
        return EngineError(f"codellama-ls: {where} failed (HTTP {status}{said}).", "server")

    def scrub(self, text: str) -> str:
        """Remove the token from server-provided text (some proxies echo headers back)."""
        token = self.settings.token
        return text.replace(token, "<hidden>") if token else text


class EventStream:
    """Server-sent events (or JSON lines), read by a helper thread so that the caller can stop waiting at once.

    ``close()`` shuts the socket down: the blocked read ends, and the server sees the
    disconnect right away (TGI then stops generating for this request).
    """

    def __init__(
        self,
        http: Http,
        path: str,
        response: httpx2.Response,
        cancel: threading.Event,
        deadline: float | None,
        *,
        lines: bool = False,
    ) -> None:
        self.http = http
        self.lines = lines
        self.path = path
        self.response = response
        self.cancel = cancel
        self.deadline = deadline
        self._queue: queue.Queue[Any] = queue.Queue()
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._done = False
        self._reader = threading.Thread(target=self._read, name="codellama-sse", daemon=True)
        self._reader.start()

    def _events(self) -> Iterator[httpx2.ServerSentEvent]:
        if not self.lines:
            yield from httpx2.EventSource(self.response)
            return
        for line in self.response.iter_lines():
            if line.strip():
                yield httpx2.ServerSentEvent(data=line)

    def _read(self) -> None:
        try:
            for event in self._events():
                self._queue.put(event)
                if self._closing.is_set():
                    break
            self._queue.put(_END)
        except Exception as exc:  # surfaced to the consumer, unless we cut the stream ourselves
            self._queue.put(exc)
        finally:
            with self._lock:
                self._done = True
                self.response.close()

    def __iter__(self) -> Iterator[httpx2.ServerSentEvent]:
        while True:
            if self.cancel.is_set():
                raise Cancelled()
            if self.deadline is not None and time.monotonic() > self.deadline:
                raise Deadline()
            try:
                item = self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if item is _END:
                return
            if isinstance(item, httpx2.SSEError):
                raise EngineError(
                    f"codellama-ls: {self.http.label} at {self.http.shown} answered {self.path} without an event "
                    f"stream ({item}); is the setting 'engine' right for this server?",
                    "protocol",
                )
            if isinstance(item, Exception):
                raise self.http.transport_error(item, self.path)
            yield item

    def drain(self, wait_s: float = 0.5) -> None:
        """After the last event: let the reader finish the body, so the connection is kept for reuse."""
        end = time.monotonic() + wait_s
        while (left := end - time.monotonic()) > 0:
            try:
                item = self._queue.get(timeout=left)
            except queue.Empty:
                return
            if item is _END or isinstance(item, Exception):
                self._reader.join(left)
                return

    def close(self) -> None:
        """Cut the connection now (idempotent)."""
        with self._lock:
            if self._closing.is_set() or self._done:
                return  # a finished stream's connection went back to the pool: leave it alone
            self._closing.set()
            stream = self.response.extensions.get("network_stream")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is None:  # pragma: no cover - transports without a socket
                return
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def backoff(attempt: int, retry_after: str | None = None) -> float:
    """Exponential backoff with jitter; a server's Retry-After (seconds) wins, within limits."""
    if retry_after:
        try:
            return min(max(float(retry_after), 0.0), _MAX_BACKOFF_S)
        except ValueError:
            pass
    return min(0.25 * 2.0**attempt, _MAX_BACKOFF_S) * random.uniform(0.75, 1.0)


def server_message(text: str, limit: int = 300) -> str:
    """The error text of a TGI / OpenAI / vLLM error body, short."""
    text = text.strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data.get("message")))
        if isinstance(error, dict):
            error = error.get("message", error)
        if error is not None:
            text = error if isinstance(error, str) else json.dumps(error)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:200]


def _ssl_context(ca_bundle: str | None) -> ssl.SSLContext | bool:
    """Verification is always on; a CA bundle replaces the default trust store."""
    if not ca_bundle:
        return True
    if os.path.isdir(ca_bundle):
        return ssl.create_default_context(capath=ca_bundle)
    return ssl.create_default_context(cafile=ca_bundle)
