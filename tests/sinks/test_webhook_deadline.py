"""Webhook POSTs end at their total deadline; the event stays in the outbox and is sent later."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sinks.outbox import list_events
from sinks.webhook import WebhookSink
from tests.support.events import make_alert
from tests.support.http_receiver import HttpReceiver, Reply
from tests.support.waiting import wait_until

SLOW = {
    # headers at once, then a byte every 0.2 s: every read gets a byte within read_timeout_s
    "dribble": Reply(200, dribble_s=0.2),
    # no answer at all
    "silent": Reply(200, delay_s=60.0),
}


@pytest.mark.parametrize("kind", list(SLOW))
def test_a_slow_receiver_fails_the_attempt_at_the_deadline_then_delivers(
    receiver_factory: Callable[..., HttpReceiver],
    sink_factory: Callable[..., WebhookSink],
    tmp_path: Path,
    kind: str,
) -> None:
    rec = receiver_factory([SLOW[kind]])
    outbox = tmp_path / "o.sqlite3"
    sink = sink_factory(
        rec.url, outbox=outbox, read_timeout_s=30.0, request_timeout_s=1.0, backoff_initial_s=0.2
    )
    sink.send_alert(make_alert(1))
    wait_until(lambda: sink.stats().failed_attempts == 1, timeout=20, what="the failed attempt")
    ev = list_events(outbox, status=None)[0]
    assert "within 1 s (request_timeout_s)" in (ev["last_error"] or "")
    wait_until(lambda: sink.stats().delivered == 1, timeout=20, what="delivery on the retry")
    delivered = list_events(outbox, status="delivered")
    assert [e["id"] for e in delivered] == [ev["id"]]


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_pauses_the_whole_endpoint(
    receiver_factory: Callable[..., HttpReceiver],
    sink_factory: Callable[..., WebhookSink],
    status: int,
) -> None:
    # The first answer comes late, so the other two events are in the outbox (and due)
    # when the endpoint says "come back in 2 s": none of them may be POSTed before then.
    rec = receiver_factory([Reply(status, {"Retry-After": "2"}, delay_s=0.3)])
    sink = sink_factory(rec.url, backoff_initial_s=0.01)
    for n in range(3):
        sink.send_alert(make_alert(n))
    wait_until(lambda: len(rec.ok()) == 3, timeout=20, what="three deliveries after the pause")
    first, *later = rec.all()
    assert first.status == status
    assert len(later) == 3
    assert all(r.at - first.at >= 1.99 for r in later), [r.at - first.at for r in later]
    assert later[0].headers["webhook-id"] == first.headers["webhook-id"]  # order kept
