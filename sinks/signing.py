"""Standard Webhooks signatures: ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``.

Secrets are ``whsec_`` followed by base64 bytes (the Standard Webhooks form);
several secrets give several space-separated signatures, so a receiver can
rotate its secret without losing events.

Example:
    >>> key = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
    >>> header = signature_header([parse_secret(key)], "msg_1", 1700000000, b"{}")
    >>> header.startswith("v1,")
    True
    >>> verify([parse_secret(key)], "msg_1", 1700000000, b"{}", header)
    True
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Sequence

SECRET_PREFIX = "whsec_"


def parse_secret(text: str) -> bytes:
    """Return the key bytes of a ``whsec_<base64>`` secret.

    Raises:
        ValueError: the text lacks the prefix or is not base64 (the secret is not echoed).
    """
    text = text.strip()
    if not text.startswith(SECRET_PREFIX):
        raise ValueError("A webhook secret must start with 'whsec_' followed by base64.")
    try:
        key = base64.b64decode(text[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("A webhook secret after 'whsec_' is not valid base64.") from None
    if len(key) < 16:
        raise ValueError("A webhook secret must hold at least 16 bytes.")
    return key


def parse_secrets(text: str) -> list[bytes]:
    """Return the keys of one secret per line (blank lines and ``#`` comments skipped)."""
    lines = [line.strip() for line in text.splitlines()]
    return [parse_secret(line) for line in lines if line and not line.startswith("#")]


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return one ``v1,<base64>`` signature of ``msg_id.timestamp.body``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(keys: Sequence[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the ``webhook-signature`` value: one signature per key, space separated."""
    return " ".join(sign(k, msg_id, timestamp, body) for k in keys)


def verify(keys: Iterable[bytes], msg_id: str, timestamp: int, body: bytes, header: str) -> bool:
    """Return whether any ``v1`` signature in ``header`` matches any key (constant-time compare)."""
    given = [part for part in header.split() if part.startswith("v1,")]
    for key in keys:
        expected = sign(key, msg_id, timestamp, body)
        if any(hmac.compare_digest(expected, g) for g in given):
            return True
    return False
