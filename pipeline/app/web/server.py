"""The local web page's server: the standard library's ``ThreadingHTTPServer``, no framework.

Why the standard library: the page is a handful of routes (one HTML page, one
JSON endpoint, pictures, two forms, the reports folder) on loopback for a few
people at a time; :mod:`http.server` serves that with no dependency, and
:mod:`html` escapes. A framework (Flask, Starlette) would add dependencies and
an async or WSGI stack for nothing the page needs. The metrics server
(:mod:`pipeline.app.prometheus`) is built the same way.

Routes::

    GET  /                         the page (?q=words&camera=NAME searches the timeline)
    GET  /api/state                the same as JSON (what the page polls)
    GET  /picture/<id>.jpg         a timeline entry's picture
    GET  /reports, /reports/<dir>/<file>   replay reports in [web] reports
    GET  /static/app.js|style.css
    POST /unlock                   token -> session cookie
    POST /watches                  start a watch (form or JSON; token needed)
    POST /watches/<name>/cancel    cancel a watch (token needed)

Safety: bound to 127.0.0.1 by default; while bound to loopback, requests
whose ``Host`` is not a loopback name are refused (DNS rebinding); every
response carries a Content-Security-Policy (scripts only from ``/static``,
no framing) and ``nosniff``; bodies are limited to 64 KiB.

Example:
    >>> server = WebServer(pipeline, db, WebConfig(enabled=True, port=0)).start()  # doctest: +SKIP
    >>> server.url  # doctest: +SKIP
    'http://127.0.0.1:41234/'
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

from pipeline.app.runner import Pipeline
from pipeline.app.web.handler import Handler, WebContext
from pipeline.core.config import WebConfig
from pipeline.core.redact import register_secret

log = logging.getLogger("lookout.web")


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    context: WebContext


class WebServer:
    """Serve the page for a running pipeline.

    Args:
        pipeline: the running pipeline (cameras, watches, start and cancel).
        db: the activity store's file (``None``: the store is off).
        config: the ``[web]`` table.
        reports: the replay reports folder (absolute), if any.

    Raises:
        OSError: the address cannot be bound (``start``).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        db: Path | None,
        config: WebConfig,
        reports: Path | None = None,
    ) -> None:
        token = config.resolved_token()
        if token:
            register_secret(token)
        self.config = config
        self.context = WebContext(
            pipeline=pipeline,
            db=db,
            token=token,
            poll_s=config.poll_s,
            reports=reports,
            check_host=_is_loopback(config.host),
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port it listens on (after ``start``)."""
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The page's address."""
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        return f"http://{host}:{self.port}/"

    def start(self) -> WebServer:
        """Bind and serve on a thread of its own."""
        server = _Server((self.config.host, self.config.port), Handler)
        server.context = self.context
        self.context.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="web", daemon=True)
        self._thread.start()
        mode = "start and cancel with the token" if self.context.token else "read-only (no token)"
        log.info("web: the page is at %s (%s)", self.url, mode)
        return self

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = None
