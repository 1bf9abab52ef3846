"""Safe labels for URLs that carry secrets, and registering those secrets for redaction.

Webhook URLs often carry their secret in the path (Discord and Slack
``/api/webhooks/<id>/<token>``, Home Assistant ``/api/webhook/<id>``) or the
query, so logs, errors and listings name only the scheme, host and port.

Example:
    >>> endpoint_label("https://bot:pw@discord.com/api/webhooks/1/tok?wait=true")
    'https://discord.com/...'
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

from pipeline.core.redact import register_secret


def endpoint_label(url: str) -> str:
    """Return ``scheme://host[:port]`` of a URL, with ``/...`` when it has more: safe to log.

    Example:
        >>> endpoint_label("https://bot:pw@discord.com/api/webhooks/1/tok?wait=true")
        'https://discord.com/...'
        >>> endpoint_label("http://[::1]:8123")
        'http://[::1]:8123'
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    label = f"{parts.scheme or '?'}://{host}" + (f":{port}" if port is not None else "")
    if parts.path.strip("/") or parts.query or parts.fragment:
        label += "/..."
    return label


def register_url_secrets(url: str) -> None:
    """Register a URL's password, path, long path segments and query values as secrets.

    After this, :func:`pipeline.core.redact.redact` removes them from any text (an
    exception's message, a redirect's ``Location``...), not only from logs that
    use :func:`endpoint_label`. Paths shorter than 8 characters (``/hook``) are
    not treated as secret; path segments of 16 characters or more and query
    values of 8 or more (tokens, ids) are, on their own too.

    Example:
        >>> from pipeline.core.redact import redact
        >>> register_url_secrets("https://discord.com/api/webhooks/42/AbCdEfGhIjKlMnOpQrSt")
        >>> redact("POST failed: /api/webhooks/42/AbCdEfGhIjKlMnOpQrSt/ 404")
        'POST failed: ***/ 404'
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return
    if password:
        register_secret(password)
        register_secret(unquote(password))
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    if len(target) >= 8:
        register_secret(target)
        register_secret(unquote(target))
    for segment in parts.path.split("/"):
        if len(segment) >= 16:
            register_secret(segment)
    for _key, value in parse_qsl(parts.query):
        if len(value) >= 8:
            register_secret(value)
