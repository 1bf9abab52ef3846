"""``[sinks.NAME]``: where alerts and watch states go."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator

from pipeline.core.config.base import DAY_S, Model, check_http_url


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


class WebhookSinkConfig(Model):
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
    outbox: Path = Field(default=Path("lookout-outbox.sqlite3"), description="SQLite outbox file.")
    max_age_s: float = Field(
        default=86400.0,
        gt=0,
        le=30 * DAY_S,
        description="Give up (dead letter) after this age, in seconds.",
    )
    connect_timeout_s: float = Field(default=5.0, gt=0, le=300, description="Connect timeout.")
    read_timeout_s: float = Field(
        default=15.0, gt=0, le=3600, description="Longest wait for any single read."
    )
    request_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description=(
            "Seconds one POST may take in all (connect, send, the whole answer); "
            "then the attempt fails and is retried."
        ),
    )
    backoff_initial_s: float = Field(
        default=1.0, gt=0, le=3600, description="First retry delay, in seconds."
    )
    backoff_max_s: float = Field(
        default=600.0, gt=0, le=DAY_S, description="Longest retry delay, in seconds."
    )
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


class SnapshotSinkConfig(Model):
    """Save each alert's judged frame as JPEG under a folder."""

    type: Literal["snapshot"] = "snapshot"
    directory: Path = Field(description="Folder for the JPEG files.")
    keep: int = Field(default=200, ge=1, le=1_000_000, description="Newest files kept.")


SinkConfig = Annotated[
    ConsoleSinkConfig | MqttSinkConfig | WebhookSinkConfig | JsonlSinkConfig | SnapshotSinkConfig,
    Field(discriminator="type"),
]
