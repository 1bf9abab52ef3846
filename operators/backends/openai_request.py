"""One chat request of the ``openai`` backend: its body, and what an error answer means.

Example:
    >>> shape = RequestShape("auto")
    >>> body = shape.body("m", [], max_tokens=300, temperature=0.0, answer_schema=True)
    >>> body["response_format"]["type"], body["max_tokens"]
    ('json_schema', 300)
    >>> image_refusal(400, "Failed to load image or audio file")
    'bad_image'
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from operators.backends.prompt import ANSWER_SCHEMA
from pipeline.core.verdict import MAX_NEXT_RUN_S, AnswerKind, Verdict
from pipeline.net.http import HttpResponse, TransportError

FORMATS = ("json_schema", "json_object", "none")
"""Structured-output modes, most structured first (``auto`` falls back along them)."""
_VISION_WORDS = ("image", "vision", "multimodal", "mmproj", "image_url")
#: Wording of an error that means the model takes no images at all (with a vision word).
#: An unreadable or unsupported image *format* is a bad image, not a model without vision.
_NO_VISION_PHRASES = (
    "input is not supported", "are not supported", "does not support", "doesn't support",
    "only supported by", "mmproj", "not a multimodal", "not multimodal", "no vision",
    "cannot take images", "missing data required for image",
)  # fmt: skip


class RequestFailed(Exception):
    """A request ended without a usable answer; ``verdict`` is the failed look to return."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.error)
        self.verdict = verdict


class RequestShape:
    """The request fields a server may reject, and how they fall back (not locked: the caller's).

    Args:
        response_format: the configured mode; ``auto`` starts with ``json_schema``
            and falls back when the server rejects it.
    """

    def __init__(self, response_format: str) -> None:
        self.auto_format = response_format == "auto"
        self.format = "json_schema" if self.auto_format else response_format
        self.fallbacks: list[str] = []

    def body(
        self,
        model: str,
        messages: list[dict[str, Any]],
        *,
        max_tokens: int,
        temperature: float,
        answer_schema: bool,
        extra_body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The JSON body of one ``POST /chat/completions`` (``extra_body`` merged last)."""
        body: dict[str, Any] = {
            "model": model or "default",
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": False,
        }
        fmt = response_format(self.format) if answer_schema else None
        if fmt is not None:
            body["response_format"] = fmt
        body.update(extra_body or {})
        return body

    def adapt(self, status: int, text: str, answer_schema: bool) -> str | None:
        """Fall back from a rejected ``response_format``; return what changed, or None."""
        lowered = text.lower()
        if (
            answer_schema
            and status in (400, 422)
            and self.format != "none"
            and self.auto_format
            and not any(w in lowered for w in ("image", "vision", "multimodal"))
        ):
            old = self.format
            self.format = FORMATS[FORMATS.index(old) + 1]
            self.fallbacks.append(old)
            return f"response_format {old} rejected ({text}); using {self.format}"
        return None


def response_format(mode: str) -> dict[str, Any] | None:
    """The ``response_format`` field of a mode (None: leave it out)."""
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": "watch_answer", "schema": ANSWER_SCHEMA, "strict": True},
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
