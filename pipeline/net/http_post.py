"""One keep-alive HTTP(S) connection that POSTs bytes: no redirects, connect and read timeouts.

Built on :mod:`http.client`, which never follows redirects: a 3xx comes back
as an answer like any other. Errors never raise; they come back as text that
names only the URL's scheme, host and port (:func:`endpoint_label`): webhook
URLs often carry their secret in the path, which is registered as a secret
(:func:`register_url_secrets`) so it is removed from any other text too.

Example:
    >>> poster = HttpPoster("http://127.0.0.1:9/hook", connect_timeout_s=1, read_timeout_s=1)
    >>> poster.post(b"{}", {"content-type": "application/json"}).status is None
    True
    >>> poster.close()
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import socket
import ssl
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from pipeline.core.redact import redact, register_secret
from pipeline.net.ssrf import SsrfPolicy, UnsafeUrlError

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


def endpoint_label(url: str) -> str:
    """Return ``scheme://host[:port]`` of a URL, with ``/...`` when it has more: safe to log.

    Webhook URLs often carry their secret in the path (Discord and Slack
    ``/api/webhooks/<id>/<token>``, Home Assistant ``/api/webhook/<id>``) or the
    query, so logs, errors and listings name only the host.

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


def _connect_checked(
    host: str, port: int, policy: SsrfPolicy, timeout: float | None
) -> socket.socket:
    """Resolve ``host`` under ``policy`` and connect to the first checked address that answers.

    Raises:
        UnsafeUrlError: an address of ``host`` is not allowed (nothing is connected).
        OSError: no checked address accepted the connection.
    """
    error: OSError | None = None
    for addr in policy.addresses(host, port):
        try:
            sock = socket.create_connection((addr, port), timeout)
        except OSError as exc:
            error = exc
            continue
        with contextlib.suppress(OSError):  # not every socket family has it
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise error or OSError(f"no address of {host} accepted the connection")


class PinnedHTTPConnection(http.client.HTTPConnection):
    """An :class:`http.client.HTTPConnection` that connects only to addresses its policy allows.

    Every ``connect()`` resolves the host with the policy's resolver, refuses
    unless every address passes (:meth:`pipeline.net.ssrf.SsrfPolicy.addresses`), and
    connects the socket to a checked address; the ``Host`` header stays the
    URL's host name.

    Example:
        >>> conn = PinnedHTTPConnection("127.0.0.1", 9, policy=SsrfPolicy())
        >>> conn.connect()
        Traceback (most recent call last):
        ...
        pipeline.net.ssrf.UnsafeUrlError: URL host 127.0.0.1 resolves to 127.0.0.1, a loopback \
address; allow it in the config to use it.
    """

    def __init__(
        self, host: str, port: int, *, policy: SsrfPolicy, timeout: float | None = None
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self.policy = policy

    def connect(self) -> None:
        """Resolve, check every address, connect to a checked one."""
        self.sock = _connect_checked(self.host, self.port, self.policy, self.timeout)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """:class:`PinnedHTTPConnection` for https: TLS SNI and certificate check on the host name.

    The socket goes to a checked address; it is wrapped with
    ``context.wrap_socket(sock, server_hostname=host)``, so the certificate
    must match the URL's host name (with a verifying context), not the address.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        policy: SsrfPolicy,
        context: ssl.SSLContext,
        timeout: float | None = None,
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.policy = policy
        self.tls_context = context

    def connect(self) -> None:
        """Resolve, check every address, connect to a checked one, then TLS on the host name."""
        sock = _connect_checked(self.host, self.port, self.policy, self.timeout)
        try:
            self.sock = self.tls_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


class HttpPoster:
    """POST to one URL over a reused connection.

    Args:
        url: http:// or https:// URL; ``user:password@`` becomes basic auth. Its
            secrets are registered with :func:`pipeline.core.redact.register_secret`.
        connect_timeout_s: seconds to open the TCP (and TLS) connection.
        read_timeout_s: seconds each read of the answer may take.
        ssl_context: for https; the system's default (verifying) context when None.
        policy: for URLs that must not reach private addresses (run-time webhooks):
            every connection resolves the host, refuses unless every address
            passes the policy (a failed POST whose error says why, retried
            later like any other), and connects to a checked address; the
            ``Host`` header and the TLS name stay the URL's host. None (config
            webhooks): a plain connection to whatever the host resolves to.
    """

    def __init__(
        self,
        url: str,
        connect_timeout_s: float,
        read_timeout_s: float,
        ssl_context: ssl.SSLContext | None = None,
        policy: SsrfPolicy | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("The webhook URL must be http:// or https:// with a host.")
        self.url = url
        self.safe_url = endpoint_label(url)
        register_url_secrets(url)
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
        self.policy = policy
        self._conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        timeout = self.connect_timeout_s
        if self.policy is not None and self._https:
            ctx = self._ssl or ssl.create_default_context()
            conn = PinnedHTTPSConnection(
                self._host, self._port, policy=self.policy, context=ctx, timeout=timeout
            )
        elif self.policy is not None:
            conn = PinnedHTTPConnection(self._host, self._port, policy=self.policy, timeout=timeout)
        elif self._https:
            ctx = self._ssl or ssl.create_default_context()
            conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=self.connect_timeout_s, context=ctx
            )
        else:
            conn = http.client.HTTPConnection(
                self._host, self._port, timeout=self.connect_timeout_s
            )
        try:
            conn.connect()
        except BaseException:
            conn.close()
            raise
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
            except UnsafeUrlError as exc:
                self.close()
                return HttpResult(None, error=redact(f"POST {self.safe_url} refused: {exc}"))
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
