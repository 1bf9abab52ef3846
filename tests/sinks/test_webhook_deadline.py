"""Webhook POSTs end at their total deadline; the event stays in the outbox and is sent later."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sinks.outbox import list_events
from sinks.webhook import WebhookSink
from tests.sinks.conftest import Reply, WebhookReceiver, make_alert, wait_until

SLOW = {
    # headers at once, then a byte every 0.2 s: every read gets a byte within read_timeout_s
    "dribble": Reply(200, dribble_s=0.2),
    # no answer at all
    "silent": Reply(200, delay_s=60.0),
}


@pytest.mark.parametrize("kind", list(SLOW))
def test_a_slow_receiver_fails_the_attempt_at_the_deadline_then_delivers(
    receiver_factory: Callable[..., WebhookReceiver],
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
