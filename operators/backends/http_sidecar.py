"""The ``http`` backend: a vision service that is not OpenAI-compatible (a "sidecar").

Many small captioning models are served behind a plain endpoint, for example a
MiniCPM-V sidecar answering ``POST /describe {"image": <base64>, "prompt": ...}``
with ``{"description": ...}``. This backend POSTs a JSON body made from a
template (strings may hold ``{image_b64}``, ``{image_data_url}`` and
``{prompt}``), and reads the answer text at ``answer_field`` (a dotted path;
list items by number). ``describe`` returns that text (captions);
``judge`` sends the watch's prompt (the baseline system prompt, then the
frame's time) and reads the text as the watch's JSON answer, like any model's
(:func:`operators.answer_parser.parse_answer`).

Transient failures (connection errors, time-outs, 408/429/5xx) are retried
with backoff; a circuit breaker stops calling a service that keeps failing; at
most ``max_concurrency`` requests are in flight. Requests go through the
shared HTTP client (:class:`pipeline.net.http.HttpClient`) with a total deadline.

Example:
    >>> render_body({"image": "{image_b64}", "prompt": "{prompt}", "n": 1}, b"ab", "Hi")
    {'image': 'YWI=', 'prompt': 'Hi', 'n': 1}
    >>> answer_at({"choices": [{"text": " yes "}]}, "choices.0.text")
    ' yes '
"""

from __future__ import annotations

import base64
import random
import threading
import time
from typing import Any

from operators.answer_parser import parse_answer
from operators.backends.base import Availability, BackendError, LookRequest
from operators.backends.circuit import CircuitBreaker
from operators.backends.prompt import system_prompt_for
from operators.backends.retry import is_retryable_status
from pipeline.core.backoff import backoff_delay
from pipeline.core.config import HttpBackendConfig
from pipeline.core.redact import redact_url, register_secret
from pipeline.core.verdict import AnswerKind, Verdict
from pipeline.net.http import HttpClient, HttpResponse, TransportError

_SECRET_HEADER_WORDS = ("auth", "key", "token", "secret", "cookie")
MAX_ANSWER_BYTES = 1_048_576
"""The most of an answer that is read."""


def render_body(template: Any, jpeg: bytes, prompt: str) -> Any:
    """The body template with its placeholders filled (in strings, at any depth)."""
    values = {
        "{image_b64}": "",
        "{image_data_url}": "",
        "{prompt}": prompt,
    }
    b64 = base64.b64encode(jpeg).decode("ascii")
    values["{image_b64}"] = b64
    values["{image_data_url}"] = "data:image/jpeg;base64," + b64

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            if value in values:
                return values[value]
            for key, text in values.items():
                value = value.replace(key, text)
            return value
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return value

    return fill(template)


def answer_at(data: Any, path: str) -> str:
    """The text at dotted ``path`` of a JSON answer (numbers index lists).

    Raises:
        ValueError: the path is not in the answer, or leads to something that is not text.
    """
    value = data
    for part in [p for p in path.split(".") if p]:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise ValueError(f"the answer has no {path!r}")
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | bool) or value is None:
        return "" if value is None else str(value)
    raise ValueError(f"the answer's {path!r} is not text")


class _Failed(Exception):
    """Internal: no usable answer; ``kind`` and the message say why."""

    def __init__(self, kind: AnswerKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class HttpSidecarBackend:
    """A generic HTTP vision service as a Lookout backend (captions, and watches with ``judge``).

    Args:
        name: the backend's name in ``pipeline.toml``.
        config: its ``[backends.NAME]`` table.
    """

    type = "http"
    needs_gpu = False
    ram_mb = 0
    takes_images = True

    def __init__(self, name: str, config: HttpBackendConfig) -> None:
        self.name = name
        self.config = config
        for hname, value in config.headers.items():
            if any(w in hname.lower() for w in _SECRET_HEADER_WORDS):
                register_secret(value)
        self._client = HttpClient(
            config.url,
            config.headers,
            connect_timeout_s=config.connect_timeout_s,
            read_timeout_s=config.read_timeout_s,
            request_timeout_s=config.request_timeout_s,
            pool_size=config.max_concurrency,
            max_body=MAX_ANSWER_BYTES,
        )
        self.circuit = CircuitBreaker(config.circuit_failures, config.circuit_reset_s)
        self._slots = threading.BoundedSemaphore(config.max_concurrency)
        self._stopping = threading.Event()
        self._rng = random.Random()

    @property
    def endpoint(self) -> str:
        """The URL without any password (for messages)."""
        return redact_url(self.config.url)

    def availability(self) -> Availability:
        """Configured; whether it answers is found at the first request."""
        return Availability(True, f"{self.endpoint}: an HTTP vision service")

    def start(self) -> None:
        """Allow requests (again)."""
        self._stopping.clear()
        self._client.reopen()

    def stop(self) -> None:
        """End requests in flight and retry waits; :meth:`start` may follow."""
        self._stopping.set()
        self._client.close(abort=True)

    def describe(self, jpeg: bytes, prompt: str) -> str:
        """Ask the service to describe ``jpeg``; return its answer text.

        Raises:
            BackendError: no answer (unreachable, circuit open, error status, no answer field).
        """
        try:
            return self._ask(jpeg, prompt)
        except _Failed as failed:
            raise BackendError(str(failed)) from None

    def judge(self, request: LookRequest) -> Verdict:
        """Send the watch's prompt and the frame; read the answer as the watch's JSON."""
        t0 = time.monotonic()
        if self.config.judge == "off":
            return Verdict.failed(
                AnswerKind.UNAVAILABLE, f"{self.name}: judge = 'off' (captions only)"
            )
        if request.jpeg is None:
            return Verdict.failed(AnswerKind.NO_FRAME, "no frame to send")
        prompt = system_prompt_for(request) + "\n" + request.user_text
        try:
            text = self._ask(request.jpeg, prompt)
        except _Failed as failed:
            return Verdict.failed(failed.kind, str(failed)).with_latency(time.monotonic() - t0)
        return parse_answer(text).with_latency(time.monotonic() - t0)

    def _ask(self, jpeg: bytes, prompt: str) -> str:
        body = render_body(self.config.body, jpeg, prompt)
        attempt = 0
        while True:
            if not self.circuit.allow():
                raise _Failed(
                    AnswerKind.UNAVAILABLE, f"{self.name}: circuit open after repeated failures"
                )
            resp = self._post(body)
            if isinstance(resp, HttpResponse) and resp.status == 200:
                self.circuit.record_success()
                return self._text(resp)
            if isinstance(resp, HttpResponse) and not is_retryable_status(resp.status):
                self.circuit.record_success()  # the service is up; this request is wrong
                raise _Failed(
                    AnswerKind.ERROR, f"{self.name}: HTTP {resp.status}: {resp.error_text()}"
                )
            self.circuit.record_failure()
            why = str(resp) if isinstance(resp, TransportError) else f"HTTP {resp.status}"
            if attempt >= self.config.retries or self._stopping.is_set():
                raise _Failed(AnswerKind.UNAVAILABLE, f"{self.name}: {why}")
            delay = backoff_delay(
                attempt, self.config.backoff_initial_s, self.config.backoff_max_s, rng=self._rng
            )
            attempt += 1
            if self._stopping.wait(delay):
                raise _Failed(AnswerKind.UNAVAILABLE, f"{self.name}: stopped")

    def _post(self, body: Any) -> HttpResponse | TransportError:
        with self._slots:
            try:
                return self._client.request("POST", "", body)
            except TransportError as exc:
                return exc
            except RuntimeError:  # closed by stop()
                return TransportError(f"{self.name}: stopped")

    def _text(self, resp: HttpResponse) -> str:
        if not self.config.answer_field:
            return resp.body.decode("utf-8", "replace")
        try:
            return answer_at(resp.json(), self.config.answer_field)
        except ValueError as exc:
            raise _Failed(AnswerKind.ERROR, f"{self.name}: {exc}") from None
