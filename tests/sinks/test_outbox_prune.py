"""The outbox deletes delivered events and dead letters past their retention, never pending ones."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.core.config import WebhookSinkConfig
from sinks.outbox import Outbox
from sinks.webhook import WebhookSink, prune_every_s
from tests.support.events import make_alert, make_state
from tests.support.http_receiver import HttpReceiver
from tests.support.waiting import wait_until

URL = "https://example.com/hook"


def _pages(path: Path) -> int:
    db = sqlite3.connect(str(path))
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(db.execute("PRAGMA page_count").fetchone()[0])
    finally:
        db.close()


def test_prune_deletes_by_status_age_and_sink(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3") as box:
        delivered_old = box.add("hook", URL, b"a", "application/json", now=0.0)
        box.mark_delivered(delivered_old.id, now=10.0, http_status=200)
        delivered_new = box.add("hook", URL, b"b", "application/json", now=0.0)
        box.mark_delivered(delivered_new.id, now=95.0, http_status=200)
        box.add("hook", URL, b"c", "application/json", now=0.0, status="dead")
        dead_new = box.add("hook", URL, b"d", "application/json", now=50.0, status="dead")
        pending_old = box.add("hook", URL, b"e", "application/json", now=0.0)
        other = box.add("other", URL, b"f", "application/json", now=0.0)
        box.mark_delivered(other.id, now=1.0, http_status=200)

        assert box.prune(now=100.0, keep_delivered_s=60.0, keep_dead_s=80.0, sink="hook") == 2
        left = {e.id for e in box.list(limit=100)}
        assert left == {delivered_new.id, dead_new.id, pending_old.id, other.id}
        assert box.prune(now=100.0, keep_delivered_s=60.0, keep_dead_s=80.0) == 1  # all sinks
        assert box.prune(now=1e9, keep_delivered_s=0.0, keep_dead_s=0.0) == 2
        assert [e.id for e in box.list(limit=100)] == [pending_old.id]
        assert box.counts() == {"pending": 1, "delivered": 0, "dead": 0}
        with pytest.raises(ValueError, match="must not be negative"):
            box.prune(now=0.0, keep_delivered_s=-1.0, keep_dead_s=0.0)


def test_pruned_pages_go_back_to_the_file_system(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    jpeg_sized = b"\xff" * 60_000
    with Outbox(path) as box:
        for _ in range(40):
            ev = box.add("hook", URL, jpeg_sized, "multipart/form-data", now=0.0)
            box.mark_delivered(ev.id, now=1.0, http_status=200)
        full = _pages(path)
        assert box.prune(now=100.0, keep_delivered_s=10.0, keep_dead_s=10.0) == 40
        assert _pages(path) < full / 4


def test_sink_prunes_periodically_by_its_clock(
    receiver_factory: Callable[..., HttpReceiver], tmp_path: Path
) -> None:
    rec = receiver_factory()
    now = [time.time()]
    cfg = WebhookSinkConfig(
        url=rec.url,
        outbox=tmp_path / "o.sqlite3",
        states=True,
        keep_delivered_s=3600.0,
        keep_dead_s=7200.0,
        connect_timeout_s=1.0,
        read_timeout_s=2.0,
    )
    assert prune_every_s(cfg) == 1800.0
    with WebhookSink("hook", cfg, clock=lambda: now[0], poll_s=0.05) as sink:
        for n in range(3):
            sink.send_alert(make_alert(n))
        sink.send_state(make_state())
        wait_until(lambda: sink.outbox.counts("hook")["delivered"] == 4, what="4 deliveries")
        now[0] += 1900.0  # a prune is due, but the events are younger than an hour
        assert sink.wait_idle(5.0)
        wait_until(lambda: sink._next_prune > now[0], what="the prune pass")
        assert sink.outbox.counts("hook")["delivered"] == 4
        sink.send_alert(make_alert(9))
        wait_until(lambda: sink.outbox.counts("hook")["delivered"] == 5, what="5th delivery")
        now[0] += 1900.0  # the first four are now older than keep_delivered_s
        wait_until(lambda: sink.outbox.counts("hook")["delivered"] == 1, what="pruned")
        assert sink.prune() == 0
