"""The web page over real HTTP: content, escaping, the token, Host checks, pictures, reports."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from pipeline.app.process import App
from tests.support.model_server import ScriptedModelServer
from tests.support.waiting import wait_until
from tests.support.web_app import HTML_REASONING, TOKEN, answer


def request(app: App, method: str, path: str, body: Any = None, *,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    assert app.services is not None and app.services.web is not None
    conn = http.client.HTTPConnection("127.0.0.1", app.services.web.port, timeout=10)
    hdrs = dict(headers or {})
    data: bytes | None = None
    if isinstance(body, dict) and hdrs.get("Content-Type") == "application/json":
        data = json.dumps(body).encode()
    elif isinstance(body, dict):
        data = urlencode(body).encode()
        hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _looked(app: App) -> bool:
    status, _, body = request(app, "GET", "/api/state")
    state = json.loads(body)
    return status == 200 and any(r["kind"] == "look" for r in state["timeline"])


def test_the_page_shows_cameras_watches_and_looks_with_everything_escaped(
    app_factory: Callable[..., App], model_server: ScriptedModelServer
) -> None:
    model_server.default = answer()
    app = app_factory(model_server)
    wait_until(lambda: _looked(app), 30, "a look in the timeline", interval=0.1)
    status, headers, body = request(app, "GET", "/")
    page = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in headers["content-security-policy"]
    assert 'data-camera="walkway"' in page and 'data-watch="heron"' in page
    # the model's reasoning is text, never markup
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in page
    assert "<script>alert" not in page and "<b>bold" not in page
    state = json.loads(request(app, "GET", "/api/state")[2])
    look = next(r for r in state["timeline"] if r["kind"] == "look")
    assert look["text"] == HTML_REASONING and look["has_picture"]
    pic = request(app, "GET", f"/picture/{look['id']}.jpg")
    assert pic[0] == 200 and pic[1]["content-type"] == "image/jpeg" and pic[2][:2] == b"\xff\xd8"
    # search by a word of the reasoning
    hits = json.loads(request(app, "GET", "/api/state?q=heron")[2])["timeline"]
    assert hits and all("heron" in h["text"] for h in hits)
    assert json.loads(request(app, "GET", "/api/state?q=zebra")[2])["timeline"] == []
    searched = request(app, "GET", "/?q=heron")[2].decode()
    assert 'value="heron"' in searched and "kind-look" in searched


def test_changes_without_the_token_are_refused(
    app_factory: Callable[..., App], model_server: ScriptedModelServer
) -> None:
    app = app_factory(model_server)
    body = {"name": "gate", "camera": "walkway", "condition": "the gate is open"}
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        status, _, text = request(app, "POST", "/watches", body, headers=headers)
        assert status == 403, text
    assert request(app, "POST", "/watches", {**body, "token": "nope"})[0] == 403
    assert request(app, "POST", "/watches/heron/cancel", {})[0] == 403
    assert request(app, "POST", "/unlock", {"token": "nope"})[0] == 403
    assert "gate" not in app.pipeline.watches and "heron" in app.pipeline.watches


def test_start_and_cancel_with_the_token_validated_like_the_control(
    app_factory: Callable[..., App], model_server: ScriptedModelServer
) -> None:
    app = app_factory(model_server)
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    status, _, text = request(app, "POST", "/watches",
                              {"name": "gate", "camera": "nowhere", "condition": "x"},
                              headers=auth)  # fmt: skip
    reply = json.loads(text)
    assert status == 400 and "watch.camera: unknown camera 'nowhere'; known: walkway" in reply[
        "problems"]  # fmt: skip
    status, _, text = request(app, "POST", "/watches", {"name": "heron", "camera": "walkway",
                                                        "condition": "a heron"}, headers=auth)  # fmt: skip
    assert status == 400 and "defined in the config file" in text.decode()
    status, _, text = request(app, "POST", "/watches", {"name": "gate", "camera": "walkway",
                                                        "condition": "the gate is open",
                                                        "labels": "person, car"},
                              headers=auth)  # fmt: skip
    assert status == 200, text
    assert app.pipeline.watches["gate"].config.labels == ["person", "car"]
    # the unlock form sets a session cookie; a form post with it cancels
    status, headers, _ = request(app, "POST", "/unlock", {"token": TOKEN})
    assert status == 303 and "HttpOnly" in headers["set-cookie"]
    assert TOKEN not in headers["set-cookie"]
    cookie = headers["set-cookie"].split(";")[0]
    status, headers, _ = request(app, "POST", "/watches/gate/cancel", {},
                                 headers={"Cookie": cookie})  # fmt: skip
    assert status == 303 and headers["location"].startswith("/?done=cancelled")
    assert "gate" not in app.pipeline.watches


def test_a_page_without_a_token_is_read_only(
    app_factory: Callable[..., App], model_server: ScriptedModelServer
) -> None:
    app = app_factory(model_server, token=None)
    assert "read-only" in request(app, "GET", "/")[2].decode()
    status, _, _ = request(app, "POST", "/watches", {"name": "g", "camera": "walkway",
                                                     "condition": "x", "token": ""})  # fmt: skip
    assert status == 403


def test_only_loopback_host_names_are_answered(
    app_factory: Callable[..., App], model_server: ScriptedModelServer
) -> None:
    app = app_factory(model_server)
    assert request(app, "GET", "/", headers={"Host": "evil.example:80"})[0] == 421
    assert request(app, "GET", "/", headers={"Host": "localhost"})[0] == 200


def test_replay_reports_are_listed_and_served_and_nothing_outside(
    app_factory: Callable[..., App], model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    report = tmp_path / "reports" / "walkway-run"
    report.mkdir(parents=True)
    (report / "index.html").write_text("<html><body><h1>Replay <i>report</i></h1></body></html>")
    app = app_factory(model_server)
    listing = request(app, "GET", "/reports")[2].decode()
    assert 'href="/reports/walkway-run/index.html"' in listing
    status, headers, body = request(app, "GET", "/reports/walkway-run/index.html")
    assert status == 200 and b"Replay <i>report</i>" in body
    assert "script-src" not in headers["content-security-policy"]  # no scripts at all
    assert request(app, "GET", "/reports/../pipeline.toml")[0] == 404
    assert request(app, "GET", "/reports/%2e%2e/pipeline.toml")[0] == 404
