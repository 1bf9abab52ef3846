"""``[mqtt]`` and ``[mqtt.tls]``: the one broker connection."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from pipeline.core.config.base import Model, read_secret


class MqttTlsConfig(Model):
    """TLS for the MQTT connection. Fails closed: no fallback to plain text."""

    ca_file: Path | None = Field(
        default=None, description="CA bundle that signs the broker's certificate."
    )
    cert_file: Path | None = Field(default=None, description="Client certificate (mutual TLS).")
    key_file: Path | None = Field(default=None, description="Client private key (mutual TLS).")
    insecure: bool = Field(default=False, description="Skip host name verification (testing only).")


class MqttConfig(Model):
    """``[mqtt]``: the one broker connection shared by sinks, detection sources and control."""

    host: str = Field(default="127.0.0.1", description="Broker host name or address.")
    port: int = Field(default=1883, ge=1, le=65535, description="Broker port.")
    protocol: Literal["3.1.1", "5"] = Field(default="3.1.1", description="MQTT protocol version.")
    client_id: str | None = Field(
        default=None, description="Client id; default lookout-<host>-<pid>."
    )
    keepalive: int = Field(default=60, ge=5, le=3600, description="Keepalive in seconds.")
    username: str | None = Field(default=None, description="User name.")
    password: SecretStr | None = Field(
        default=None, description="Password; prefer LOOKOUT_MQTT__PASSWORD or password_file."
    )
    password_file: Path | None = Field(default=None, description="File holding the password.")
    topic_prefix: str = Field(default="lookout", min_length=1, description="Prefix of every topic.")
    tls: MqttTlsConfig | None = Field(
        default=None, description="TLS settings; absent means plain TCP."
    )
    qos: Literal[0, 1, 2] = Field(default=1, description="QoS of alerts and state.")
    queue_size: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="Messages waiting for the broker (QoS 1/2); overflow is dropped.",
    )
    reconnect_min_s: int = Field(
        default=1, ge=1, le=300, description="First wait before a reconnect, in seconds."
    )
    reconnect_max_s: int = Field(
        default=60, ge=1, le=3600, description="Longest wait between reconnects, in seconds."
    )

    @field_validator("topic_prefix")
    @classmethod
    def _prefix_has_no_wildcards(cls, v: str) -> str:
        if any(c in v for c in "#+") or v.endswith("/"):
            raise ValueError("must not contain '#' or '+' nor end with '/'")
        return v

    def resolved_password(self) -> str | None:
        """The password from the value or the file."""
        return read_secret(self.password, self.password_file)
