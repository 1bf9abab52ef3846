"""One keep-alive HTTP(S) connection that POSTs bytes: no redirects, connect and read timeouts.

Built on :mod:`http.client`, which never follows redirects: a 3xx comes back
as an answer like any other. Errors never raise; they come back as text with
the URL's password removed.

Example:
    >>> poster = HttpPoster("http://127.0.0.1:9/hook", connect_timeout_s=1, read_timeout_s=1)
    >>> poster.post(b"{}", {"content-type": "application/json"}).status is None
    True
    >>> poster.close()
"""

from __future__ import annotations

import base64
import http.client
import ssl
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import unquote, urlsplit

from pipeline.redact import redact, redact_url, register_secret

MAX_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class HttpResult:
    """The outcome of one POST.

    Attributes:
        status: the HTTP status, or None when no answer came (``error`` says why).
        headers: answer headers, lower-case names.
        error: why there was no answer (connect refused, timeout...), free of secrets.
    """

    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def retry_after_s(value: str | None, now: float) -> float | None:
    """Return the seconds a ``Retry-After`` value asks to wait (seconds or HTTP date).

    Example:
        >>> retry_after_s("120", now=0.0)
        120.0
        >>> retry_after_s("Thu, 01 Jan 1970 00:01:00 GMT", now=30.0)
        30.0
        >>> retry_after_s("soon", now=0.0) is None
        True
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


class HttpPoster:
    """POST to one URL over a reused connection.

    Args:
        url: http:// or https:// URL; ``user:password@`` becomes basic auth.
        connect_timeout_s: seconds to open the TCP (and TLS) connection.
        read_timeout_s: seconds each read of the answer may take.
        ssl_context: for https; the system's default (verifying) context when None.
    """

    def __init__(
        self,
        url: str,
        connect_timeout_s: float,
        read_timeout_s: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("The webhook URL must be http:// or https:// with a host.")
        self.url = url
        self.safe_url = redact_url(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._auth: str | None = None
        if parts.username is not None or parts.password is not None:
            password = unquote(parts.password or "")
            register_secret(password)
            cred = f"{unquote(parts.username or '')}:{password}".encode()
            self._auth = "Basic " + base64.b64encode(cred).decode()
            register_secret(self._auth)
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self._ssl = ssl_context
        self._conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        if self._https:
            ctx = self._ssl or ssl.create_default_context()
            conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=self.connect_timeout_s, context=ctx
            )
        else:
            conn = http.client.HTTPConnection(
                self._host, self._port, timeout=self.connect_timeout_s
            )
        conn.connect()
        if conn.sock is not None:
            conn.sock.settimeout(self.read_timeout_s)
        return conn

    def post(self, body: bytes, headers: dict[str, str]) -> HttpResult:
        """POST ``body``; reuse the connection, retrying once if a kept-alive one went stale."""
        all_headers = dict(headers)
        if self._auth is not None:
            all_headers["authorization"] = self._auth
        for attempt in (1, 2):
            reused = self._conn is not None
            try:
                if self._conn is None:
                    self._conn = self._connect()
                self._conn.request("POST", self._target, body=body, headers=all_headers)
                resp = self._conn.getresponse()
                resp.read(MAX_BODY)
                answer = {k.lower(): v for k, v in resp.getheaders()}
                if resp.will_close or not resp.isclosed():
                    self.close()
                return HttpResult(resp.status, answer)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self.close()
                if reused and attempt == 1:
                    continue
                return HttpResult(None, error=self._why(exc))
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                return HttpResult(None, error=self._why(exc))
        return HttpResult(None, error="no answer")  # pragma: no cover

    def _why(self, exc: BaseException) -> str:
        if isinstance(exc, TimeoutError):
            text = "timed out"
        elif isinstance(exc, ssl.SSLError):
            text = f"TLS error: {exc.reason or exc}"
        else:
            text = f"{type(exc).__name__}: {exc}"
        return redact(f"POST {self.safe_url} failed: {text}")

    def close(self) -> None:
        """Close the connection (a later ``post`` opens a new one)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
