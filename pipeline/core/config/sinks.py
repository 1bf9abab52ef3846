"""``[sinks.NAME]``: where alerts and watch states go."""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from pipeline.core.config.base import DAY_S, Model, check_http_url

MaxAgeS = Annotated[
    float,
    Field(gt=0, le=30 * DAY_S, description="Give up (dead letter) after this age, in seconds."),
]
BackoffInitialS = Annotated[
    float, Field(gt=0, le=3600, description="First retry delay, in seconds.")
]
BackoffMaxS = Annotated[
    float, Field(gt=0, le=DAY_S, description="Longest retry delay, in seconds.")
]
RequestTimeoutS = Annotated[float, Field(gt=0, le=3600)]
"""One delivery's total deadline; each sink says what it covers."""


class OutboxSinkConfig(Model):
    """The keys every outbox-backed sink (webhook, notify) has: the outbox, retries, retention.

    A sink's table lists these first; a sink may change the defaults.

    Example:
        >>> OutboxSinkConfig().keep_dead_s
        2592000.0
    """

    outbox: Path = Field(default=Path("lookout-outbox.sqlite3"), description="SQLite outbox file.")
    max_age_s: MaxAgeS = 86400.0
    backoff_initial_s: BackoffInitialS = 1.0
    backoff_max_s: BackoffMaxS = 600.0
    keep_delivered_s: float = Field(
        default=7 * DAY_S,
        ge=0,
        le=365 * DAY_S,
        description="Delete delivered events from the outbox this many seconds after delivery.",
    )
    keep_dead_s: float = Field(
        default=30 * DAY_S,
        ge=0,
        le=365 * DAY_S,
        description="Delete dead letters from the outbox this many seconds after giving up.",
    )


class ConsoleSinkConfig(Model):
    """Print alerts (and watch state) on standard output."""

    type: Literal["console"] = "console"
    format: Literal["text", "json"] = Field(default="text", description="Line format.")
    states: bool = Field(default=True, description="Print watch state changes too.")


class MqttSinkConfig(Model):
    """Publish to the ``[mqtt]`` broker: alerts, retained state, snapshots, discovery."""

    type: Literal["mqtt"] = "mqtt"
    snapshots: bool = Field(default=False, description="Publish the judged frame as JPEG.")
    frigate_compat: bool = Field(
        default=False, description="Also publish <frigate_prefix>/camera_monitoring."
    )
    frigate_prefix: str = Field(
        default="frigate", description="Topic prefix for the Frigate payload."
    )
    home_assistant: bool = Field(
        default=False, description="Publish Home Assistant MQTT discovery."
    )
    discovery_prefix: str = Field(
        default="homeassistant", description="Home Assistant discovery prefix."
    )
    configuration_url: str | None = Field(
        default=None,
        description="Address the device page in Home Assistant links to; default the "
        "[metrics] address when it listens on a fixed host that is not loopback.",
    )

    @field_validator("configuration_url")
    @classmethod
    def _configuration_url(cls, v: str | None) -> str | None:
        return None if v is None else check_http_url(v)


class WebhookSinkConfig(OutboxSinkConfig):
    """POST signed JSON (Standard Webhooks) through a durable outbox."""

    type: Literal["webhook"] = "webhook"
    url: str = Field(description="Endpoint URL.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers.")
    secret: SecretStr | None = Field(
        default=None,
        description="whsec_ secret; prefer LOOKOUT_SINKS__<NAME>__SECRET or secret_file.",
    )
    secret_file: Path | None = Field(
        default=None, description="File holding the secret(s), one a line."
    )
    attach_image: Literal["none", "base64", "multipart"] = Field(
        default="none", description="JPEG."
    )
    states: bool = Field(default=False, description="Send watch state changes too.")
    connect_timeout_s: float = Field(default=5.0, gt=0, le=300, description="Connect timeout.")
    read_timeout_s: float = Field(
        default=15.0, gt=0, le=3600, description="Longest wait for any single read."
    )
    request_timeout_s: RequestTimeoutS = Field(
        default=30.0,
        description=(
            "Seconds one POST may take in all (connect, send, the whole answer); "
            "then the attempt fails and is retried."
        ),
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        return check_http_url(v)


class JsonlSinkConfig(Model):
    """Append alerts and states as JSON lines, rotated by size."""

    type: Literal["jsonl"] = "jsonl"
    path: Path = Field(description="File to append to.")
    max_bytes: int = Field(
        default=10_000_000, ge=1024, le=100_000_000_000, description="Rotate past this size."
    )
    backups: int = Field(default=5, ge=0, le=1000, description="Rotated files kept.")
    states: bool = Field(default=True, description="Write watch states too.")
    looks: bool = Field(
        default=False,
        description="Write every look too (trigger, verdict, frame kind, lateness, frame age).",
    )


class SnapshotSinkConfig(Model):
    """Save each alert's judged frame as JPEG under a folder."""

    type: Literal["snapshot"] = "snapshot"
    directory: Path = Field(description="Folder for the JPEG files.")
    keep: int = Field(default=200, ge=1, le=1_000_000, description="Newest files kept.")


NOTIFY_FIELDS = frozenset(
    {"watch", "camera", "condition", "message", "reasoning", "time", "look_count", "event_id"}
)
"""The names a notify sink's ``title`` and ``body`` templates may use, as ``{name}``."""

_APPRISE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://\S+$")


def check_template(text: str) -> str:
    """Refuse a template that names anything but :data:`NOTIFY_FIELDS` (no ``{a.b}``, ``{a[0]}``).

    Example:
        >>> check_template("{watch} on {camera}: {message}")
        '{watch} on {camera}: {message}'
        >>> check_template("{secret}")
        Traceback (most recent call last):
        ...
        ValueError: unknown field {secret}; use camera, condition, event_id, look_count, \
message, reasoning, time, watch (write {{ and }} for braces)
    """
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as exc:
        why = f"is not a valid template ({exc}); write {{{{ and }}}} for braces"
        raise ValueError(why) from None
    for name in names:
        if name not in NOTIFY_FIELDS:
            known = ", ".join(sorted(NOTIFY_FIELDS))
            raise ValueError(
                f"unknown field {{{name}}}; use {known} (write {{{{ and }}}} for braces)"
            )
    return text


class NotifySinkConfig(OutboxSinkConfig):
    """Phone and chat notifications through Apprise (ntfy, Telegram, Pushover, email...).

    Each URL is one Apprise service URL; every alert is stored in the outbox
    once per URL before any attempt, and retried with backoff until delivered
    or older than ``max_age_s`` (then a dead letter, listed by ``outbox list``).
    """

    type: Literal["notify"] = "notify"
    max_age_s: MaxAgeS = 3600.0
    backoff_initial_s: BackoffInitialS = 2.0
    backoff_max_s: BackoffMaxS = 300.0
    urls: list[SecretStr] = Field(
        default_factory=list,
        max_length=32,
        description=(
            "Apprise URLs (ntfy://, tgram://, mailto://, json://...), secret; prefer "
            "LOOKOUT_SINKS__<NAME>__URLS (a JSON list) or urls_file."
        ),
    )
    urls_file: Path | None = Field(
        default=None, description="File holding more Apprise URLs, one a line (# comments)."
    )
    title: str = Field(
        default="{watch} ({camera})",
        max_length=1000,
        description="Title template: {watch}, {camera}, {condition}, {message}, {reasoning}...",
    )
    body: str = Field(
        default="{message}",
        max_length=4000,
        description="Body template, with the same fields as title.",
    )
    attach_snapshot: bool = Field(
        default=True, description="Attach the judged frame (JPEG) where the service takes files."
    )
    rate_limit: int = Field(
        default=10,
        ge=1,
        le=10_000,
        description="At most this many notifications per URL in rate_period_s; the rest wait.",
    )
    rate_period_s: float = Field(
        default=60.0, gt=0, le=DAY_S, description="The window of rate_limit, in seconds."
    )
    request_timeout_s: RequestTimeoutS = Field(
        default=30.0,
        description=(
            "Seconds one delivery may take in all (every request Apprise makes for it); "
            "then the attempt fails and is retried."
        ),
    )

    @field_validator("urls")
    @classmethod
    def _apprise_urls(cls, v: list[SecretStr]) -> list[SecretStr]:
        for i, url in enumerate(v):
            if not _APPRISE_URL.match(url.get_secret_value().strip()):
                raise ValueError(f"entry {i} is not a service URL such as ntfy://host/topic")
        return v

    @field_validator("title", "body")
    @classmethod
    def _template(cls, v: str) -> str:
        return check_template(v)

    @model_validator(mode="after")
    def _some_url(self) -> NotifySinkConfig:
        if not self.urls and self.urls_file is None:
            raise ValueError("set urls or urls_file (Apprise service URLs)")
        return self


SinkConfig = Annotated[
    ConsoleSinkConfig
    | MqttSinkConfig
    | WebhookSinkConfig
    | JsonlSinkConfig
    | SnapshotSinkConfig
    | NotifySinkConfig,
    Field(discriminator="type"),
]
