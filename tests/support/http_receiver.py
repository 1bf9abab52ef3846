"""The one HTTP server of the tests: a real HTTP/1.1 server on loopback that records requests.

Every request (any method) is recorded as a :class:`Received` and answered with a
:class:`Reply`: the next one of ``script``, then ``default``, or whatever the
``respond`` callable returns. A reply can be late (``delay_s``), dribble its body
one byte at a time (``dribble_s``: each read gets a byte, only a total deadline ends
it), go silent after its body (``stall_s``), or be a stream without a length.
``stop()`` and ``start()`` keep the port, so a test can take the server down and up;
``stop()`` also ends every reply that is still waiting, dribbling or stalled.

Example::

    with HttpReceiver([Reply(503, {"Retry-After": "1"})]) as hook:
        post(hook.url, b"{}")                      # answered 503
        post(hook.url, b"{}")                      # answered 200 (the default)
        wait_until(lambda: len(hook.ok()) == 1, 5, "one delivery")
        assert hook.all()[0].headers["content-type"] == "application/json"

    HttpReceiver(respond=lambda req: Reply(body=page(req.path)), tls=server_ctx)
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from tests.support.ports import LOOPBACK, free_port


@dataclass
class Reply:
    """One scripted answer.

    ``body``: the bytes sent (default ``b"ok"``, or 64 bytes when dribbling);
    ``delay_s``: wait before answering (a ``stop()`` meanwhile drops the request
    unanswered and unrecorded); ``dribble_s``: send the headers at once, then the
    body one byte every ``dribble_s`` seconds; ``stall_s``: after the body, keep
    the connection open and silent this long; ``content_length``: False sends no
    length and closes the connection after the body (a live stream).
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    delay_s: float = 0.0
    dribble_s: float = 0.0
    stall_s: float = 0.0
    content_length: bool = True

    def payload(self) -> bytes:
        """The body this reply sends."""
        if self.body is not None:
            return self.body
        return b"o" * 64 if self.dribble_s else b"ok"


@dataclass(frozen=True)
class Received:
    """One request as the server read it (header names in lower case).

    ``at``: the monotonic time its answer began (after the reply's ``delay_s``).
    """

    at: float
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    method: str = "POST"


Responder = Callable[[Received], Reply]


class HttpReceiver:
    """A scripted HTTP/1.1 server on 127.0.0.1 (optionally TLS) that records every request.

    Args:
        script: replies used in order, one per request; then ``default``.
        port: a fixed port (default: a free one), kept across ``stop()``/``start()``.
        path: the path of :attr:`url`.
        respond: computes each reply from the request instead of the script.
        tls: a server-side SSL context: the server speaks HTTPS.
        default: the reply once the script is used up (``Reply()``: 200 ``ok``).
    """

    def __init__(
        self,
        script: list[Reply] | None = None,
        port: int | None = None,
        *,
        path: str = "/hook",
        respond: Responder | None = None,
        tls: ssl.SSLContext | None = None,
        default: Reply | None = None,
    ) -> None:
        self.script = list(script or [])
        self.default = default or Reply()
        self.respond = respond
        self.requests: list[Received] = []
        self.port = port or free_port()
        self.path = path
        self.tls = tls
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._release = threading.Event()

    @property
    def url(self) -> str:
        """The URL of :attr:`path` on this server."""
        return self.url_for(self.path)

    def url_for(self, path: str) -> str:
        """The URL of ``path`` on this server."""
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{LOOPBACK}:{self.port}{path}"

    def start(self) -> Self:
        """Listen (again) on :attr:`port`; returns the receiver."""
        self._release.clear()
        self._server = _Server(self, (LOOPBACK, self.port), _make_handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection; a no-op when stopped."""
        if self._server is None:
            return
        self._release.set()
        self._server.shutdown()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = None

    close = stop

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def all(self) -> list[Received]:
        """Every request recorded so far, in order."""
        with self._lock:
            return list(self.requests)

    def ok(self) -> list[Received]:
        """The requests answered with a 2xx status."""
        return [r for r in self.all() if 200 <= r.status < 300]

    def _reply_to(self, request: Received) -> Reply:
        if self.respond is not None:
            return self.respond(request)
        with self._lock:
            return self.script.pop(0) if self.script else self.default

    def _record(self, request: Received) -> None:
        with self._lock:
            self.requests.append(request)

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` or until ``stop()``; True when stopped."""
        return self._release.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: HttpReceiver, address: tuple[str, int], handler: Any) -> None:
        self.owner = owner
        super().__init__(address, handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        if self.owner.tls is None:
            return sock, addr
        sock.settimeout(5)
        try:
            return self.owner.tls.wrap_socket(sock, server_side=True), addr
        except (ssl.SSLError, OSError):
            sock.close()
            raise

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up or refuse the certificate are part of the tests."""


def _make_handler(owner: HttpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            owner._track(self.connection, add=True)

        def finish(self) -> None:
            owner._track(self.connection, add=False)
            with contextlib.suppress(OSError):
                super().finish()

        def handle(self) -> None:
            with contextlib.suppress(OSError):
                super().handle()

        def _serve(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            seen = Received(time.monotonic(), self.path, headers, body, 0, self.command)
            reply = owner._reply_to(seen)
            if reply.delay_s and owner._wait(reply.delay_s):
                return
            owner._record(
                Received(time.monotonic(), seen.path, headers, body, reply.status, self.command)
            )
            self._answer(reply)

        def _answer(self, reply: Reply) -> None:
            data = reply.payload()
            self.send_response(reply.status)
            for key, value in reply.headers.items():
                self.send_header(key, value)
            if reply.content_length:
                self.send_header("content-length", str(len(data)))
            else:
                self.close_connection = True
            self.end_headers()
            if self.command == "HEAD":
                return
            if not reply.dribble_s:
                self.wfile.write(data)
            else:
                self.close_connection = True
                for i in range(len(data)):
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()
                    if owner._wait(reply.dribble_s):
                        return
            if reply.stall_s:
                self.wfile.flush()
                self.close_connection = True
                owner._wait(reply.stall_s)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
