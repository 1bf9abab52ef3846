"""One chat request of the ``openai`` backend: its body, and what an error answer means.

A server's 400 changes the request only when it names what it rejects:
``response_format`` (then ``json_schema`` falls back to a schema without length
and range bounds when those were the trouble, else to ``json_object``, then to
none), ``max_tokens`` ("Unsupported parameter: 'max_tokens' ... Use
'max_completion_tokens' instead", as current OpenAI models answer: the limit
moves to ``max_completion_tokens``) or ``temperature`` (left out). Any other
400 fails the look and changes nothing.

Example:
    >>> shape = RequestShape("auto")
    >>> body = shape.body("m", [], max_tokens=300, temperature=0.0, answer_schema=True)
    >>> body["response_format"]["type"], body["max_tokens"]
    ('json_schema', 300)
    >>> shape.adapt(400, "Unsupported parameter: 'max_tokens' is not supported with this "
    ...             "model. Use 'max_completion_tokens' instead.", answer_schema=True)
    'max_tokens rejected; sending max_completion_tokens'
    >>> sorted(shape.body("m", [], max_tokens=300, temperature=0.0, answer_schema=True))
    ['max_completion_tokens', 'messages', 'model', 'response_format', 'stream', 'temperature']
    >>> image_refusal(400, "Failed to load image or audio file")
    'bad_image'
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from operators.backends.prompt import ANSWER_SCHEMA, loose_schema
from pipeline.core.verdict import MAX_NEXT_RUN_S, AnswerKind, Verdict
from pipeline.net.http import HttpResponse, TransportError

FORMATS = ("json_schema", "json_schema_loose", "json_object", "none")
"""Structured-output modes, most structured first (``auto`` falls back along them).

``json_schema_loose`` is the answer schema without ``maxLength``, ``minimum`` and
``maximum``, for servers whose strict mode refuses those keywords.
"""
_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "json schema",
                 "structured output", "schema", "grammar")  # fmt: skip
_BOUND_WORDS = ("maxlength", "minlength", "minimum", "maximum")
_REFUSAL_WORDS = ("unsupported", "not supported", "does not support", "unknown", "unrecognized",
                  "not allowed", "not permitted", "only the default")  # fmt: skip
_VISION_WORDS = ("image", "vision", "multimodal", "mmproj", "image_url")
#: Wording of an error that means the model takes no images at all (with a vision word).
#: An unreadable or unsupported image *format* is a bad image, not a model without vision.
_NO_VISION_PHRASES = (
    "input is not supported", "are not supported", "does not support", "doesn't support",
    "only supported by", "mmproj", "not a multimodal", "not multimodal", "no vision",
    "cannot take images", "missing data required for image",
)  # fmt: skip


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


class RequestFailed(Exception):
    """A request ended without a usable answer; ``verdict`` is the failed look to return."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.error)
        self.verdict = verdict


class RequestShape:
    """The request fields a server may reject, and how they fall back (not locked: the caller's).

    Args:
        response_format: the configured mode; ``auto`` starts with ``json_schema``
            and falls back when the server rejects ``response_format`` itself.
        token_limit_field: ``auto`` sends ``max_tokens`` and moves to
            ``max_completion_tokens`` when the server asks for it.
    """

    def __init__(self, response_format: str, token_limit_field: str = "auto") -> None:
        self.auto_format = response_format == "auto"
        self.format = "json_schema" if self.auto_format else response_format
        self.fallbacks: list[str] = []
        self.auto_tokens = token_limit_field == "auto"
        self.token_field = "max_tokens" if self.auto_tokens else token_limit_field
        self.send_temperature = True

    def body(
        self,
        model: str,
        messages: list[dict[str, Any]],
        *,
        max_tokens: int,
        temperature: float | str,
        answer_schema: bool,
        extra_body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The JSON body of one ``POST /chat/completions`` (``extra_body`` merged last).

        ``temperature = "default"`` leaves it out, as does a server that rejected it.
        """
        body: dict[str, Any] = {
            "model": model or "default",
            "messages": messages,
            self.token_field: max_tokens,
            "stream": False,
        }
        if self.send_temperature and isinstance(temperature, int | float):
            body["temperature"] = temperature
        fmt = response_format(self.format) if answer_schema else None
        if fmt is not None:
            body["response_format"] = fmt
        body.update(extra_body or {})
        return body

    def adapt(self, status: int, text: str, answer_schema: bool) -> str | None:
        """Change the field a 400/422 names; return what changed, or None (nothing to change).

        Each field changes at most once per step, so a server that keeps
        rejecting fails the look instead of looping.
        """
        if status not in (400, 422):
            return None
        lowered = text.lower()
        if self.auto_tokens and self.token_field == "max_tokens" and _names_max_tokens(lowered):
            self.token_field = "max_completion_tokens"
            return "max_tokens rejected; sending max_completion_tokens"
        if "temperature" in lowered and self.send_temperature and _refuses(lowered):
            self.send_temperature = False
            return f"temperature rejected ({text}); leaving it out"
        if answer_schema and self.auto_format and any(w in lowered for w in _FORMAT_WORDS):
            return self._next_format(lowered, text)
        return None

    def _next_format(self, lowered: str, text: str) -> str | None:
        old = self.format
        if old == "none":
            return None
        step = FORMATS.index(old) + 1
        if old == "json_schema" and not any(w in lowered for w in _BOUND_WORDS):
            step += 1  # not the bounds: the schema itself is the trouble
        self.format = FORMATS[step]
        self.fallbacks.append(old)
        return f"response_format {old} rejected ({text}); using {self.format}"


def _names_max_tokens(lowered: str) -> bool:
    """A refusal of ``max_tokens`` itself (not of its value, as "max_tokens is too large")."""
    return "max_tokens" in lowered and ("max_completion_tokens" in lowered or _refuses(lowered))


def _refuses(lowered: str) -> bool:
    return any(w in lowered for w in _REFUSAL_WORDS)


def response_format(mode: str) -> dict[str, Any] | None:
    """The ``response_format`` field of a mode (None: leave it out)."""
    if mode in ("json_schema", "json_schema_loose"):
        schema = ANSWER_SCHEMA if mode == "json_schema" else loose_schema()
        return {
            "type": "json_schema",
            "json_schema": {"name": "watch_answer", "schema": schema, "strict": True},
        }
    if mode == "json_object":
        return {"type": "json_object"}
    return None


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


def wait_verdict(error: str, wait_s: float) -> Verdict:
    """A failed look that waits at least ``wait_s`` (at most the longest look interval)."""
    verdict = Verdict.failed(AnswerKind.UNAVAILABLE, error)
    if wait_s > verdict.next_run_in:
        verdict = replace(verdict, next_run_in=min(MAX_NEXT_RUN_S, float(int(wait_s) + 1)))
    return verdict


def status_text(resp: HttpResponse | TransportError) -> str:
    """``HTTP 503: <the server's error message>``, or the transport error."""
    if isinstance(resp, TransportError):
        return str(resp)
    return f"HTTP {resp.status}: {resp.error_text()}"


def content_of(resp: HttpResponse) -> str | None:
    """The first choice's message text, or ``None`` (empty answers are the parser's job).

    Raises:
        RequestFailed: the answer is not a chat completion.
    """
    try:
        data = resp.json()
        message = data["choices"][0]["message"]
        content = message.get("content")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise RequestFailed(
            Verdict.failed(AnswerKind.ERROR, "the server's answer is not a chat completion")
        ) from None
    if isinstance(content, list):  # content parts
        content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else None
