"""The body of a ``watches/set`` request: a ``[[watches]]`` entry plus an optional webhook.

:func:`validate_watch` turns a body into a :class:`RuntimeWatchRequest` (or a
:class:`~pipeline.app.control.topics.RequestRefused` listing every problem with
its ``watch.<key>`` path). A webhook's secret and the secrets in its URL are
registered for redaction before anything may echo them.

Example:
    >>> from pipeline.core.config_loader import load_config_text
    >>> cfg = load_config_text('[cameras.front]\\nurl = "a.mp4"\\n')
    >>> validate_watch(cfg, {"name": "g", "camera": "front", "condition": "a cat"}).name
    'g'
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator

from pipeline.app.control.limits import check_bounds
from pipeline.app.control.topics import RequestRefused
from pipeline.core.config import LookoutConfig, Model, WatchConfig
from pipeline.core.config_loader import (
    ConfigProblem,
    check_watch_references,
    problems_from_validation,
)
from pipeline.core.logs import log_unexpected
from pipeline.core.redact import register_secret
from pipeline.net.urls import endpoint_label, register_url_secrets
from sinks.base import Sink
from sinks.signing import parse_secrets

log = logging.getLogger("lookout.control")

CONTROL_KEYS = ("reply_to", "correlation_id")
"""Body keys of a ``set`` request that are about the request, not the watch."""


class RuntimeWebhook(Model):
    """The ``webhook`` of a run-time watch: its own signed webhook (Standard Webhooks)."""

    url: str = Field(description="Endpoint URL (http or https); checked against private networks.")
    secret: SecretStr | None = Field(
        None, description="whsec_ signing secret; never echoed (unsigned without one)."
    )
    attach_image: Literal["none", "base64", "multipart"] = Field(
        "none", description="Send the alert's JPEG: none, base64 in the JSON, or multipart."
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        try:
            parts = urlsplit(v)
            _ = parts.port
        except ValueError:
            raise ValueError("is not a valid URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return v

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None:
            parse_secrets(v.get_secret_value())  # its ValueError never echoes the secret
        return v


SinkMaker = Callable[["RuntimeWatchRequest"], list[Sink]]


class RuntimeWatchRequest(WatchConfig):
    """A watch started over MQTT: a ``[[watches]]`` entry plus an optional ``webhook``.

    The webhook is a plain URL or a :class:`RuntimeWebhook` table. Config-file
    watches never have one. :meth:`make_sinks` (called by
    :class:`pipeline.app.watches.Watches` for each run) builds it through the maker
    that :class:`WatchControl` binds with :meth:`bind`.

    Example:
        >>> w = RuntimeWatchRequest(name="g", camera="front", condition="a cat",
        ...                         webhook="https://hooks.example.com/abc/very-secret-token")
        >>> w.listing_extra()
        {'webhook': 'https://hooks.example.com/...'}
    """

    webhook: RuntimeWebhook | None = Field(
        None, description="The watch's own webhook: a URL, or {url, secret, attach_image}."
    )
    _maker: SinkMaker | None = PrivateAttr(None)

    @field_validator("webhook", mode="before")
    @classmethod
    def _plain_url(cls, v: Any) -> Any:
        return {"url": v} if isinstance(v, str) else v

    def bind(self, maker: SinkMaker) -> RuntimeWatchRequest:
        """Set what builds this watch's sinks; returns ``self``."""
        self._maker = maker
        return self

    def make_sinks(self) -> list[Sink]:
        """New sinks for one run (none without a webhook or a bound maker).

        Raises:
            pipeline.net.ssrf.UnsafeUrlError: the URL resolves to an address that is not allowed.
        """
        if self.webhook is None or self._maker is None:
            return []
        return self._maker(self)

    def listing_extra(self) -> dict[str, Any]:
        """``{"webhook": <endpoint label>}`` when the watch has one: no path, query or secret."""
        return {"webhook": endpoint_label(self.webhook.url)} if self.webhook else {}

    def stored_body(self) -> dict[str, Any]:
        """The body to keep in the state file (the webhook's secret in clear: the file is 0600)."""
        body = self.model_dump(mode="json", exclude_defaults=True)
        if self.webhook is not None and self.webhook.secret is not None:
            body["webhook"]["secret"] = self.webhook.secret.get_secret_value()
        return body


def webhook_sink_name(watch: str, url: str) -> str:
    """The outbox key of a run-time watch's webhook: the same for the same watch and URL.

    A restarted persistent watch takes up its pending events again; a watch
    given another URL never sends the old URL's events to the new one.

    Example:
        >>> webhook_sink_name("gate", "https://a.example/h")[:11]
        'watch-gate-'
    """
    return f"watch-{watch}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


def _register_body_secrets(body: dict[str, Any]) -> None:
    """Register the webhook secret and URL secrets of a raw body before anything may echo them."""
    hook = body.get("webhook")
    if isinstance(hook, str):
        hook = {"url": hook}
    if not isinstance(hook, dict):
        return
    secret, url = hook.get("secret"), hook.get("url")
    if isinstance(secret, str):
        register_secret(secret.strip())
    if isinstance(url, str):
        with contextlib.suppress(ValueError):
            register_url_secrets(url)


def validate_watch(cfg: LookoutConfig, body: dict[str, Any]) -> RuntimeWatchRequest:
    """Validate a ``set`` body the way ``[[watches]]`` entries are validated (plus ``webhook``).

    Example:
        >>> from pipeline.core.config_loader import load_config_text
        >>> cfg = load_config_text('[cameras.front]\\nurl = "a.mp4"\\n')
        >>> try:
        ...     validate_watch(cfg, {"name": "g", "camera": "back", "condition": "a cat"})
        ... except RequestRefused as err:
        ...     print(err.problems[0])
        watch.camera: unknown camera 'back'; known: front

    Raises:
        RequestRefused: one problem per line, with ``watch.<key>`` paths; a field
            longer than its bound (:mod:`pipeline.app.control.limits`) is refused
            before anything else looks at it.
    """
    check_bounds(body)
    fields = {k: v for k, v in body.items() if k not in CONTROL_KEYS}
    _register_body_secrets(fields)
    try:
        watch = RuntimeWatchRequest(**fields)
    except ValidationError as err:
        problems = [
            ConfigProblem(f"watch.{p.path}" if p.path else "watch", p.message)
            for p in problems_from_validation(err)
        ]
        problems += _reference_problems(cfg, fields, {p.path for p in problems})
        raise RequestRefused("invalid watch", [str(p) for p in problems]) from None
    except TypeError:
        raise RequestRefused("the watch fields must have string keys") from None
    refs = check_watch_references(cfg, watch, "watch")
    if refs:
        raise RequestRefused("invalid watch", [str(p) for p in refs])
    return watch


def _reference_problems(
    cfg: LookoutConfig, fields: dict[str, Any], reported: set[str]
) -> list[ConfigProblem]:
    """Reference problems of a body that failed validation (so one reply lists them all)."""
    try:
        partial = RuntimeWatchRequest.model_construct(**fields)
        found = check_watch_references(cfg, partial, "watch")
    except Exception as exc:  # wrong types: the validation problems already say so
        log_unexpected(log, "control: watch references", exc, expected=(Exception,))
        return []
    return [p for p in found if p.path not in reported and p.path.split("[")[0] not in reported]
