"""A vision sidecar over real HTTP for tests: ``POST /describe`` answers from a script.

Each request takes the next ``(status, json_body)`` of ``script`` (the last one
repeats), and is recorded (path, JSON body).

Example::

    with Sidecar([(200, {"description": "a cat"})]) as car:
        url = car.url("/describe")
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from tests.support.ports import LOOPBACK


class Sidecar:
    """A scripted sidecar on a free loopback port."""

    def __init__(self, script: list[tuple[int, Any]]) -> None:
        self.script = list(script)
        self.requests: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        car = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                with car._lock:
                    car.requests.append((self.path, body))
                    status, answer = car.script[0] if len(car.script) == 1 else car.script.pop(0)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/describe") -> str:
        """The sidecar's URL for ``path``."""
        return f"http://{LOOPBACK}:{self.server.server_address[1]}{path}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
