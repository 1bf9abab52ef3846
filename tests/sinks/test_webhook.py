from __future__ import annotations

import base64
import itertools
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.core.backoff import backoff_delay
from sinks.outbox import list_events, replay_events
from sinks.signing import parse_secret, verify
from sinks.webhook import WebhookSink
from tests.support.events import make_alert, make_state
from tests.support.http_receiver import HttpReceiver, Reply
from tests.support.waiting import wait_until

SECRET = "whsec_" + base64.b64encode(b"a-very-secret-key-0123456789abcd").decode()
SECRET2 = "whsec_" + base64.b64encode(b"the-next-secret-key-after-rotate").decode()


def _ids(reqs: list[Any]) -> list[str]:
    return [r.headers["webhook-id"] for r in reqs]


def test_signed_delivery_with_rotation(
    receiver_factory: Callable[..., HttpReceiver],
    sink_factory: Callable[..., WebhookSink],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(f"{SECRET}\n{SECRET2}\n")
    rec = receiver_factory()
    sink = sink_factory(rec.url, secret_file=secret_file, headers={"x-team": "ops"}, states=True)
    for n in range(3):
        sink.send_alert(make_alert(n))
    sink.send_state(make_state())
    wait_until(lambda: len(rec.ok()) == 4, what="4 deliveries")
    keys_old, keys_new = [parse_secret(SECRET)], [parse_secret(SECRET2)]
    for r in rec.ok():
        h = r.headers
        assert h["x-team"] == "ops"
        assert h["content-type"] == "application/json"
        assert len(h["webhook-signature"].split()) == 2
        ts = int(h["webhook-timestamp"])
        assert verify(keys_old, h["webhook-id"], ts, r.body, h["webhook-signature"])
        assert verify(keys_new, h["webhook-id"], ts, r.body, h["webhook-signature"])
        assert not verify([b"x" * 32], h["webhook-id"], ts, r.body, h["webhook-signature"])
    bodies = [orjson.loads(r.body) for r in rec.ok()]
    assert [b["data"]["event_id"] for b in bodies[:3]] == ["evt-0", "evt-1", "evt-2"]
    assert bodies[0]["type"] == "alert.created"
    assert bodies[3]["type"] == "watch.state"
    assert len(set(_ids(rec.ok()))) == 4
    assert SECRET not in caplog.text and SECRET2 not in caplog.text


@pytest.mark.parametrize("attach", ["base64", "multipart"])
def test_image_attachment(
    attach: str,
    receiver_factory: Callable[..., HttpReceiver],
    sink_factory: Callable[..., WebhookSink],
) -> None:
    rec = receiver_factory()
    sink = sink_factory(rec.url, attach_image=attach)
    jpeg = b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9"
    sink.send_alert(make_alert(1, jpeg=jpeg))
    wait_until(lambda: len(rec.ok()) == 1, what="delivery")
    r = rec.ok()[0]
    if attach == "base64":
        assert base64.b64decode(orjson.loads(r.body)["data"]["image_base64"]) == jpeg
    else:
        assert r.headers["content-type"].startswith("multipart/form-data; boundary=")
        assert jpeg in r.body and b'name="image"' in r.body and b'"event_id":"evt-1"' in r.body


def test_500_n_times_then_200_keeps_id_and_backoff(
    receiver_factory: Callable[..., HttpReceiver],
    sink_factory: Callable[..., WebhookSink],
) -> None:
    n = 3
    rec = receiver_factory([Reply(500)] * n)
    sink = sink_factory(rec.url, backoff_initial_s=0.2, backoff_max_s=0.6)
    sink.send_alert(make_alert(1))
    wait_until(lambda: len(rec.ok()) == 1, timeout=15, what="delivery after 500s")
    reqs = rec.all()
    assert len(reqs) == n + 1
    assert len(set(_ids(reqs))) == 1
    assert len({r.body for r in reqs}) == 1
    gaps = [b.at - a.at for a, b in itertools.pairwise(reqs)]
    for k, gap in enumerate(gaps, start=1):
        d = min(0.6, 0.2 * 2 ** (k - 1))
        assert gap >= d / 2 - 0.01, (k, gap)
        assert gap <= d + 1.0, (k, gap)
    assert sink.stats().failed_attempts == n


def test_backoff_delay_bounds() -> None:
    """The sink's n-th failure waits within [d / 2, d], d = min(max, initial * 2**(n-1))."""
    import random

    rng = random.Random(7)
    for attempts in range(1, 30):
        d = min(60.0, 1.0 * 2 ** (attempts - 1))
        for _ in range(20):
            assert d / 2 <= backoff_delay(attempts - 1, 1.0, 60.0, rng=rng) <= d
    with pytest.raises(ValueError, match="must not be negative"):
        backoff_delay(-1, 1.0, 2.0, rng=rng)


def test_429_retry_after_is_honoured(
    receiver_factory: Callable[..., HttpReceiver],
    sink_factory: Callable[..., WebhookSink],
) -> None:
    rec = receiver_factory([Reply(429, {"Retry-After": "1"})])
    sink = sink_factory(rec.url, backoff_initial_s=0.01)
    sink.send_alert(make_alert(1))
    wait_until(lambda: len(rec.ok()) == 1, what="delivery after 429")
    first, second = rec.all()
    assert second.at - first.at >= 0.99
    assert first.headers["webhook-id"] == second.headers["webhook-id"]


def test_410_disables_endpoint_and_replay_enables_it(
    receiver_factory: Callable[..., HttpReceiver],
    sink_factory: Callable[..., WebhookSink],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec = receiver_factory([Reply(410)])
    outbox = tmp_path / "o.sqlite3"
    sink = sink_factory(rec.url, outbox=outbox)
    sink.send_alert(make_alert(1))
    wait_until(lambda: sink.stats().disabled is not None, what="disabled")
    sink.send_alert(make_alert(2))
    assert "DISABLED" in caplog.text
    dead = list_events(outbox, status="dead")
    assert len(dead) == 2
    time.sleep(0.3)  # nothing more is attempted while disabled
    assert len(rec.all()) == 1
    assert replay_events(outbox, sink="hook") == 2
    wait_until(lambda: len(rec.ok()) == 2, what="replayed deliveries")
    assert sink.stats().disabled is None
    assert {orjson.loads(r.body)["data"]["event_id"] for r in rec.ok()} == {"evt-1", "evt-2"}


def test_redirect_not_followed(
    receiver_factory: Callable[..., HttpReceiver],
    sink_factory: Callable[..., WebhookSink],
    tmp_path: Path,
) -> None:
    rec = receiver_factory()
    rec.default = Reply(302, {"Location": f"http://127.0.0.1:{rec.port}/elsewhere"})
    outbox = tmp_path / "o.sqlite3"
    sink = sink_factory(rec.url, outbox=outbox)
    sink.send_alert(make_alert(1))
    wait_until(lambda: len(rec.all()) >= 2, what="retries")
    assert {r.path for r in rec.all()} == {"/hook"}
    pending = list_events(outbox, status="pending")
    assert "redirect" in (pending[0]["last_error"] or "")
    assert "not followed" in (pending[0]["last_error"] or "")


def test_read_timeout_fails_in_time_then_delivers(
    receiver_factory: Callable[..., HttpReceiver],
    sink_factory: Callable[..., WebhookSink],
    tmp_path: Path,
) -> None:
    rec = receiver_factory([Reply(200, delay_s=5.0)])
    outbox = tmp_path / "o.sqlite3"
    sink = sink_factory(rec.url, outbox=outbox, read_timeout_s=0.5, backoff_initial_s=0.5)
    started = time.monotonic()
    sink.send_alert(make_alert(1))
    wait_until(lambda: sink.stats().failed_attempts == 1, timeout=0.5 + 1.0, what="timeout")
    assert time.monotonic() - started <= 1.5
    ev = list_events(outbox, status="pending")[0]
    assert "timed out" in (ev["last_error"] or "")
    wait_until(lambda: len(rec.ok()) == 1, what="delivery after timeout")
    assert rec.ok()[0].headers["webhook-id"] == ev["id"]


def test_max_age_dead_letter_and_replay(
    receiver_factory: Callable[..., HttpReceiver],
    sink_factory: Callable[..., WebhookSink],
    tmp_path: Path,
) -> None:
    rec = receiver_factory()
    rec.default = Reply(503)
    outbox = tmp_path / "o.sqlite3"
    sink = sink_factory(rec.url, outbox=outbox, max_age_s=0.4, backoff_initial_s=0.1)
    sink.send_alert(make_alert(1))
    wait_until(lambda: sink.stats().dead == 1, what="dead letter")
    dead = list_events(outbox, status="dead")
    assert len(dead) == 1 and "gave up after" in (dead[0]["last_error"] or "")
    tried = len(rec.all())
    rec.default = Reply(200)
    assert replay_events(outbox, ids=[dead[0]["id"]]) == 1
    wait_until(lambda: len(rec.ok()) == 1, what="replayed delivery")
    assert rec.ok()[0].headers["webhook-id"] == dead[0]["id"]
    assert len(rec.all()) == tried + 1


def test_receiver_down_and_kill_9_then_restart_delivers_everything(
    receiver_factory: Callable[..., HttpReceiver], tmp_path: Path
) -> None:
    rec = receiver_factory(start=False)
    outbox = tmp_path / "outbox.sqlite3"
    count = 20

    def child(n: int) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.sinks.webhook_child", str(outbox), rec.url, str(n)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )

    first = child(count)
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "stored"
        time.sleep(0.3)  # a few failed attempts against the dead receiver
    finally:
        first.kill()
        first.wait(10)
        assert first.stdout is not None
        first.stdout.close()
    stored = {e["id"] for e in list_events(outbox, status="pending", limit=1000)}
    assert len(stored) == count
    second = child(0)
    try:
        assert second.stdout is not None and second.stdout.readline().strip() == "stored"
        rec.start()
        wait_until(lambda: len({r.headers["webhook-id"] for r in rec.ok()}) == count, timeout=20)
    finally:
        second.kill()
        second.wait(10)
        assert second.stdout is not None
        second.stdout.close()
    got: dict[str, set[str]] = {}
    for r in rec.ok():
        got.setdefault(r.headers["webhook-id"], set()).add(orjson.loads(r.body)["data"]["event_id"])
    assert set(got) == stored
    assert all(len(v) == 1 for v in got.values())
    assert {next(iter(v)) for v in got.values()} == {f"evt-{n}" for n in range(count)}
