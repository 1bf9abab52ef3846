"""Keep credentials out of logs, errors, state, metrics and MQTT.

PyAV's and pydantic's error texts contain URLs with their passwords, so every
text that leaves the process goes through :func:`redact`.
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
_USERINFO = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^/@\s:]*):(?P<pw>[^/\s]*)@"
)
_QUERY_SECRET = re.compile(
    r"(?P<key>(?:password|passwd|pwd|token|api_key|apikey|key|secret|auth)=)(?P<val>[^&\s\"']+)",
    re.IGNORECASE,
)

_known_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a secret so :func:`redact` removes it from any text.

    Example:
        >>> register_secret("hunter2")
        >>> redact("password is hunter2")
        'password is ***'
    """
    if value and len(value) >= 3:
        with _lock:
            _known_secrets.add(value)


def redact(text: str) -> str:
    """Remove URL passwords, secret query values and registered secrets from ``text``.

    Example:
        >>> redact("cannot open rtsp://admin:s3cret@10.0.0.2/live")
        'cannot open rtsp://admin:***@10.0.0.2/live'
    """
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _QUERY_SECRET.sub(lambda m: f"{m['key']}{MASK}", text)
    with _lock:
        secrets = sorted(_known_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_url(url: str) -> str:
    """A URL without its password (the user name stays, to help debugging).

    Example:
        >>> redact_url("rtsp://admin:pw@cam.local:554/stream")
        'rtsp://admin:***@cam.local:554/stream'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    if parts.password is None:
        return redact(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:{MASK}@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return redact(urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)))


class RedactingFilter(logging.Filter):
    """A logging filter that redacts every record's message and arguments.

    Install it on handlers: ``handler.addFilter(RedactingFilter())``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            # Render the exception now, redacted, so no formatter prints the raw one.
            import traceback

            rendered = "".join(traceback.format_exception(*record.exc_info))
            message = f"{message}\n{rendered.rstrip()}"
            record.exc_info = None
            record.exc_text = None
        record.msg = redact(message)
        record.args = None
        return True
