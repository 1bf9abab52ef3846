"""What a webhook sink sends: the event body (Standard Webhooks envelope) and the signing keys.

Example:
    >>> body, ctype = event_body("alert.created", {"a": 1}, 0.0, None, "none")
    >>> ctype, orjson.loads(body)["type"]
    ('application/json', 'alert.created')
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from pipeline.core.config import WebhookSinkConfig, read_secret
from pipeline.core.redact import register_secret
from sinks.signing import parse_secrets


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat()


def event_body(
    kind: str, data: dict[str, Any], now: float, jpeg: bytes | None, attach: str
) -> tuple[bytes, str]:
    """Return (body, content type) of one event; ``attach`` is none, base64 or multipart.

    Example:
        >>> body, ctype = event_body("alert.created", {"a": 1}, 0.0, None, "none")
        >>> ctype, orjson.loads(body)["type"]
        ('application/json', 'alert.created')
    """
    payload: dict[str, Any] = {"type": kind, "timestamp": _iso(now), "data": data}
    if jpeg is not None and attach == "base64":
        payload["data"] = {**data, "image_base64": base64.b64encode(jpeg).decode()}
    body = orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS)
    if jpeg is None or attach != "multipart":
        return body, "application/json"
    boundary = f"lookout-{uuid.uuid4().hex}"
    parts = [
        f"--{boundary}\r\n".encode(),
        b'Content-Disposition: form-data; name="payload"\r\n',
        b"Content-Type: application/json\r\n\r\n",
        body,
        f"\r\n--{boundary}\r\n".encode(),
        b'Content-Disposition: form-data; name="image"; filename="snapshot.jpg"\r\n',
        b"Content-Type: image/jpeg\r\n\r\n",
        jpeg,
        f"\r\n--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def load_keys(config: WebhookSinkConfig) -> list[bytes]:
    """Return the signing keys from ``secret`` / ``secret_file`` (none: unsigned)."""
    text = read_secret(config.secret, config.secret_file)
    if not text:
        return []
    for line in text.splitlines():
        register_secret(line.strip())
    return parse_secrets(text)
