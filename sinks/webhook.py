"""The webhook sink: signed JSON POSTs (Standard Webhooks) through a durable SQLite outbox.

What happens to an alert:

1. It becomes a body ``{"type": "alert.created", "timestamp": ..., "data": {...alert}}``
   (JPEG optional: base64 in ``data.image_base64`` or a multipart part ``image``)
   and is committed to the outbox with a new ``webhook-id`` *before* any attempt.
2. A worker thread POSTs it with ``webhook-id``, ``webhook-timestamp`` and
   ``webhook-signature`` (``v1,<base64 HMAC-SHA256>``, one per secret during
   rotation). Redirects are not followed; each POST has a connect timeout, a read
   timeout and a total deadline (``request_timeout_s``).
3. 2xx: delivered. 410: the endpoint is disabled (persisted; loud error log),
   its pending events become dead letters. Anything else: retried with the
   same id and body after ``min(backoff_max_s, backoff_initial_s * 2**(n-1))``
   times a random factor in [0.5, 1], or after ``Retry-After`` when the answer
   has one; a 429 or 503 with ``Retry-After`` pauses the whole endpoint (no
   event is sent to it meanwhile); once an event is older than ``max_age_s`` it
   becomes a dead letter.
4. ``close()`` stops the worker after the attempt in flight; what is still
   pending stays in the outbox and is sent on the next start.
5. Delivered events are deleted ``keep_delivered_s`` after delivery, dead
   letters ``keep_dead_s`` after they were given up (pruned at start, then
   every :func:`prune_every_s`); pending events are never deleted.

The outbox, the worker thread, the counts and pruning are
:class:`sinks.outbox_sink.OutboxDeliverySink`'s, shared with the notify sink.

Example:
    >>> cfg = WebhookSinkConfig(url="https://example.com/h", secret="whsec_...")  # doctest: +SKIP
    >>> with WebhookSink("hook", cfg) as sink:  # doctest: +SKIP
    ...     sink.send_alert(alert)
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from pipeline.core.backoff import parse_retry_after
from pipeline.core.config import WebhookSinkConfig
from pipeline.core.events import Alert, WatchState
from pipeline.net.http import HttpClient, HttpResponse, TransportError
from pipeline.net.ssrf import SsrfPolicy
from pipeline.net.urls import endpoint_label, register_url_secrets
from sinks.endpoint_pause import PAUSES
from sinks.outbox import Outbox
from sinks.outbox_records import OutboxEvent
from sinks.outbox_sink import OutboxDeliverySink, prune_every_s
from sinks.signing import signature_header
from sinks.webhook_body import event_body, load_keys

log = logging.getLogger(__name__)

USER_AGENT = "lookout-webhook/0.1"
MAX_ANSWER_BYTES = 64 * 1024
"""At most this much of a receiver's answer is read (the rest is dropped with the connection)."""

__all__ = ["MAX_ANSWER_BYTES", "USER_AGENT", "WebhookSink", "WebhookStats", "prune_every_s"]


@dataclass(frozen=True, slots=True)
class WebhookStats:
    """Counters of one webhook sink since it opened.

    Attributes:
        stored: events written to the outbox.
        delivered: events answered 2xx.
        failed_attempts: attempts that did not get a 2xx.
        dead: events given up (too old or endpoint gone).
        disabled: why the endpoint is disabled, or None.
    """

    stored: int
    delivered: int
    failed_attempts: int
    dead: int
    disabled: str | None


class WebhookSink(OutboxDeliverySink[WebhookSinkConfig]):
    """POST alerts (and states, with ``states``) to ``config.url`` through the outbox.

    Args:
        name: the sink's name; it keys its events in a shared outbox file.
        config: its table.
        clock: epoch seconds (injectable for tests); stored times use it.
        rng: random source of the jitter.
        poll_s: longest idle wait; events replayed by another process are seen this often.
        ssrf: for URLs given at run time: every connection resolves the host and
            goes only to addresses the policy allows (DNS rebinding cannot reach a
            private address after the first check); a refused address is a failed
            attempt, retried with backoff. None for config-file webhooks.
    """

    kind = "webhook"

    def __init__(
        self,
        name: str,
        config: WebhookSinkConfig,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        poll_s: float = 1.0,
        ssrf: SsrfPolicy | None = None,
    ) -> None:
        super().__init__(name, config, clock=clock, rng=rng, poll_s=poll_s)
        register_url_secrets(config.url)
        self.safe_url = endpoint_label(config.url)
        self._by_ref = ssrf is None  # a config URL: the outbox keeps a reference, not the URL
        self._keys = load_keys(config)
        self._http = HttpClient(
            config.url,
            connect_timeout_s=config.connect_timeout_s,
            read_timeout_s=config.read_timeout_s,
            request_timeout_s=config.request_timeout_s,
            pool_size=1,
            policy=ssrf,
            max_body=MAX_ANSWER_BYTES,
            secret_path=True,
            retry_stale=True,
        )

    # -- lifecycle -------------------------------------------------------------

    def _opened(self, outbox: Outbox) -> None:
        reason = outbox.disabled(self.name, self.config.url)
        if reason:
            log.error(
                "webhook sink %r: endpoint %s is disabled (%s); replay its dead letters "
                "with `outbox replay` to enable it",
                self.name,
                self.safe_url,
                reason,
            )

    def _abort_delivery(self) -> None:
        self._http.close(abort=True)  # a POST still in flight ends; its event stays pending

    def _close(self) -> None:
        super()._close()
        self._http.close()

    def stats(self) -> WebhookStats:
        """Return the counters."""
        reason = self._outbox.disabled(self.name, self.config.url) if self._outbox else None
        return WebhookStats(disabled=reason, **self._counts_now())

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is due right now (for tests and shutdown); return success.

        While the endpoint is paused by a ``Retry-After``, due events wait, so
        this waits too (until ``timeout``).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if super().wait_idle(max(0.0, deadline - time.monotonic())):
                box = self._outbox
                if box is not None and not box.due(self.name, self._clock(), limit=1):
                    return True
        return False

    # -- writes ----------------------------------------------------------------

    def _store(self, kind: str, data: dict[str, Any], jpeg: bytes | None, short: str) -> None:
        now = self._clock()
        body, ctype = event_body(kind, data, now, jpeg, self.config.attach_image)
        reason = self.outbox.disabled(self.name, self.config.url)
        if reason:
            self.outbox.add(
                self.name, self.config.url, body, ctype, now=now, kind=short,
                status="dead", error=f"endpoint disabled: {reason}", by_reference=self._by_ref,
            )  # fmt: skip
            self._count("dead")
            log.error(
                "webhook sink %r: endpoint %s is disabled (%s); event stored as a dead letter",
                self.name,
                self.safe_url,
                reason,
            )
            return
        self.outbox.add(
            self.name, self.config.url, body, ctype, now=now, kind=short, by_reference=self._by_ref
        )
        self._count("stored")
        self._wake.set()

    def _write_alert(self, alert: Alert) -> None:
        self._store("alert.created", alert.to_dict(), alert.jpeg, "alert")

    def _write_state(self, state: WatchState) -> None:
        if self.config.states:
            self._store("watch.state", state.to_dict(), None, "watch_state")

    # -- delivery (worker thread) -------------------------------------------------

    def _deliver_due(self) -> float | None:
        """Attempt the events that are due; return how long to wait (None: look again now).

        Nothing is attempted while the endpoint is disabled or paused by a
        ``Retry-After`` (:data:`PAUSES`), whichever event asked for the pause.
        """
        box = self.outbox
        self._prune_if_due()
        if box.disabled(self.name, self.config.url):
            return self._poll_s
        paused = PAUSES.left(self.config.url, self._clock())
        if paused > 0:
            return min(self._poll_s, paused)
        batch = box.due(self.name, self._clock(), limit=50)
        for ev in batch:
            if self._stop.is_set() or PAUSES.left(self.config.url, self._clock()) > 0:
                return None
            self._attempt(ev)
        if batch:
            return None
        nxt = box.next_due(self.name)
        return self._poll_s if nxt is None else min(self._poll_s, max(0.0, nxt - self._clock()))

    def _attempt(self, ev: OutboxEvent) -> None:
        box = self.outbox
        now = self._clock()
        too_old = self._too_old(ev, now)
        if too_old:
            self._give_up(ev, now, too_old, None, False)
            return
        ts = int(now)
        headers = {
            "content-type": ev.content_type,
            "user-agent": USER_AGENT,
            **self.config.headers,
            "webhook-id": ev.id,
            "webhook-timestamp": str(ts),
        }
        if self._keys:
            headers["webhook-signature"] = signature_header(self._keys, ev.id, ts, ev.body)
        result = self._post(ev.body, headers)
        now = self._clock()
        status = result.status if isinstance(result, HttpResponse) else None
        if status is not None and 200 <= status < 300:
            box.mark_delivered(ev.id, now, status)
            self._count("delivered")
            return
        self._count("failed_attempts")
        if status == 410:
            reason = f"HTTP 410 Gone from {self.safe_url}"
            box.disable(self.name, self.config.url, now, reason)
            box.mark_dead(ev.id, now, reason, status, True)
            killed = box.kill_pending(self.name, now, f"endpoint disabled: {reason}")
            self._count("dead", 1 + killed)
            log.error(
                "webhook sink %r: %s; endpoint DISABLED, %d event(s) moved to dead letters. "
                "Fix the URL, then `outbox replay` to enable it again.",
                self.name,
                reason,
                1 + killed,
            )
            return
        error = self._describe(result)
        attempts = ev.attempts + 1
        delay = self._retry_delay(ev)
        if status in (429, 503) and isinstance(result, HttpResponse):
            asked = parse_retry_after(result.headers.get("retry-after"), now)
            if asked is not None:
                delay = asked
                PAUSES.pause(self.config.url, now + asked)  # every event waits, not only this
        if now + delay - ev.created > self.config.max_age_s:
            self._give_up(ev, now, f"gave up after {attempts} attempt(s): {error}", status, True)
            return
        box.mark_retry(ev.id, now + delay, error, status)
        log.warning(
            "webhook sink %r: event %s attempt %d failed (%s); next try in %.1f s",
            self.name,
            ev.id,
            attempts,
            error,
            delay,
        )

    def _post(self, body: bytes, headers: dict[str, str]) -> HttpResponse | TransportError:
        """POST one event; a failure without an answer comes back as the error (never raised)."""
        try:
            return self._http.request("POST", body=body, headers=headers)
        except TransportError as exc:
            return exc
        except RuntimeError:  # closed under us by close()
            return TransportError(f"POST {self.safe_url} aborted: the sink is closing")

    def _describe(self, result: HttpResponse | TransportError) -> str:
        if isinstance(result, TransportError):
            return str(result)
        if 300 <= result.status < 400:
            where = endpoint_label(urljoin(self.config.url, result.headers.get("location", "")))
            return f"HTTP {result.status} redirect to {where} not followed; configure the final URL"

        return f"HTTP {result.status}"

    def _give_up(
        self, ev: OutboxEvent, now: float, error: str, status: int | None, attempted: bool
    ) -> None:
        self.outbox.mark_dead(ev.id, now, error, status, attempted)
        self._count("dead")
        log.error(
            "webhook sink %r: event %s moved to dead letters (%s); `outbox replay` resends it",
            self.name,
            ev.id,
            error,
        )
