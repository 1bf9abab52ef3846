"""The notify sink against real receivers: an SMTP server, ntfy- and JSON-shaped HTTP servers.

Each HTTP receiver is checked the way its service documents the request:

- ntfy (https://docs.ntfy.sh/publish/): "Publish as JSON" is a POST to the
  server's root with ``{"topic", "title", "message"}``; "Attach local file" is a
  PUT or POST of the file's bytes to ``/<topic>`` with the file name in
  ``Filename``/``X-Filename`` or the ``filename`` query parameter, and the title
  and message in headers or the ``title``/``message`` query parameters.
- Apprise's JSON service (``json://``, https://github.com/caronc/apprise/wiki/Notify_Custom_JSON):
  a POST of ``{"version": "1.0", "title", "message", "type", "attachments":
  [{"filename", "base64", "mimetype"}]}``.
"""

from __future__ import annotations

import base64
import io
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from pipeline.core.config import NotifySinkConfig
from pipeline.core.redact import RedactingFilter
from sinks.apprise_delivery import DeadlineRunner, DeliveryTimeout
from sinks.notify import NotifySink, RateWindow
from sinks.outbox import list_events
from tests.support.events import make_alert
from tests.support.http_receiver import HttpReceiver, Received, Reply
from tests.support.smtp import SmtpReceiver
from tests.support.waiting import wait_until

JPEG = b"\xff\xd8\xff\xe0 a tiny stand-in for a JPEG \xff\xd9"


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as server:
        yield server


@pytest.fixture
def notify_factory(tmp_path: Path) -> Iterator[Callable[..., NotifySink]]:
    """Open notify sinks named ``phone`` with fast test timings; all are closed afterwards."""
    made: list[NotifySink] = []

    def factory(urls: list[str], **kw: Any) -> NotifySink:
        clock = kw.pop("clock", time.time)
        kw.setdefault("outbox", tmp_path / "outbox.sqlite3")
        kw.setdefault("backoff_initial_s", 0.05)
        kw.setdefault("backoff_max_s", 0.5)
        kw.setdefault("request_timeout_s", 5.0)
        sink = NotifySink("phone", NotifySinkConfig(urls=urls, **kw), poll_s=0.1, clock=clock)
        made.append(sink)
        sink.open()
        return sink

    yield factory
    for sink in made:
        sink.close()


def mailto(smtp: SmtpReceiver) -> str:
    return f"mailto://{smtp.host}:{smtp.port}?from=lookout@example.com&to=me@example.com"


def query(r: Received) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(r.path).query).items()}


def ntfy_publish(r: Received) -> dict[str, Any]:
    """The fields of an ntfy publish request, from headers, query or JSON as ntfy reads them."""
    q = query(r)
    h = r.headers
    if r.headers.get("content-type", "").startswith("application/json"):
        return dict(orjson.loads(r.body))
    return {
        "topic": urlsplit(r.path).path.strip("/"),
        "title": h.get("x-title") or h.get("title") or q.get("title") or q.get("t"),
        "message": h.get("x-message") or h.get("message") or q.get("message") or q.get("m"),
        "filename": h.get("x-filename") or h.get("filename") or q.get("filename"),
        "file": r.body,
    }


def test_alert_text_and_snapshot_reach_email_ntfy_and_json(
    notify_factory: Callable[..., NotifySink],
    receiver_factory: Callable[..., HttpReceiver],
    smtp: SmtpReceiver,
) -> None:
    ntfy, hook = receiver_factory(), receiver_factory()
    sink = notify_factory(
        [
            mailto(smtp),
            f"ntfy://127.0.0.1:{ntfy.port}/porch-alerts",
            f"json://127.0.0.1:{hook.port}/notify",
        ],
        title="{watch} on {camera}",
        body="{message}\n{reasoning}",
    )
    sink.send_alert(make_alert(1, jpeg=JPEG))
    assert sink.wait_idle(30)

    mail = smtp.wait_for(1)[0]
    assert mail["Subject"] == "porch on front"
    text = mail.get_body(preferencelist=("plain", "html"))
    assert text is not None
    assert "Package #1" in text.get_content() and "A brown box by the door." in text.get_content()
    files = [p for p in mail.iter_attachments() if p.get_filename() == "snapshot.jpg"]
    assert len(files) == 1 and files[0].get_content_type() == "image/jpeg"
    assert files[0].get_content() == JPEG
    assert smtp.envelopes[0] == ("lookout@example.com", ["me@example.com"])

    (sent,) = ntfy.ok()
    published = ntfy_publish(sent)
    assert published["topic"] == "porch-alerts"
    assert published["title"] == "porch on front"
    assert published["message"] == "Package #1\nA brown box by the door."
    assert published["filename"] == "snapshot.jpg"
    assert published["file"] == JPEG

    (posted,) = hook.ok()
    assert urlsplit(posted.path).path == "/notify"
    data = orjson.loads(posted.body)
    assert data["version"] == "1.0"
    assert data["title"] == "porch on front"
    assert data["message"] == "Package #1\nA brown box by the door."
    (attached,) = data["attachments"]
    assert attached["filename"] == "snapshot.jpg" and attached["mimetype"] == "image/jpeg"
    assert base64.b64decode(attached["base64"]) == JPEG
    assert sink.counts["delivered"] == 3


def test_without_snapshot_ntfy_gets_json_at_its_root(
    notify_factory: Callable[..., NotifySink], receiver_factory: Callable[..., HttpReceiver]
) -> None:
    ntfy = receiver_factory()
    sink = notify_factory([f"ntfy://127.0.0.1:{ntfy.port}/porch-alerts"], attach_snapshot=False)
    sink.send_alert(make_alert(2, jpeg=JPEG))
    assert sink.wait_idle(30)
    (sent,) = ntfy.ok()
    assert urlsplit(sent.path).path in ("", "/")
    assert ntfy_publish(sent) == {
        "topic": "porch-alerts",
        "title": "porch (front)",
        "message": "Package #2",
    }


def test_receiver_down_gets_the_alert_when_it_comes_back(
    notify_factory: Callable[..., NotifySink], receiver_factory: Callable[..., HttpReceiver]
) -> None:
    hook = receiver_factory(start=False)
    sink = notify_factory([f"json://127.0.0.1:{hook.port}/notify"])
    sink.send_alert(make_alert(3, jpeg=JPEG))

    def failed_once() -> bool:
        events = sink.outbox.list(sink="phone")
        return bool(events) and events[0].attempts >= 1 and events[0].status == "pending"

    wait_until(failed_once, what="a failed attempt")
    assert "Connection" in (sink.outbox.list(sink="phone")[0].last_error or "")
    hook.start()
    wait_until(
        lambda: len(hook.ok()) == 1, timeout=15, what="delivery after the receiver came back"
    )
    assert orjson.loads(hook.ok()[0].body)["message"] == "Package #3"
    wait_until(lambda: sink.outbox.list(sink="phone")[0].status == "delivered")


def test_a_stalled_receiver_ends_the_attempt_at_the_deadline(
    notify_factory: Callable[..., NotifySink], receiver_factory: Callable[..., HttpReceiver]
) -> None:
    # The first answer dribbles a byte every 0.5 s for 32 s: no single read times out.
    hook = receiver_factory([Reply(dribble_s=0.5)])
    sink = notify_factory([f"json://127.0.0.1:{hook.port}/notify"], request_timeout_s=1.0)
    sink.send_alert(make_alert(4))
    # The receiver records the stalled request as it starts answering, so two means a retry.
    wait_until(lambda: len(hook.all()) == 2, timeout=15, what="a retry after the stalled attempt")
    wait_until(lambda: sink.outbox.list(sink="phone")[0].status == "delivered")
    (event,) = sink.outbox.list(sink="phone")
    assert event.attempts == 2
    assert sink.counts["failed_attempts"] == 1


def test_deadline_runner_abandons_a_hung_call_and_bounds_how_many_hang() -> None:
    release = threading.Event()
    runner = DeadlineRunner("t", max_hung=2)
    try:
        for _ in range(2):
            with pytest.raises(DeliveryTimeout, match=r"no answer within 0\.05 s"):
                runner.run(release.wait, timeout_s=0.05)
        assert runner.hung() == 2
        with pytest.raises(DeliveryTimeout, match="2 earlier deliveries still hang"):
            runner.run(lambda: "never started", timeout_s=5)
    finally:
        release.set()
    wait_until(lambda: runner.hung() == 0)
    assert runner.run(lambda: "ok", timeout_s=5) == "ok"
    with pytest.raises(ValueError, match="boom"):
        runner.run(lambda: (_ for _ in ()).throw(ValueError("boom")), timeout_s=5)


def test_abort_ends_the_wait_for_a_call_in_flight() -> None:
    release = threading.Event()
    runner = DeadlineRunner("t")
    threading.Timer(0.1, runner.abort).start()
    try:
        with pytest.raises(DeliveryTimeout, match="closing"):
            runner.run(release.wait, timeout_s=60)
    finally:
        release.set()


def test_rate_limit_holds_the_rest_until_the_window_moves(
    notify_factory: Callable[..., NotifySink], receiver_factory: Callable[..., HttpReceiver]
) -> None:
    now = [1_000.0]
    hook = receiver_factory()
    sink = notify_factory(
        [f"json://127.0.0.1:{hook.port}/notify"],
        rate_limit=2,
        rate_period_s=60,
        clock=lambda: now[0],
    )
    for n in range(3):
        sink.send_alert(make_alert(n))
    assert sink.wait_idle(30)
    assert len(hook.ok()) == 2
    waiting = sink.outbox.list(status="pending", sink="phone")
    assert len(waiting) == 1 and waiting[0].attempts == 0
    now[0] += 61
    assert sink.wait_idle(30)
    assert [orjson.loads(r.body)["message"] for r in hook.ok()] == [
        "Package #0",
        "Package #1",
        "Package #2",
    ]


def test_rate_window_table() -> None:
    w = RateWindow(2, 10.0)
    assert w.wait(7, 0.0) == 0.0
    w.record(7, 0.0)
    w.record(7, 4.0)
    assert w.wait(7, 5.0) == 5.0
    assert w.wait(7, 10.0) == 0.0
    assert w.wait(8, 5.0) == 0.0


def test_too_old_becomes_a_dead_letter_listed_without_its_url(
    notify_factory: Callable[..., NotifySink],
    receiver_factory: Callable[..., HttpReceiver],
    tmp_path: Path,
) -> None:
    now = [1_000.0]
    hook = receiver_factory(start=False)
    token = "tok-Zq8mW3xR5vY2"
    sink = notify_factory(
        [f"json://user:{token}@127.0.0.1:{hook.port}/notify"],
        max_age_s=5,
        clock=lambda: now[0],
    )
    sink.send_alert(make_alert(5))
    wait_until(lambda: sink.outbox.list(sink="phone")[0].attempts >= 1, what="a failed attempt")
    now[0] += 10
    wait_until(lambda: sink.outbox.list(sink="phone")[0].status == "dead", what="a dead letter")
    sink.close()
    config = tmp_path / "pipeline.toml"
    config.write_text(
        f"""
[cameras.front]
url = "rtsp://127.0.0.1:9/x"

[sinks.phone]
type = "notify"
urls = ["json://127.0.0.1:{hook.port}/notify"]
outbox = "{tmp_path / "outbox.sqlite3"}"
"""
    )
    listed = subprocess.run(
        [sys.executable, "-m", "pipeline", "outbox", "list", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert listed.returncode == 0, listed.stderr
    (dead,) = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert dead["sink"] == "phone" and dead["url"] == "apprise://json.0"
    assert "older than max_age_s" in dead["last_error"]
    assert token not in listed.stdout
    for path in tmp_path.glob("outbox.sqlite3*"):
        assert token.encode() not in path.read_bytes()


def test_urls_and_their_tokens_never_reach_the_logs(
    notify_factory: Callable[..., NotifySink], receiver_factory: Callable[..., HttpReceiver]
) -> None:
    topic = "kx7Secret9Topic4Q"
    ntfy_down = receiver_factory(start=False)
    ntfy_up = receiver_factory()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        sink = notify_factory(
            [
                f"ntfy://127.0.0.1:{ntfy_down.port}/{topic}",
                f"ntfy://127.0.0.1:{ntfy_up.port}/{topic}",
            ]
        )
        sink.send_alert(make_alert(6))
        wait_until(lambda: len(ntfy_up.ok()) == 1, what="delivery to the live receiver")
        wait_until(lambda: "attempt 1 failed" in stream.getvalue(), what="the failure log")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    text = stream.getvalue()
    assert "ntfy POST URL" in text  # Apprise's own debug lines were captured...
    assert topic not in text  # ...and none shows the topic (the secret of a public ntfy server)
    assert "sinks.phone.urls[0] (ntfy)" in text


def test_config_refuses_unknown_template_fields_and_non_urls() -> None:
    with pytest.raises(ValueError, match=r"unknown field \{password\}"):
        NotifySinkConfig(urls=["json://x"], body="{password}")
    with pytest.raises(ValueError, match=r"entry 1 is not a service URL"):
        NotifySinkConfig(urls=["json://x", "not a url"])
    with pytest.raises(ValueError, match="set urls or urls_file"):
        NotifySinkConfig()


def test_unknown_service_is_named_by_key_path_not_by_url(tmp_path: Path) -> None:
    cfg = NotifySinkConfig(urls=["json://127.0.0.1/x", "nosuchservice://secret-token-value/x"])
    with pytest.raises(ValueError) as err:
        NotifySink("phone", cfg)
    assert "sinks.phone.urls[1] (nosuchservice)" in str(err.value)
    assert "secret-token-value" not in str(err.value)


def test_urls_from_a_file_and_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.core.config_loader import load_config_text

    urls_file = tmp_path / "urls.txt"
    urls_file.write_text(
        "# phone\njson://127.0.0.1:1/a\n\nntfy://127.0.0.1:2/b\n", encoding="utf-8"
    )
    monkeypatch.setenv(
        "LOOKOUT_SINKS__PHONE__URLS", '["mailto://127.0.0.1:3?from=a@example.com&to=b@example.com"]'
    )
    cfg = load_config_text(
        f"""
[cameras.front]
url = "rtsp://127.0.0.1/x"

[sinks.phone]
type = "notify"
urls_file = "{urls_file}"
"""
    )
    sink = NotifySink("phone", cfg.sinks["phone"])  # type: ignore[arg-type]
    assert [(u.index, u.scheme) for u in sink.urls] == [(0, "mailto"), (1, "json"), (2, "ntfy")]


def test_receiver_down_and_kill_9_then_restart_delivers_everything(
    receiver_factory: Callable[..., HttpReceiver], tmp_path: Path
) -> None:
    hook = receiver_factory(start=False)
    outbox = tmp_path / "outbox.sqlite3"
    url = f"json://127.0.0.1:{hook.port}/notify"
    count = 10

    def child(n: int) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.sinks.notify_child", str(outbox), url, str(n)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )

    first = child(count)
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "stored"
        wait_until(
            lambda: any(e["attempts"] for e in list_events(outbox, status="pending", limit=100)),
            what="a failed attempt against the dead receiver",
        )
    finally:
        first.kill()  # SIGKILL: nothing is flushed or closed
        first.wait(10)
        assert first.stdout is not None
        first.stdout.close()
    assert len(list_events(outbox, status="pending", limit=1000)) == count
    second = child(0)
    try:
        assert second.stdout is not None and second.stdout.readline().strip() == "stored"
        hook.start()
        wait_until(lambda: len(hook.ok()) >= count, timeout=30, what="every alert delivered")
    finally:
        second.kill()
        second.wait(10)
        assert second.stdout is not None
        second.stdout.close()
    got = [orjson.loads(r.body) for r in hook.ok()]
    assert sorted(d["message"] for d in got) == sorted(f"Package #{n}" for n in range(count))
    for d in got:
        n = int(d["message"].split("#")[1])
        assert (
            base64.b64decode(d["attachments"][0]["base64"]) == b"\xff\xd8 snapshot %d \xff\xd9" % n
        )
