"""What every config table shares: the strict base model, names, secrets and URL checks.

Example:
    >>> check_http_url("http://127.0.0.1:8080/v1/")
    'http://127.0.0.1:8080/v1'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from pipeline.core.redact import redact

ENV_PREFIX = "LOOKOUT_"
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$"
NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt")
CAMERA_SCHEMES = (*NETWORK_SCHEMES, "file", "v4l2", "frigate")

Name = Annotated[str, Field(pattern=NAME_PATTERN, min_length=1, max_length=64)]

MAX_PIXELS = 16384
"""The largest picture side (in pixels) any size or coordinate may name."""

DAY_S = 86400.0
"""One day in seconds: the upper bound of most waits and periods."""


class Model(BaseModel):
    """Base of every config table: unknown keys are errors, values are frozen and finite.

    Every number has a documented range (``ge``/``gt`` and ``le``/``lt``); ``inf``
    and ``nan`` (which TOML and environment variables can spell) are refused.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def read_secret(value: SecretStr | None, file: Path | None, env: str | None = None) -> str | None:
    """Resolve a secret from its value, its file, or a named environment variable.

    Example:
        >>> read_secret(SecretStr("pw"), None)
        'pw'
    """
    if value is not None:
        return value.get_secret_value()
    if file is not None:
        return file.read_text(encoding="utf-8").strip()
    if env:
        return os.environ.get(env)
    return None


def safe_reason(exc: Exception) -> str:
    """The text of ``exc`` with any credentials removed, for a validation message."""
    return redact(str(exc))


def check_http_url(v: str) -> str:
    """Validate an http(s) URL with a host; return it without a trailing slash."""
    try:
        parts = urlsplit(v)
        _ = parts.port
    except ValueError as exc:
        raise ValueError(f"is not a valid URL ({safe_reason(exc)})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return v.rstrip("/")
