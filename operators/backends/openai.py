"""The ``openai`` backend: any OpenAI-compatible chat endpoint.

llama-server, vLLM, Ollama (``/v1``), LM Studio, LocalAI and cloud services all
speak ``POST /v1/chat/completions``. This backend probes ``/v1/models`` (and
llama.cpp's ``/props``) for the model and its vision support, sends the
baseline prompt with the frame as a base64 data URL, asks for a bounded
JSON-schema ``response_format`` (adapting only the field a 400 names:
:mod:`operators.backends.openai_request`), validates every answer with
:func:`operators.answer_parser.parse_answer`, retries transient failures with
backoff and jitter, opens a circuit breaker after repeated failures, limits the
requests in flight, and says "unauthorized: check the API key" on a 401/403.

Example:
    >>> from pipeline.core.config import OpenAIBackendConfig
    >>> backend = OpenAIBackend("vlm", OpenAIBackendConfig(base_url="http://127.0.0.1:9/v1",
    ...                                                    connect_timeout_s=0.2, retries=0))
    >>> backend.judge(LookRequest(watch="w", camera="c", condition="x", jpeg=b"..")).kind.value
    'unavailable'
    >>> backend.stop()
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from operators.answer_parser import parse_answer
from operators.backends.base import Availability, BackendError, LookRequest
from operators.backends.circuit import CircuitBreaker, CircuitState
from operators.backends.openai_probe import UNAUTHORIZED, ProbeResult, probe_server
from operators.backends.openai_request import (
    BackendStats,
    RequestFailed,
    RequestShape,
    content_of,
    image_refusal,
    status_text,
    wait_verdict,
)
from operators.backends.prompt import (
    SYSTEM_PROMPT_TEMPLATE,
    build_messages,
    system_prompt_for,
    user_content,
)
from operators.backends.retry import is_retryable_status
from pipeline.core.backoff import backoff_delay, parse_retry_after
from pipeline.core.config import OpenAIBackendConfig
from pipeline.core.redact import redact, redact_url, register_secret
from pipeline.core.verdict import AnswerKind, Verdict
from pipeline.net.http import HttpClient, HttpResponse, TransportError

__all__ = ["BackendStats", "OpenAIBackend", "ProbeResult"]

log = logging.getLogger("lookout.backends.openai")

_SECRET_HEADER_WORDS = ("auth", "key", "token", "secret", "cookie")


class OpenAIBackend:
    """An OpenAI-compatible chat endpoint as a Lookout backend.

    One instance per ``[backends.NAME]``; share it between the watches that
    use it, because the concurrency limit and the circuit breaker live here.
    ``judge`` is blocking and thread-safe and never raises for server or model
    faults.

    Args:
        name: the backend's name in ``pipeline.toml``.
        config: its ``[backends.NAME]`` table.
        clock: monotonic seconds (circuit breaker, Retry-After bookkeeping).
        rng: random source of the retry jitter.
    """

    type = "openai"
    needs_gpu = False
    ram_mb = 0

    def __init__(
        self,
        name: str,
        config: OpenAIBackendConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self._clock = clock
        self._rng = rng or random.Random()
        key = config.resolved_api_key()
        headers = dict(config.headers)
        for hname, value in headers.items():
            if any(w in hname.lower() for w in _SECRET_HEADER_WORDS):
                register_secret(value)
        if key:
            register_secret(key)
            headers["Authorization"] = f"Bearer {key}"
        self._client = HttpClient(
            config.base_url,
            headers,
            connect_timeout_s=config.connect_timeout_s,
            read_timeout_s=config.read_timeout_s,
            request_timeout_s=config.request_timeout_s,
            pool_size=config.max_concurrency,
        )
        self.circuit = CircuitBreaker(config.circuit_failures, config.circuit_reset_s, clock)
        self._slots = threading.BoundedSemaphore(config.max_concurrency)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._not_before = 0.0
        self.model = config.model
        self.takes_images = True
        self._vision_known = False
        self._shape = RequestShape(config.response_format, config.token_limit_field)
        self._template = config.system_prompt or SYSTEM_PROMPT_TEMPLATE
        self.last_probe: ProbeResult | None = None
        self._auth_problem: str | None = None
        self.stats = BackendStats(format_fallbacks=self._shape.fallbacks)

    # ------------------------------------------------------------ lifecycle

    @property
    def endpoint(self) -> str:
        """The base URL without any password (for messages)."""
        return redact_url(self.config.base_url)

    @property
    def response_format(self) -> str:
        """The structured-output mode in use now (``json_schema``, ``json_object``, ``none``)."""
        return self._shape.format

    def probe(self, timeout_s: float | None = None) -> ProbeResult:
        """Ask the server for its models (and llama.cpp ``/props``); never raises."""
        timeout = timeout_s or min(self.config.connect_timeout_s, 5.0)
        result = probe_server(self._client, self.config.model, timeout)
        with self._lock:
            if result.reachable and not self.model:
                self.model = result.model
            if result.vision is not None:
                self.takes_images = result.vision
                self._vision_known = True
        if not result.authorized:
            self._auth_changed(result.detail)
        self.last_probe = result
        return result

    @property
    def unauthorized(self) -> str | None:
        """Why the server refuses the API key (``unauthorized: check the API key (HTTP 401)``).

        None while it accepts it. Set by a 401 or 403 answer (a look or a probe),
        cleared by the next answered look; each change is logged once.
        """
        return self._auth_problem

    def _auth_changed(self, problem: str | None) -> None:
        """Record whether the key is refused; log only a change between refused and accepted."""
        with self._lock:
            was, self._auth_problem = self._auth_problem, problem
        if (was is None) == (problem is None):
            return
        if problem is not None:
            log.warning("backend %r (%s): %s", self.name, self.endpoint, problem)
        elif was is not None:
            log.info("backend %r (%s): the API key is accepted again", self.name, self.endpoint)

    def availability(self) -> Availability:
        """Reachable, the API key accepted, and the model takes images (a live probe)."""
        result = self.probe()
        return Availability(result.usable, f"{self.endpoint}: {result.summary()}")

    def start(self) -> None:
        """Probe the server and log what was found; never raises (the server may come later)."""
        self._stopping.clear()
        self._client.reopen()
        result = self.probe()
        if not result.reachable:
            log.warning(
                "backend %r (%s) not reachable yet: %s",
                self.name,
                self.endpoint,
                redact(result.detail),
            )
        elif result.vision is False:
            log.warning(
                "backend %r (%s): model %s cannot take images; its watches will wait",
                self.name, self.endpoint, result.model,
            )  # fmt: skip
        elif result.authorized:  # else probe() logged it, once per change
            log.info("backend %r (%s): %s", self.name, self.endpoint, result.summary())

    def stop(self) -> None:
        """Interrupt retry waits, end requests in flight, close the connections.

        A look in flight ends at once as ``unavailable`` (shutdown does not wait
        for the model's answer); :meth:`start` may follow.
        """
        self._stopping.set()
        self._client.close(abort=True)

    # ------------------------------------------------------------ looks

    def judge(self, request: LookRequest) -> Verdict:
        """Judge one look: the baseline prompt, history and frame to the chat endpoint."""
        t0 = time.monotonic()
        self.stats.looks += 1
        if request.jpeg is None:
            return Verdict.failed(AnswerKind.NO_FRAME, "no frame to send").with_latency(0.0)
        messages = build_messages(request, system_prompt_for(request, self._template))
        try:
            text = self.complete(messages, answer_schema=True)
        except RequestFailed as failure:
            return failure.verdict.with_latency(time.monotonic() - t0)
        return parse_answer(text).with_latency(time.monotonic() - t0)

    def describe(self, jpeg: bytes, prompt: str) -> str:
        """Describe an image in free form.

        Raises:
            BackendError: the server gave no answer (unreachable, circuit open, error).
        """
        messages = [{"role": "user", "content": user_content(prompt, jpeg)}]
        try:
            return self.complete(messages, answer_schema=False) or ""
        except RequestFailed as failure:
            raise BackendError(failure.verdict.error or "no answer") from None

    def complete(self, messages: list[dict[str, Any]], *, answer_schema: bool) -> str | None:
        """One chat completion with retries; returns the answer text (``None`` when empty).

        Raises:
            RequestFailed: with the failed verdict to return.
        """
        if self._vision_known and not self.takes_images:
            raise RequestFailed(self._no_vision(""))
        attempt = 0
        while True:
            self._check_open()
            resp = self._attempt(messages, answer_schema)
            if isinstance(resp, HttpResponse) and resp.status == 200:
                self.circuit.record_success()
                self._auth_changed(None)
                return content_of(resp)
            if isinstance(resp, HttpResponse) and self._refused(resp, answer_schema):
                continue  # the request was reshaped to what the server takes: send it again
            delay = self._failed(resp, attempt)
            attempt += 1
            if self._stopping.wait(delay):
                raise RequestFailed(Verdict.failed(AnswerKind.UNAVAILABLE, f"{self.name}: stopped"))

    def _failed(self, resp: HttpResponse | TransportError, attempt: int) -> float:
        """Count a transient failure; return the delay before the next try.

        Raises:
            RequestFailed: no retry is left, or the server asked to wait longer
                than ``backoff_max_s`` (every look then waits, see :meth:`_check_open`).
        """
        self.circuit.record_failure()
        self.stats.failures += 1
        why = f"{self.name}: {status_text(resp)}"
        if attempt >= self.config.retries or self._stopping.is_set():
            raise RequestFailed(Verdict.failed(AnswerKind.UNAVAILABLE, why))
        cfg = self.config
        delay = backoff_delay(attempt, cfg.backoff_initial_s, cfg.backoff_max_s, rng=self._rng)
        after = None
        if isinstance(resp, HttpResponse):
            after = parse_retry_after(resp.headers.get("retry-after"))
        if after is not None and after > cfg.backoff_max_s:
            self._not_before = self._clock() + after
            raise RequestFailed(wait_verdict(why, after))
        if after is not None:
            delay = after
        self.stats.retries += 1
        log.debug("backend %r: %s; retry %d in %.2f s", self.name, why, attempt + 1, delay)
        return delay

    def _check_open(self) -> None:
        now = self._clock()
        if now < self._not_before:
            self.stats.rejected_open += 1
            raise RequestFailed(
                wait_verdict(f"{self.name}: server asked to wait (Retry-After)",
                             self._not_before - now)
            )  # fmt: skip
        if not self.circuit.allow():
            self.stats.rejected_open += 1
            wait = self.circuit.retry_in()
            raise RequestFailed(
                wait_verdict(f"{self.name}: circuit open after repeated failures", wait)
            )

    def _attempt(
        self, messages: list[dict[str, Any]], answer_schema: bool
    ) -> HttpResponse | TransportError:
        cfg = self.config
        with self._lock:
            body = self._shape.body(
                self.model, messages, max_tokens=cfg.max_tokens, temperature=cfg.temperature,
                answer_schema=answer_schema, extra_body=cfg.extra_body,
            )  # fmt: skip
        if not self._slots.acquire(timeout=cfg.queue_timeout_s):
            if self.circuit.state is CircuitState.HALF_OPEN:
                self.circuit.release_probe()
            raise RequestFailed(
                Verdict.failed(
                    AnswerKind.UNAVAILABLE,
                    f"{self.name}: no free request slot within {cfg.queue_timeout_s:g} s",
                )
            )
        try:
            with self._lock:
                self.stats.in_flight += 1
                self.stats.attempts += 1
                self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
            try:
                return self._client.request("POST", "/chat/completions", body)
            except TransportError as exc:
                return exc
            except RuntimeError:  # closed by stop()
                return TransportError(f"{self.name}: stopped")
        finally:
            with self._lock:
                self.stats.in_flight -= 1
            self._slots.release()

    def _refused(self, resp: HttpResponse, answer_schema: bool) -> bool:
        """Handle an error answer that is not worth a retry as it is.

        Returns:
            True when the request was reshaped (a field the server rejects was
            changed) and may be sent again at once; False for a transient status.

        Raises:
            RequestFailed: the look fails (no vision, bad image, not authorized,
                any other client error).
        """
        self._image_refusal(resp)
        if is_retryable_status(resp.status):
            return False
        text = resp.error_text()
        with self._lock:
            change = self._shape.adapt(resp.status, text, answer_schema)
        if change is not None:
            log.info("backend %r: %s", self.name, change)
            return True
        if resp.status in (401, 403):
            self.circuit.record_failure()
            problem = f"{UNAUTHORIZED} (HTTP {resp.status})"
            self._auth_changed(problem)
            raise RequestFailed(Verdict.failed(AnswerKind.UNAVAILABLE, f"{self.name}: {problem}"))
        self.circuit.record_success()
        raise RequestFailed(Verdict.failed(AnswerKind.ERROR, f"{self.name}: {status_text(resp)}"))

    def _image_refusal(self, resp: HttpResponse) -> None:
        """Fail the look when the server refused the image (see :func:`image_refusal`).

        ``no_vision`` (llama-server without ``--mmproj``: 500 "image input is not
        supported") stops sending looks; ``bad_image`` (400 "Failed to load image
        or audio file") fails this look only. Neither counts against the circuit.

        Raises:
            RequestFailed: the server refused the image.
        """
        refusal = image_refusal(resp.status, resp.error_text())
        if refusal is None:
            return
        self.circuit.record_success()
        if refusal == "bad_image":
            raise RequestFailed(
                Verdict.failed(
                    AnswerKind.ERROR,
                    f"{self.name}: the server could not read the image ({status_text(resp)})",
                )
            )
        with self._lock:
            self.takes_images = False
            self._vision_known = True
        raise RequestFailed(self._no_vision(resp.error_text()))

    def _no_vision(self, text: str) -> Verdict:
        detail = f": {text}" if text else ""
        return Verdict.failed(
            AnswerKind.UNAVAILABLE,
            f"{self.name}: model {self.model or '?'} cannot take images{detail}",
        )
