"""Webhook URLs carry secrets (password, path token): none reaches logs, errors or listings."""

from __future__ import annotations

import logging
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.core.redact import redact
from pipeline.net.http import HttpClient, TransportError
from pipeline.net.urls import endpoint_label
from sinks.outbox import Outbox, list_events
from sinks.webhook import WebhookSink
from tests.support.events import make_alert
from tests.support.http_receiver import HttpReceiver, Reply
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def secret_url(host_port: str) -> tuple[str, list[str]]:
    """A Discord-like URL with a password and a path token, and the parts that must not leak."""
    password = f"pw-{uuid.uuid4().hex[:10]}"
    token = f"Tok{uuid.uuid4().hex}"
    path = f"/api/webhooks/{uuid.uuid4().int % 10**18:018d}/{token}"
    return f"http://bot:{password}@{host_port}{path}", [password, token, path, "/api/webhooks"]


def assert_clean(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text, secret


@pytest.fixture
def make_sink(sink_factory: Callable[..., WebhookSink]) -> Callable[..., WebhookSink]:
    def factory(url: str, **kw: Any) -> WebhookSink:
        kw.setdefault("backoff_max_s", 0.2)
        return sink_factory(url, **kw)

    return factory


def test_endpoint_label_keeps_only_scheme_host_and_port() -> None:
    assert endpoint_label("https://a:b@hooks.slack.com/services/T0/B0/XYZ") == (
        "https://hooks.slack.com/..."
    )
    assert endpoint_label("http://ha.local:8123/api/webhook/garage-id") == (
        "http://ha.local:8123/..."
    )
    assert endpoint_label("https://example.com/") == "https://example.com"
    assert endpoint_label("https://example.com?token=abc") == "https://example.com/..."
    assert endpoint_label("http://[::1]:9/x") == "http://[::1]:9/..."


def test_outbox_list_cli_prints_no_url_secret(tmp_path: Path) -> None:
    url, secrets = secret_url("discord.com")
    outbox = tmp_path / "outbox.sqlite3"
    with Outbox(outbox) as box:
        box.add("hook", url, b"{}", "application/json", now=0.0, status="dead", error="HTTP 404")
    config = tmp_path / "pipeline.toml"
    config.write_text(
        f'[cameras.front]\nurl = "rtsp://127.0.0.1:9/x"\n\n'
        f'[sinks.hook]\ntype = "webhook"\nurl = "{url}"\noutbox = "{outbox}"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "outbox", "list", "--status", "all", "-c", str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert_clean(done.stdout + done.stderr, secrets)
    listed = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert [e["url"] for e in listed] == ["http://discord.com/..."]
    assert_clean(orjson.dumps(list_events(outbox, status=None)).decode(), secrets)


def test_path_token_and_password_never_in_logs_errors_or_outbox(
    receiver_factory: Callable[..., HttpReceiver],
    make_sink: Callable[..., WebhookSink],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    rec = receiver_factory()
    url, secrets = secret_url(f"127.0.0.1:{rec.port}")
    token_path = secrets[2]
    rec.script = [
        Reply(500),
        Reply(302, {"Location": f"{token_path}/moved"}),  # a redirect back to the token path
        Reply(410),
    ]
    sink = make_sink(url)
    sink.send_alert(make_alert(1))
    wait_until(lambda: sink.stats().disabled is not None, what="the 410")
    sink.send_alert(make_alert(2))  # stored as a dead letter, logged
    assert [r.path for r in rec.all()] == [token_path] * 3  # the token did reach the receiver
    texts = [
        caplog.text,
        str(sink.stats()),
        orjson.dumps(list_events(sink.config.outbox, status=None)).decode(),
        sink.safe_url,
    ]
    for text in texts:
        assert_clean(text, secrets)
    assert f"127.0.0.1:{rec.port}/..." in caplog.text  # the log still says which endpoint
    assert "redirect to" in caplog.text


def test_url_secrets_are_registered_for_any_error_text() -> None:
    url, secrets = secret_url("127.0.0.1:9")
    client = HttpClient(url, connect_timeout_s=0.5, read_timeout_s=0.5, secret_path=True)
    try:
        with pytest.raises(TransportError) as failed:
            client.request("POST", body=b"{}")
        assert_clean(str(failed.value), secrets)
        assert "127.0.0.1:9/..." in str(failed.value)
        # A library error that quotes the URL in full is cleaned by redact().
        assert_clean(redact(f"InvalidURL: {url} and {secrets[1]}"), secrets)
    finally:
        client.close()
