"""The ``openai`` backend: any OpenAI-compatible chat endpoint.

llama-server, vLLM, Ollama (``/v1``), LM Studio, LocalAI and cloud services all
speak ``POST /v1/chat/completions``. This backend probes ``/v1/models`` (and
llama.cpp's ``/props``) for the model and its vision support, sends the
baseline prompt with the frame as a base64 data URL, asks for a JSON-schema
``response_format`` where the server accepts it (falling back when it does
not), validates every answer with :func:`operators.answer_parser.parse_answer`,
retries transient failures with exponential backoff and jitter, opens a circuit
breaker after repeated failures, and limits the requests in flight, shared by
every watch that uses the backend.

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
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from operators.answer_parser import parse_answer
from operators.backends.base import Availability, BackendError, LookRequest
from operators.backends.circuit import CircuitBreaker, CircuitState
from operators.backends.prompt import (
    ANSWER_SCHEMA,
    SYSTEM_PROMPT_TEMPLATE,
    build_messages,
    system_prompt_for,
    user_content,
)
from operators.backends.retry import is_retryable_status
from pipeline.core.backoff import backoff_delay, parse_retry_after
from pipeline.core.config import OpenAIBackendConfig
from pipeline.core.redact import redact, redact_url, register_secret
from pipeline.core.verdict import MAX_NEXT_RUN_S, AnswerKind, Verdict
from pipeline.net.http import HttpClient, HttpResponse, TransportError

log = logging.getLogger("lookout.backends.openai")

_FORMATS = ("json_schema", "json_object", "none")
_VISION_WORDS = ("image", "vision", "multimodal", "mmproj", "image_url")
#: Wording of an error that means the model takes no images at all (with a vision word).
#: An unreadable or unsupported image *format* is a bad image, not a model without vision.
_NO_VISION_PHRASES = (
    "input is not supported", "are not supported", "does not support", "doesn't support",
    "only supported by", "mmproj", "not a multimodal", "not multimodal", "no vision",
    "cannot take images", "missing data required for image",
)  # fmt: skip
_SECRET_HEADER_WORDS = ("auth", "key", "token", "secret", "cookie")


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What a probe of the server found.

    Attributes:
        reachable: ``/v1/models`` answered 200.
        models: model ids the server lists.
        model: the model this backend uses.
        vision: whether the model takes images (``None``: the server does not say).
        detail: one line for people (why unreachable, or what was found).
        latency_s: seconds the probe took.
    """

    reachable: bool
    models: tuple[str, ...] = ()
    model: str = ""
    vision: bool | None = None
    detail: str = ""
    latency_s: float = 0.0

    def summary(self) -> str:
        """``reachable, model X takes images`` or why not."""
        if not self.reachable:
            return f"unreachable: {self.detail}"
        if self.vision is False:
            return f"reachable, but model {self.model or '?'} cannot take images"
        images = "takes images" if self.vision else "image support not reported"
        return f"reachable, model {self.model or '?'} {images}"


@dataclass(slots=True)
class BackendStats:
    """Counters of one backend (read them for metrics; not locked, roughly exact)."""

    looks: int = 0
    attempts: int = 0
    retries: int = 0
    failures: int = 0
    rejected_open: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    format_fallbacks: list[str] = field(default_factory=list)


class _Failure(Exception):
    """Internal: one request ended without a usable HTTP response."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.error)
        self.verdict = verdict


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
        self._format: str = (
            "json_schema" if config.response_format == "auto" else config.response_format
        )
        self._template = config.system_prompt or SYSTEM_PROMPT_TEMPLATE
        self.last_probe: ProbeResult | None = None
        self.stats = BackendStats()

    # ------------------------------------------------------------ lifecycle

    @property
    def endpoint(self) -> str:
        """The base URL without any password (for messages)."""
        return redact_url(self.config.base_url)

    @property
    def response_format(self) -> str:
        """The structured-output mode in use now (``json_schema``, ``json_object``, ``none``)."""
        return self._format

    def probe(self, timeout_s: float | None = None) -> ProbeResult:
        """Ask the server for its models (and llama.cpp ``/props``); never raises."""
        t0 = time.monotonic()
        timeout = timeout_s or min(self.config.connect_timeout_s, 5.0)
        try:
            resp = self._client.request(
                "GET",
                "/models",
                connect_timeout_s=timeout,
                read_timeout_s=timeout,
                request_timeout_s=2 * timeout,
            )
        except (TransportError, RuntimeError) as exc:
            result = ProbeResult(False, detail=str(exc), latency_s=time.monotonic() - t0)
            self.last_probe = result
            return result
        if resp.status != 200:
            result = ProbeResult(
                False,
                detail=f"GET /models answered {resp.status}: {resp.error_text()}",
                latency_s=time.monotonic() - t0,
            )
            self.last_probe = result
            return result
        models, caps = _parse_models(resp)
        model = self.config.model or (models[0] if models else "")
        vision = caps.get(model)
        props = self._props(timeout)
        if props is not None and vision is None:
            vision = _vision_from_props(props)
        with self._lock:
            if not self.model:
                self.model = model
            if vision is not None:
                self.takes_images = vision
                self._vision_known = True
        result = ProbeResult(
            True,
            tuple(models),
            model,
            vision,
            detail=f"{len(models)} model(s) listed",
            latency_s=time.monotonic() - t0,
        )
        self.last_probe = result
        return result

    def _props(self, timeout: float) -> dict[str, Any] | None:
        try:
            resp = self._client.request(
                "GET",
                "/props",
                root=True,
                connect_timeout_s=timeout,
                read_timeout_s=timeout,
                request_timeout_s=2 * timeout,
            )
            if resp.status != 200:
                return None
            data = resp.json()
        except (TransportError, RuntimeError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def availability(self) -> Availability:
        """Reachable, and the model takes images (a live probe)."""
        result = self.probe()
        if not result.reachable:
            return Availability(False, f"{self.endpoint}: {result.summary()}")
        if result.vision is False:
            return Availability(False, f"{self.endpoint}: {result.summary()}")
        return Availability(True, f"{self.endpoint}: {result.summary()}")

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
        else:
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
        except _Failure as failure:
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
        except _Failure as failure:
            raise BackendError(failure.verdict.error or "no answer") from None

    def complete(self, messages: list[dict[str, Any]], *, answer_schema: bool) -> str | None:
        """One chat completion with retries; returns the answer text (``None`` when empty).

        Raises:
            _Failure: with the failed verdict to return.
        """
        if self._vision_known and not self.takes_images:
            raise _Failure(self._no_vision(""))
        attempt = 0
        while True:
            self._check_open()
            resp = self._attempt(messages, answer_schema)
            if isinstance(resp, HttpResponse) and resp.status == 200:
                self.circuit.record_success()
                return _content(resp)
            if isinstance(resp, HttpResponse):
                self._image_refusal(resp)
            if isinstance(resp, HttpResponse) and not is_retryable_status(resp.status):
                self._client_error(resp, answer_schema)
                continue  # a response_format fallback: try again at once
            self.circuit.record_failure()
            self.stats.failures += 1
            why = str(resp) if isinstance(resp, TransportError) else _status_text(resp)
            kind = AnswerKind.UNAVAILABLE
            if attempt >= self.config.retries or self._stopping.is_set():
                raise _Failure(Verdict.failed(kind, f"{self.name}: {why}"))
            delay = backoff_delay(
                attempt, self.config.backoff_initial_s, self.config.backoff_max_s, rng=self._rng
            )
            if isinstance(resp, HttpResponse):
                after = parse_retry_after(resp.headers.get("retry-after"))
                if after is not None:
                    if after > self.config.backoff_max_s:
                        self._not_before = self._clock() + after
                        raise _Failure(_wait_verdict(f"{self.name}: {why}", after))
                    delay = after
            attempt += 1
            self.stats.retries += 1
            log.debug("backend %r: %s; retry %d in %.2f s", self.name, why, attempt, delay)
            if self._stopping.wait(delay):
                raise _Failure(Verdict.failed(kind, f"{self.name}: stopped"))

    def _check_open(self) -> None:
        now = self._clock()
        if now < self._not_before:
            self.stats.rejected_open += 1
            raise _Failure(
                _wait_verdict(f"{self.name}: server asked to wait (Retry-After)",
                              self._not_before - now)
            )  # fmt: skip
        if not self.circuit.allow():
            self.stats.rejected_open += 1
            wait = self.circuit.retry_in()
            raise _Failure(
                _wait_verdict(f"{self.name}: circuit open after repeated failures", wait)
            )

    def _attempt(
        self, messages: list[dict[str, Any]], answer_schema: bool
    ) -> HttpResponse | TransportError:
        body: dict[str, Any] = {
            "model": self.model or "default",
            "messages": messages,
            "max_tokens": self.config.max_tokens,
            "temperature": self.config.temperature,
            "stream": False,
        }
        if answer_schema:
            fmt = _response_format(self._format)
            if fmt is not None:
                body["response_format"] = fmt
        body.update(self.config.extra_body)
        if not self._slots.acquire(timeout=self.config.queue_timeout_s):
            if self.circuit.state is CircuitState.HALF_OPEN:
                self.circuit.release_probe()
            raise _Failure(
                Verdict.failed(
                    AnswerKind.UNAVAILABLE,
                    f"{self.name}: no free request slot within {self.config.queue_timeout_s:g} s",
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

    def _client_error(self, resp: HttpResponse, answer_schema: bool) -> None:
        """Handle a non-retryable status: fall back from response_format, or fail the look."""
        text = resp.error_text()
        lowered = text.lower()
        if (
            answer_schema
            and resp.status in (400, 422)
            and self._format != "none"
            and self.config.response_format == "auto"
            and not any(w in lowered for w in ("image", "vision", "multimodal"))
        ):
            old = self._format
            self._format = _FORMATS[_FORMATS.index(old) + 1]
            self.stats.format_fallbacks.append(old)
            log.info(
                "backend %r rejected response_format %s (%s); using %s",
                self.name, old, text, self._format,
            )  # fmt: skip
            return
        if resp.status in (401, 403):
            self.circuit.record_failure()
            raise _Failure(
                Verdict.failed(
                    AnswerKind.UNAVAILABLE,
                    f"{self.name}: not authorized ({resp.status}); check the API key",
                )
            )
        self.circuit.record_success()
        raise _Failure(Verdict.failed(AnswerKind.ERROR, f"{self.name}: {_status_text(resp)}"))

    def _image_refusal(self, resp: HttpResponse) -> None:
        """Fail the look when the server refused the image (see :func:`image_refusal`).

        ``no_vision`` (the model takes no images: llama-server without ``--mmproj``
        answers 500 "image input is not supported") stops sending looks; ``bad_image``
        (llama-server answers 400 "Failed to load image or audio file" for a JPEG it
        cannot decode) fails this look only. Neither counts against the circuit.

        Raises:
            _Failure: the server refused the image.
        """
        refusal = image_refusal(resp.status, resp.error_text())
        if refusal is None:
            return
        self.circuit.record_success()
        if refusal == "bad_image":
            raise _Failure(
                Verdict.failed(
                    AnswerKind.ERROR,
                    f"{self.name}: the server could not read the image ({_status_text(resp)})",
                )
            )
        with self._lock:
            self.takes_images = False
            self._vision_known = True
        raise _Failure(self._no_vision(resp.error_text()))

    def _no_vision(self, text: str) -> Verdict:
        detail = f": {text}" if text else ""
        return Verdict.failed(
            AnswerKind.UNAVAILABLE,
            f"{self.name}: model {self.model or '?'} cannot take images{detail}",
        )


# ---------------------------------------------------------------- helpers


def image_refusal(status: int, text: str) -> Literal["no_vision", "bad_image"] | None:
    """Classify an error answer about the image: the model takes none, or this one is unreadable.

    Only wording that says images are not supported (or names the missing
    ``mmproj``) means no vision; any other error about the image means the
    server could not read this one, and the next image may work.

    Example:
        >>> image_refusal(500, "image input is not supported - hint: ... provide the mmproj")
        'no_vision'
        >>> image_refusal(400, "Failed to load image or audio file")
        'bad_image'
        >>> image_refusal(400, "Unsupported parameter: 'max_tokens'") is None
        True
    """
    if status < 400 or status == 401 or status == 403:
        return None
    lowered = text.lower()
    if not any(w in lowered for w in _VISION_WORDS):
        return None
    if any(phrase in lowered for phrase in _NO_VISION_PHRASES):
        return "no_vision"
    if status in (400, 415, 422):
        return "bad_image"
    return None


def _wait_verdict(error: str, wait_s: float) -> Verdict:
    verdict = Verdict.failed(AnswerKind.UNAVAILABLE, error)
    if wait_s > verdict.next_run_in:
        verdict = replace(verdict, next_run_in=min(MAX_NEXT_RUN_S, float(int(wait_s) + 1)))
    return verdict


def _status_text(resp: HttpResponse | TransportError) -> str:
    if isinstance(resp, TransportError):
        return str(resp)
    return f"HTTP {resp.status}: {resp.error_text()}"


def _response_format(mode: str) -> dict[str, Any] | None:
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": "watch_answer", "schema": ANSWER_SCHEMA, "strict": True},
        }
    if mode == "json_object":
        return {"type": "json_object"}
    return None


def _content(resp: HttpResponse) -> str | None:
    """Return the first choice's message text, or ``None`` (empty answers are the parser's job)."""
    try:
        data = resp.json()
        message = data["choices"][0]["message"]
        content = message.get("content")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise _Failure(
            Verdict.failed(AnswerKind.ERROR, "the server's answer is not a chat completion")
        ) from None
    if isinstance(content, list):  # content parts
        content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else None


def _parse_models(resp: HttpResponse) -> tuple[list[str], dict[str, bool]]:
    """Model ids from ``/v1/models``, and per-model vision when capabilities are listed."""
    try:
        data = resp.json()
    except ValueError:
        return [], {}
    ids: list[str] = []
    caps: dict[str, bool] = {}
    if not isinstance(data, dict):
        return ids, caps
    for key in ("data", "models"):
        items = data.get(key)
        if not isinstance(items, list):
            continue
        for item in items:
            if not isinstance(item, dict):
                continue
            mid = item.get("id") or item.get("model") or item.get("name")
            if not isinstance(mid, str):
                continue
            if mid not in ids:
                ids.append(mid)
            found = _vision_from_capabilities(item)
            if found is not None:
                caps[mid] = found
    return ids, caps


def _vision_from_capabilities(item: dict[str, Any]) -> bool | None:
    for key in ("capabilities", "modalities", "input_modalities"):
        value = item.get(key)
        if isinstance(value, list):
            words = " ".join(str(v).lower() for v in value)
            return any(w in words for w in ("vision", "image", "multimodal"))
        if isinstance(value, dict):
            if "vision" in value:
                return bool(value["vision"])
            if "image" in value:
                return bool(value["image"])
    meta = item.get("meta")
    if isinstance(meta, dict):
        return _vision_from_capabilities(meta)
    if item.get("type") == "vlm":
        return True
    return None


def _vision_from_props(props: dict[str, Any]) -> bool | None:
    modalities = props.get("modalities")
    if isinstance(modalities, dict) and "vision" in modalities:
        return bool(modalities["vision"])
    if "multimodal" in props:
        return bool(props["multimodal"])
    return None
