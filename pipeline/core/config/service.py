"""Process-wide tables: ``[metrics]``, ``[log]``, ``[reload]``, ``[control]``, ``[shutdown]``."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from pipeline.core.config.base import DAY_S, Model


class MetricsConfig(Model):
    """``[metrics]``: Prometheus metrics and /healthz over HTTP."""

    enabled: bool = Field(False, description="Serve metrics.")
    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(9108, ge=0, le=65535, description="Port (0 picks a free one).")
    camera_offline_s: float = Field(
        60.0, gt=0, le=DAY_S, description="/healthz fails past this offline time, in seconds."
    )
    sink_failing_s: float = Field(
        60.0,
        gt=0,
        le=DAY_S,
        description="/healthz fails when a sink or MQTT has failed this long, in seconds.",
    )


class LogConfig(Model):
    """``[log]``: logging."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    json_lines: bool = Field(False, description="One JSON object per log line.")


class ReloadConfig(Model):
    """``[reload]``: reloading pipeline.toml without a restart (SIGHUP always reloads)."""

    watch_file: bool = Field(True, description="Reload when pipeline.toml changes on disk.")
    poll_interval_s: float = Field(
        1.0, gt=0, le=60, description="How often the file is checked for changes, in seconds."
    )


class ControlConfig(Model):
    """``[control]``: start, cancel and list watches at run time over MQTT (needs ``[mqtt]``)."""

    enabled: bool = Field(
        False,
        description=(
            "Listen on <prefix>/watches/set, .../cancel, .../list. Off unless enabled: anyone "
            "who can publish to the broker can then start watches and, with run-time webhooks, "
            "make Lookout send HTTP requests."
        ),
    )
    reply_topic: str = Field(
        "watches/reply",
        min_length=1,
        description="Reply topic under the prefix when a request names none (MQTT 3.1.1).",
    )
    state_file: Path = Field(
        Path("lookout-watches.json"),
        description="Persistent run-time watches; relative paths are next to the config file.",
    )
    max_watches: int = Field(100, ge=0, le=10_000, description="Most run-time watches at once.")
    webhook_outbox: Path = Field(
        Path("lookout-runtime-outbox.sqlite3"),
        description=(
            "SQLite outbox of the webhooks that run-time watches bring (a `webhook` key in "
            "the watches/set body); relative paths are next to the config file."
        ),
    )
    allow_webhook_networks: list[str] = Field(
        default_factory=list,
        description=(
            "Networks (CIDR, e.g. 192.168.1.0/24) a run-time watch's webhook URL may resolve "
            "to although they are not globally routable (private, loopback, link-local, "
            "carrier-grade NAT...); by default only globally routable addresses are allowed."
        ),
    )

    @field_validator("allow_webhook_networks")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for net in v:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(
                    f"'{net}' is not a network in CIDR form (e.g. 10.0.0.0/8)"
                ) from None
        return v

    @field_validator("reply_topic")
    @classmethod
    def _topic(cls, v: str) -> str:
        if any(c in v for c in "#+") or v.startswith("/") or v.endswith("/"):
            raise ValueError("must not contain '#' or '+' nor start or end with '/'")
        return v


class ShutdownConfig(Model):
    """``[shutdown]``: what SIGINT/SIGTERM waits for."""

    grace_s: float = Field(
        10.0, ge=0, le=600, description="Seconds looks in flight may take to finish."
    )
    flush_s: float = Field(
        5.0, ge=0, le=600, description="Seconds sinks may take to flush queued messages."
    )
