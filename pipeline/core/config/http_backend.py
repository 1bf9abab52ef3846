"""``[backends.NAME] type = "http"``: a vision service that is not OpenAI-compatible.

Example:
    >>> cfg = HttpBackendConfig(url="http://127.0.0.1:8000/describe")
    >>> cfg.body, cfg.answer_field
    ({'image': '{image_b64}', 'prompt': '{prompt}'}, 'description')
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from pipeline.core.config.base import Model, check_http_url

PLACEHOLDERS = ("{image_b64}", "{image_data_url}", "{prompt}")
"""What a body template may use in its strings."""


def _default_body() -> dict[str, Any]:
    return {"image": "{image_b64}", "prompt": "{prompt}"}


class HttpBackendConfig(Model):
    """A generic HTTP sidecar: POST a JSON body made from a template, read one answer field."""

    type: Literal["http"] = "http"
    url: str = Field(
        description="Endpoint the body is POSTed to, e.g. http://127.0.0.1:8000/describe."
    )
    body: dict[str, Any] = Field(
        default_factory=_default_body,
        description="JSON body template; strings may hold {image_b64}, {image_data_url} and "
        "{prompt}.",
    )
    answer_field: str = Field(
        "description",
        max_length=256,
        description="Dotted path of the answer text in the JSON reply (e.g. description, "
        "choices.0.text); empty: the whole reply body is the text.",
    )
    judge: Literal["json", "off"] = Field(
        "json",
        description="json: watches may use it, sending the watch prompt and reading the answer "
        "as the watch's JSON; off: captions only.",
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Extra HTTP headers.")
    connect_timeout_s: float = Field(5.0, gt=0, le=300, description="Connect timeout in seconds.")
    read_timeout_s: float = Field(
        60.0, gt=0, le=3600, description="Longest wait for any single read, in seconds."
    )
    request_timeout_s: float = Field(
        120.0, gt=0, le=3600, description="Seconds one request may take in all."
    )
    retries: int = Field(2, ge=0, le=10, description="Retries of one request on transient errors.")
    backoff_initial_s: float = Field(0.5, gt=0, le=60, description="First retry delay, seconds.")
    backoff_max_s: float = Field(10.0, gt=0, le=3600, description="Longest retry delay, seconds.")
    circuit_failures: int = Field(
        5, ge=1, le=1000, description="Consecutive failures that open the circuit."
    )
    circuit_reset_s: float = Field(30.0, gt=0, le=3600, description="Seconds before a probe.")
    max_concurrency: int = Field(1, ge=1, le=256, description="Requests in flight.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        return check_http_url(v)

    @field_validator("body")
    @classmethod
    def _has_image(cls, v: dict[str, Any]) -> dict[str, Any]:
        text = repr(v)
        if "{image_b64}" not in text and "{image_data_url}" not in text:
            raise ValueError(
                "the body template must send the picture: {image_b64} or {image_data_url}"
            )
        return v
