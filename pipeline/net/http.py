"""A small keep-alive HTTP client for JSON APIs, on the standard library.

``http.client`` is enough here: one host per client, JSON bodies, separate
connect and read timeouts, and a pool of kept-alive connections no larger than
the backend's concurrency limit. (httpx would add a dependency for features we
do not use: HTTP/2, async, redirects, cookies.)

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

import contextlib
import http.client
import select
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from pipeline.core.redact import redact, redact_url


class TransportError(Exception):
    """The request did not get an HTTP response (refused, reset, timed out, bad TLS).

    Attributes:
        timeout: whether it was a timeout.
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
        body: the body bytes.
    """

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

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


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Tell whether an idle kept-alive connection was closed (or sent junk) by the server.

    An idle HTTP/1.1 connection must not be readable: readable means EOF or
    stray bytes, so it cannot be reused. (urllib3 checks the same way.)
    """
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _quickack(conn: http.client.HTTPConnection) -> None:
    """Ask Linux to acknowledge the response's first segment at once.

    Servers that write the headers and the body separately without TCP_NODELAY
    (Python's http.server, some C++ servers) otherwise wait for our delayed ACK
    (about 40 ms) before sending the body: that doubled a 50 ms answer's latency.
    """
    if _TCP_QUICKACK is not None and conn.sock is not None:
        with contextlib.suppress(OSError):
            conn.sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)


_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


class HttpClient:
    """JSON over HTTP(S) to one base URL, with a pool of kept-alive connections.

    Thread-safe: each request takes a connection from the pool (or opens one)
    and puts it back when the response was read completely and the server
    keeps the connection open.

    Args:
        base_url: ``http(s)://host[:port][/prefix]``; request paths are appended.
        headers: sent with every request (may hold secrets: never logged).
        connect_timeout_s: seconds to open a TCP (and TLS) connection.
        read_timeout_s: seconds any single read may take.
        pool_size: idle connections kept.

    Raises:
        ValueError: for a URL that is not http(s) with a host.
    """

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        *,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 60.0,
        pool_size: int = 4,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"Expected an http(s) URL with a host, got {redact_url(base_url)!r}.")
        if connect_timeout_s <= 0 or read_timeout_s <= 0:
            raise ValueError("Timeouts must be positive.")
        self.base_url = base_url.rstrip("/")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._headers = {"Accept": "application/json", **(headers or {})}
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self._pool_size = max(1, pool_size)
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._closed = False

    @property
    def host_port(self) -> str:
        """``host:port`` (for messages)."""
        return f"{self._host}:{self._port}"

    def _new_connection(self, connect_timeout: float) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        if self._https:
            conn = http.client.HTTPSConnection(
                self._host,
                self._port,
                timeout=connect_timeout,
                context=ssl.create_default_context(),
            )
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=connect_timeout)
        conn.connect()
        if conn.sock is not None:  # no Nagle delay between headers and body (as urllib3)
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _take(self) -> http.client.HTTPConnection | None:
        """Return an idle connection the server has not closed meanwhile, if any."""
        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn = self._idle.pop()
            if not _dropped(conn):
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
        path: str,
        body: Any = None,
        *,
        root: bool = False,
        read_timeout_s: float | None = None,
        connect_timeout_s: float | None = None,
    ) -> HttpResponse:
        """Send one request and read the whole response.

        Args:
            method: ``GET`` or ``POST``.
            path: appended to the base URL's path (or to the root with ``root=True``).
            body: JSON-able object, or ``bytes`` sent as they are, or ``None``.
            root: the path is from the server root (llama.cpp's ``/props``, ``/health``).
            read_timeout_s: override of the read timeout.
            connect_timeout_s: override of the connect timeout.

        Returns:
            The response, whatever its status.

        Raises:
            TransportError: no HTTP response (connection refused/reset, timeout).
            RuntimeError: the client is closed.
        """
        if self._closed:
            raise RuntimeError("This HTTP client is closed.")
        url_path = path if root else self._prefix + path
        payload = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
        headers = dict(self._headers)
        if payload is not None:
            headers["Content-Type"] = "application/json"
        read_timeout = read_timeout_s or self.read_timeout_s
        connect_timeout = connect_timeout_s or self.connect_timeout_s
        conn = self._take()
        try:
            if conn is None:
                conn = self._new_connection(connect_timeout)
            if conn.sock is not None:
                conn.sock.settimeout(read_timeout)
            conn.request(method, url_path, body=payload, headers=headers)
            _quickack(conn)
            resp = conn.getresponse()
            data = resp.read()
        except TimeoutError as exc:
            if conn is not None:
                conn.close()
            raise TransportError(
                f"{method} {self.host_port}{url_path} timed out ({exc})", timeout=True
            ) from None
        except (http.client.HTTPException, OSError) as exc:
            if conn is not None:
                conn.close()
            raise TransportError(
                f"{method} {self.host_port}{url_path} failed: {type(exc).__name__}: {exc}"
            ) from None
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        if resp.will_close:
            conn.close()
        else:
            self._give_back(conn)
        return HttpResponse(resp.status, hdrs, data)

    def close(self) -> None:
        """Close every idle connection; requests in flight finish, later ones raise."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def reopen(self) -> None:
        """Allow requests again after :meth:`close`."""
        with self._lock:
            self._closed = False
