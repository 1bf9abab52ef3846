"""Requests of the web page: routing, the token, the replies (see :mod:`pipeline.app.web.server`).

Example:
    >>> host_allowed("127.0.0.1:8780", 8780), host_allowed("evil.example:8780", 8780)
    (True, False)
"""

from __future__ import annotations

import logging
import mimetypes
import time
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson

from pipeline.app.control.topics import RequestRefused
from pipeline.app.prometheus import READ_TIMEOUT_S
from pipeline.app.runner import Pipeline
from pipeline.app.web import actions, pages
from pipeline.app.web.static import STATIC
from pipeline.app.web.view import Query, page_state
from pipeline.core.logs import log_unexpected
from pipeline.core.redact import redact
from sinks.activity.query import picture

log = logging.getLogger("lookout.web")

MAX_BODY = 64 * 1024
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]", "::1")
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
REPORT_CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def host_allowed(host: str | None, port: int) -> bool:
    """Whether a ``Host`` header names this machine's loopback (against DNS rebinding)."""
    if not host:
        return False
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if host.count(":") > 1 and not host.startswith("["):
        name = host  # a bare IPv6 address
    return name in LOOPBACK_NAMES


@dataclass
class WebContext:
    """What every request needs: the pipeline, the store, the token, the reports folder."""

    pipeline: Pipeline
    db: Path | None
    token: str | None
    poll_s: float
    reports: Path | None
    check_host: bool
    port: int = 0


def list_reports(folder: Path | None) -> list[tuple[str, str]]:
    """Report folders (those with an ``index.html``), newest first, with their time."""
    if folder is None or not folder.is_dir():
        return []
    found = [(p.stat().st_mtime, p.name) for p in folder.iterdir() if (p / "index.html").is_file()]
    return [(name, time.strftime("%Y-%m-%d %H:%M", time.localtime(t))) for t, name in
            sorted(found, reverse=True)]  # fmt: skip


def report_file(folder: Path | None, relative: str) -> Path | None:
    """A file inside the reports folder (``None`` when outside it or missing)."""
    if folder is None:
        return None
    root = folder.resolve()
    path = (root / relative).resolve()
    if root not in path.parents or not path.is_file():
        return None
    return path


class Handler(BaseHTTPRequestHandler):
    """One request."""

    server_version = "Lookout"
    sys_version = ""
    timeout = READ_TIMEOUT_S  # a client that stalls or dribbles its request is dropped

    @property
    def ctx(self) -> WebContext:
        """The server's context."""
        return self.server.context  # type: ignore[attr-defined, no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not logged (the page polls); errors are."""

    # ------------------------------------------------------------ replies

    def _send(self, status: int, body: bytes, ctype: str, csp: str = PAGE_CSP,
              headers: dict[str, str] | None = None) -> None:  # fmt: skip
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", csp)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _html(self, status: int, text: str, **kw: Any) -> None:
        self._send(status, text.encode(), "text/html; charset=utf-8", **kw)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, orjson.dumps(data), "application/json")

    def _refuse(self, status: int, title: str, problems: list[str] | None = None) -> None:
        if self._wants_json():
            self._json(status, {"ok": False, "error": title, "problems": problems or []})
        else:
            self._html(status, pages.message_html(status, title, problems or []))

    def _redirect(self, where: str, cookie: str | None = None) -> None:
        headers = {"Location": where}
        if cookie is not None:
            headers["Set-Cookie"] = cookie
        self._send(303, b"", "text/plain", headers=headers)

    def _wants_json(self) -> bool:
        accept = self.headers.get("Accept", "")
        ctype = self.headers.get("Content-Type", "")
        return "application/json" in accept or ctype.startswith("application/json")

    # ------------------------------------------------------------ checks

    def _host_ok(self) -> bool:
        if not self.ctx.check_host or host_allowed(self.headers.get("Host"), self.ctx.port):
            return True
        self._send(421, b"This page answers only at a loopback address.", "text/plain")
        return False

    def _cookie(self) -> str | None:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(self.headers.get("Cookie", ""))
        except CookieError:
            return None
        morsel = jar.get(actions.COOKIE)
        return morsel.value if morsel is not None else None

    def _unlocked(self, form: dict[str, Any] | None = None) -> bool:
        auth = self.headers.get("Authorization", "")
        bearer = auth[7:] if auth.startswith("Bearer ") else None
        field = (form or {}).get("token")
        return actions.authorized(self.ctx.token, bearer=bearer,
                                  form=field if isinstance(field, str) else None,
                                  cookie=self._cookie())  # fmt: skip

    def _body(self) -> dict[str, Any] | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self._refuse(413, f"the request body must be at most {MAX_BODY} bytes")
            return None
        raw = self.rfile.read(length)
        if self.headers.get("Content-Type", "").startswith("application/json"):
            try:
                data = orjson.loads(raw or b"{}")
            except orjson.JSONDecodeError:
                self._refuse(400, "the body is not JSON")
                return None
            if not isinstance(data, dict):
                self._refuse(400, "the body must be a JSON object")
                return None
            return data
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))

    # ------------------------------------------------------------ GET

    def do_HEAD(self) -> None:
        """Like GET without the body."""
        self.do_GET()

    def do_GET(self) -> None:
        """Pages, state, pictures, reports, static files."""
        if not self._host_ok():
            return
        url = urlsplit(self.path)
        path = url.path
        try:
            if path == "/":
                self._page(url.query)
            elif path == "/api/state":
                state = page_state(self.ctx.pipeline, self.ctx.db, Query.from_url(url.query))
                self._json(200, state)
            elif path in STATIC:
                ctype, body = STATIC[path]
                self._send(200, body, ctype)
            elif path.startswith("/picture/") and path.endswith(".jpg"):
                self._picture(path[len("/picture/") : -len(".jpg")])
            elif path in ("/reports", "/reports/"):
                listing = list_reports(self.ctx.reports)
                self._html(200, pages.reports_html(listing, self.ctx.reports is not None))
            elif path.startswith("/reports/"):
                self._report(unquote(path[len("/reports/") :]))
            else:
                self._refuse(404, "not found")
        except Exception as exc:
            log_unexpected(log, f"web: GET {path[:100]} failed", exc)
            self._refuse(500, "the page failed; see the log")

    def _page(self, query: str, flash: str = "", problems: list[str] | None = None,
              status: int = 200) -> None:  # fmt: skip
        args = dict(parse_qsl(query))
        flash = flash or args.get("done", "")[:200]
        state = page_state(self.ctx.pipeline, self.ctx.db, Query.from_url(query))
        text = pages.page_html(state, unlocked=self._unlocked(), writable=bool(self.ctx.token),
                               poll_s=self.ctx.poll_s, flash=flash,
                               problems=problems or [])  # fmt: skip
        self._html(status, text)

    def _picture(self, ident: str) -> None:
        if not ident.isdigit() or self.ctx.db is None:
            self._refuse(404, "no such picture")
            return
        jpeg = picture(self.ctx.db, int(ident))
        if jpeg is None:
            self._refuse(404, "no such picture")
            return
        self._send(200, jpeg, "image/jpeg")

    def _report(self, relative: str) -> None:
        path = report_file(self.ctx.reports, relative)
        if path is None:
            self._refuse(404, "no such report file")
            return
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if ctype.startswith("text/"):
            ctype += "; charset=utf-8"
        self._send(200, path.read_bytes(), ctype, csp=REPORT_CSP)

    # ------------------------------------------------------------ POST

    def do_POST(self) -> None:
        """Unlock, start a watch, cancel a watch."""
        if not self._host_ok():
            return
        path = urlsplit(self.path).path
        form = self._body()
        if form is None:
            return
        if path == "/unlock":
            self._unlock(form)
            return
        if not self.ctx.token:
            self._refuse(403, "this page is read-only: [web] token is not set")
            return
        if not self._unlocked(form):
            self._refuse(403, "a valid token is needed to change anything")
            return
        try:
            self._change(path, form)
        except RequestRefused as err:
            self._refuse(400, err.message, err.problems)
        except Exception as exc:
            text = redact(f"{type(exc).__name__}: {exc}")
            log_unexpected(log, f"web: POST {path[:100]} failed", exc)
            self._refuse(500, "the request failed", [text])

    def _unlock(self, form: dict[str, Any]) -> None:
        token = form.get("token")
        ok = isinstance(token, str) and actions.authorized(self.ctx.token, bearer=None,
                                                           form=token, cookie=None)  # fmt: skip
        if not ok or self.ctx.token is None:
            self._refuse(403, "wrong token")
            return
        cookie = (f"{actions.COOKIE}={actions.session_value(self.ctx.token)}; Path=/; HttpOnly; "
                  "SameSite=Strict")  # fmt: skip
        self._redirect("/", cookie)

    def _change(self, path: str, form: dict[str, Any]) -> None:
        if path == "/watches":
            name = actions.start_watch(self.ctx.pipeline, form)
            self._done({"ok": True, "watch": name, "status": "started"}, f"started {name}")
            return
        parts = path.split("/")
        if len(parts) == 4 and parts[1] == "watches" and parts[3] == "cancel":
            name = unquote(parts[2])
            actions.cancel_watch(self.ctx.pipeline, name)
            self._done({"ok": True, "watch": name, "status": "cancelled"}, f"cancelled {name}")
            return
        self._refuse(404, "not found")

    def _done(self, reply: dict[str, Any], text: str) -> None:
        if self._wants_json():
            self._json(200, reply)
        else:
            self._redirect("/?done=" + text.replace(" ", "+")[:200])
