"""The one HTTP client: keep-alive pool, a total deadline per request, optional address pinning.

Used by the model backends (JSON to one base URL), the webhook sink (POSTs to
one URL, pinned to checked addresses for URLs given at run time) and the
Frigate snapshot source. Built on :mod:`http.client` (httpx would add a
dependency for features we do not use: HTTP/2, async, cookies), which never
follows redirects: a 3xx comes back as an answer like any other.

Bounds: ``connect_timeout_s`` for each TCP (and TLS) connect, ``read_timeout_s``
for each socket read, and ``request_timeout_s`` for the whole request: an alarm
(:mod:`pipeline.net.deadline`) shuts the socket down when it is up, so a server
that sends its answer one byte a second, or stalls half way, ends the request
at the deadline with a :class:`TransportError` (``timeout=True``).
:meth:`HttpClient.close` with ``abort=True`` ends requests in flight at once
(shutdown). Name resolution (``getaddrinfo``) is the one step no alarm can cut.

Messages name only the scheme, host, port and the request path below the base
URL (:attr:`HttpClient.label`); with ``secret_path=True`` (webhooks) the URL's
path and query are registered as secrets and never shown.

Example:
    >>> client = HttpClient("http://127.0.0.1:9/v1", connect_timeout_s=0.5, read_timeout_s=1)
    >>> try:
    ...     client.request("GET", "/models")
    ... except TransportError as err:
    ...     print("unreachable")
    unreachable
    >>> client.close()
"""

from __future__ import annotations

import base64
import http.client
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson

from pipeline.core.redact import redact, redact_url, register_secret
from pipeline.net.connections import (
    PinnedHTTPConnection,
    PinnedHTTPSConnection,
    dropped,
    read_body,
    tune,
)
from pipeline.net.deadline import ALARMS, Flight, within
from pipeline.net.ssrf import SsrfPolicy, UnsafeUrlError
from pipeline.net.urls import endpoint_label, register_url_secrets

_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class TransportError(Exception):
    """The request did not get a complete HTTP response (refused, reset, timed out, bad TLS).

    Attributes:
        timeout: whether a timeout or the request's deadline ended it.
    """

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(redact(message))
        self.timeout = timeout


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A complete HTTP response.

    Attributes:
        status: the status code.
        headers: header names in lower case.
        body: the body bytes (at most the client's ``max_body``).
        complete: False when the body was longer than ``max_body`` and cut.
    """

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    complete: bool = True

    def json(self) -> Any:
        """Parse the body as JSON (``ValueError`` when it is not JSON)."""
        return orjson.loads(self.body)

    def error_text(self, limit: int = 300) -> str:
        """Return a short, redacted text of an error body (its ``error.message`` when JSON)."""
        text = self.body[:4096].decode("utf-8", "replace")
        try:
            data = orjson.loads(self.body)
        except ValueError:
            data = None
        if isinstance(data, dict):
            err = data.get("error", data.get("detail", data.get("message")))
            if isinstance(err, dict):
                err = err.get("message", err)
            if err is not None:
                text = str(err)
        return redact(" ".join(text.split()))[:limit]


class HttpClient:
    """HTTP(S) to one URL, with a pool of kept-alive connections and a deadline per request.

    Thread-safe: each request takes a connection from the pool (or opens one)
    and puts it back when the response was read completely and the server
    keeps the connection open.

    Args:
        url: ``http(s)://[user:password@]host[:port][/prefix]``; request paths are
            appended; ``user:password`` becomes Basic auth (registered as secrets).
        headers: sent with every request (may hold secrets: never logged).
        connect_timeout_s: seconds to open a TCP (and TLS) connection.
        read_timeout_s: seconds any single read may take.
        request_timeout_s: seconds the whole request may take, from the first
            connect attempt to the last byte of the answer (None: no total bound).
        pool_size: idle connections kept.
        policy: connect only to addresses this SSRF policy allows, checked at each
            connect (run-time webhook URLs); a refusal is a :class:`TransportError`.
        ssl_context: for https; the system's default (verifying) context when None.
        max_body: read at most this many bytes of an answer (None: all).
        secret_path: the URL's path and query are secret (webhooks): register
            them and name only scheme, host and port in messages.
        retry_stale: when a kept-alive connection turns out closed by the server
            as it is reused, send the request again once on a new connection
            (only for requests that may be repeated: webhooks carry an id).

    Raises:
        ValueError: for a URL that is not http(s) with a host, or a timeout that is not positive.
    """

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 60.0,
        request_timeout_s: float | None = None,
        pool_size: int = 4,
        policy: SsrfPolicy | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_body: int | None = None,
        secret_path: bool = False,
        retry_stale: bool = False,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"Expected an http(s) URL with a host, got {endpoint_label(url)!r}.")
        timeouts = (connect_timeout_s, read_timeout_s, request_timeout_s or 1.0)
        if min(timeouts) <= 0:
            raise ValueError("Timeouts must be positive.")
        if secret_path:
            register_url_secrets(url)
        self._headers = {"Accept": "application/json", **(headers or {})}
        if parts.username is not None or parts.password is not None:
            password = unquote(parts.password or "")
            register_secret(password)
            cred = f"{unquote(parts.username or '')}:{password}".encode()
            self._headers.setdefault("Authorization", "Basic " + base64.b64encode(cred).decode())
            register_secret(self._headers["Authorization"])
        self.base_url = redact_url(url.rstrip("/"))
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = f"[{self._host}]" if ":" in self._host else self._host
        root = f"{parts.scheme}://{host}:{self._port}"
        self.label = endpoint_label(url) if secret_path else root + self._prefix
        self._root_label = endpoint_label(url) if secret_path else root
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.request_timeout_s = request_timeout_s
        self.policy = policy
        self._ssl = ssl_context
        self._max_body = max_body
        self._retry_stale = retry_stale
        self._pool_size = max(1, pool_size)
        self._idle: list[http.client.HTTPConnection] = []
        self._flights: set[Flight] = set()
        self._lock = threading.Lock()
        self._closed = False

    @property
    def host_port(self) -> str:
        """``host:port`` (for messages)."""
        return f"{self._host}:{self._port}"

    def _new_connection(self, timeout: float) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        ctx = (self._ssl or ssl.create_default_context()) if self._https else None
        if self.policy is not None and ctx is not None:
            conn = PinnedHTTPSConnection(
                self._host, self._port, policy=self.policy, context=ctx, timeout=timeout
            )
        elif self.policy is not None:
            conn = PinnedHTTPConnection(self._host, self._port, policy=self.policy, timeout=timeout)
        elif ctx is not None:
            conn = http.client.HTTPSConnection(self._host, self._port, timeout=timeout, context=ctx)
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        try:
            conn.connect()
        except BaseException:
            conn.close()
            raise
        tune(conn)
        return conn

    def _take(self) -> http.client.HTTPConnection | None:
        """Return an idle connection the server has not closed meanwhile, if any."""
        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn = self._idle.pop()
            if not dropped(conn):
                return conn
            conn.close()

    def _give_back(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self._pool_size:
                self._idle.append(conn)
                return
        conn.close()

    def request(
        self,
        method: str,
        path: str = "",
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        root: bool = False,
        read_timeout_s: float | None = None,
        connect_timeout_s: float | None = None,
        request_timeout_s: float | None = None,
    ) -> HttpResponse:
        """Send one request and read the whole response (within the deadline).

        Args:
            method: ``GET``, ``POST``...
            path: appended to the base URL's path (or from the root with ``root=True``);
                empty: the URL itself, with its query.
            body: JSON-able object, or ``bytes`` sent as they are, or ``None``.
            headers: more headers for this request (override the client's).
            root: the path is from the server root (llama.cpp's ``/props``, ``/health``).
            read_timeout_s: override of the read timeout.
            connect_timeout_s: override of the connect timeout.
            request_timeout_s: override of the total deadline.

        Returns:
            The response, whatever its status (3xx included: redirects are not followed).

        Raises:
            TransportError: no complete HTTP response (refused, reset, timeout,
                deadline, address refused by the policy, aborted by ``close``).
            RuntimeError: the client is closed.
        """
        if self._closed:
            raise RuntimeError("This HTTP client is closed.")
        target = path if root else (self._prefix + path if path else self._target)
        where = f"{method} {(self._root_label if root else self.label)}{path}"
        payload = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
        extra = {k.lower(): v for k, v in (headers or {}).items()}
        all_headers = {k: v for k, v in self._headers.items() if k.lower() not in extra}
        all_headers.update(extra)
        if payload is not None and "content-type" not in extra:
            all_headers["Content-Type"] = "application/json"
        total = request_timeout_s or self.request_timeout_s
        deadline = time.monotonic() + total if total else None
        limits = (
            connect_timeout_s or self.connect_timeout_s,
            read_timeout_s or self.read_timeout_s,
        )
        for attempt in (1, 2):
            conn = self._take()
            try:
                return self._exchange(conn, method, target, payload, all_headers, limits, deadline)
            except _Retry:
                if attempt == 2:
                    raise TransportError(
                        f"{where} failed: the server closed the connection"
                    ) from None
            except _Failed as failed:
                raise failed.error(where, total) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _exchange(
        self,
        conn: http.client.HTTPConnection | None,
        method: str,
        target: str,
        payload: bytes | None,
        headers: dict[str, str],
        limits: tuple[float, float],
        deadline: float | None,
    ) -> HttpResponse:
        """One try on ``conn`` (a new connection when None), under the deadline's alarm."""
        flight = Flight()
        alarm = ALARMS.arm(deadline, flight.expire) if deadline is not None else None
        with self._lock:
            self._flights.add(flight)
        reused = conn is not None
        try:
            if conn is None:
                conn = self._new_connection(within(limits[0], deadline))
            flight.attach(conn)
            if conn.sock is not None:
                conn.sock.settimeout(within(limits[1], deadline))
            conn.request(method, target, body=payload, headers=headers)
            resp = conn.getresponse()
            data = read_body(resp, self._max_body)
            if not flight.finish():  # the deadline or an abort cut the answer short
                raise OSError("cut short")
        except (http.client.HTTPException, OSError, UnsafeUrlError) as exc:
            if conn is not None:
                conn.close()
            stale = reused and self._retry_stale and isinstance(exc, _STALE)
            if stale and flight.finish():
                raise _Retry from None
            state = flight.state
            if isinstance(exc, TimeoutError) and deadline and time.monotonic() >= deadline - 0.05:
                state = "expired"  # the read timeout was cut to the deadline and came first
            raise _Failed(state, exc) from None
        finally:
            if alarm is not None:
                ALARMS.disarm(alarm)
            with self._lock:
                self._flights.discard(flight)
        complete = resp.isclosed()
        if resp.will_close or not complete:
            conn.close()
        else:
            self._give_back(conn)
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        return HttpResponse(resp.status, hdrs, data, complete)

    def close(self, *, abort: bool = False) -> None:
        """Close every idle connection; later requests raise ``RuntimeError``.

        Args:
            abort: also end the requests in flight now (they raise
                :class:`TransportError`); otherwise they finish.
        """
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            flights = list(self._flights) if abort else []
        for conn in idle:
            conn.close()
        for flight in flights:
            flight.abort()

    def reopen(self) -> None:
        """Allow requests again after :meth:`close`."""
        with self._lock:
            self._closed = False


class _Retry(Exception):
    """Internal: a reused connection turned out closed; try once more on a new one."""


class _Failed(Exception):
    """Internal: one try failed; ``state`` says whether the deadline or an abort cut it."""

    def __init__(self, state: str, exc: BaseException) -> None:
        super().__init__(state)
        self.state = state
        self.exc = exc

    def error(self, where: str, total: float | None) -> TransportError:
        """The :class:`TransportError` to raise, its text free of secrets."""
        exc = self.exc
        if self.state == "expired":
            return TransportError(
                f"{where} got no complete answer within {total:g} s (request_timeout_s)",
                timeout=True,
            )
        if self.state == "aborted":
            return TransportError(f"{where} aborted: the client is closing")
        if isinstance(exc, UnsafeUrlError):
            return TransportError(f"{where} refused: {exc}")
        if isinstance(exc, TimeoutError):
            return TransportError(f"{where} timed out ({exc})", timeout=True)
        if isinstance(exc, ssl.SSLError):
            return TransportError(f"{where} failed: TLS error: {exc.reason or exc}")
        return TransportError(f"{where} failed: {type(exc).__name__}: {exc}")
