"""HTTP connections for :mod:`pipeline.net.http`: address pinning, idle checks, socket tuning.

:class:`PinnedHTTPConnection` and :class:`PinnedHTTPSConnection` resolve the
host at every connect, refuse unless every address passes an
:class:`~pipeline.net.ssrf.SsrfPolicy`, and connect to a checked address, so
DNS rebinding cannot reach a private address after the first check.

Example:
    >>> conn = PinnedHTTPConnection("127.0.0.1", 9, policy=SsrfPolicy())
    >>> conn.connect()
    Traceback (most recent call last):
    ...
    pipeline.net.ssrf.UnsafeUrlError: URL host 127.0.0.1 resolves to 127.0.0.1, a loopback \
address; allow it in the config to use it.
"""

from __future__ import annotations

import contextlib
import http.client
import select
import socket
import ssl

from pipeline.net.ssrf import SsrfPolicy

_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


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
            return socket.create_connection((addr, port), timeout)
        except OSError as exc:
            error = exc
    raise error or OSError(f"no address of {host} accepted the connection")


class PinnedHTTPConnection(http.client.HTTPConnection):
    """An :class:`http.client.HTTPConnection` that connects only to addresses its policy allows.

    Every ``connect()`` resolves the host with the policy's resolver, refuses
    unless every address passes (:meth:`pipeline.net.ssrf.SsrfPolicy.addresses`),
    and connects to a checked address (no DNS rebinding between check and
    connect); the ``Host`` header stays the URL's host name.

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
    """:class:`PinnedHTTPConnection` for https: TLS SNI and certificate check on the host name."""

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


def dropped(conn: http.client.HTTPConnection) -> bool:
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


def tune(conn: http.client.HTTPConnection) -> None:
    """No Nagle delay between headers and body (as urllib3), and quick ACKs.

    Servers that write the headers and the body separately without TCP_NODELAY
    (Python's http.server, some C++ servers) otherwise wait for our delayed ACK
    (about 40 ms) before sending the body: that doubled a 50 ms answer's latency.
    """
    if conn.sock is None:
        return
    with contextlib.suppress(OSError):  # not every socket family has them
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if _TCP_QUICKACK is not None:
            conn.sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)


def read_body(resp: http.client.HTTPResponse, limit: int | None) -> bytes:
    """Read the body, or its first ``limit`` bytes (the response stays open past them).

    Raises:
        http.client.IncompleteRead: the connection ended before the announced length.
    """
    if limit is None:
        return resp.read()
    data = bytearray()
    while len(data) < limit:
        chunk = resp.read(limit - len(data))
        if not chunk:
            if resp.length:  # EOF before Content-Length was reached (read(amt) does not raise)
                raise http.client.IncompleteRead(bytes(data), resp.length)
            break
        data += chunk
    return bytes(data)
