"""The notify sink: phone and chat notifications through Apprise, never lost.

Apprise speaks to about a hundred services (ntfy, Telegram, Pushover, Discord,
Slack, Matrix, Gotify, email, Home Assistant...) from one URL each, so Lookout
does not hand-write them. What happens to an alert:

1. Its title and body are rendered from the sink's templates (``{watch}``,
   ``{camera}``, ``{condition}``, ``{message}``, ``{reasoning}``, ``{time}``...),
   and one event per configured URL is committed to the outbox
   (:class:`sinks.outbox.Outbox`, shared with webhooks) *before* any attempt,
   with the JPEG snapshot when ``attach_snapshot`` is on. The outbox stores a
   reference to the sink's URL (``apprise://<scheme>.<n>``), never the URL,
   whose parts are secrets.
2. A worker thread sends due events, each URL at most ``rate_limit`` times per
   ``rate_period_s`` (the rest wait their turn in the outbox). Every attempt
   has a total deadline, ``request_timeout_s``, that holds inside Apprise's
   own calls too (:mod:`sinks.apprise_delivery`).
3. Delivered: marked so. Failed: retried after
   ``min(backoff_max_s, backoff_initial_s * 2**(n-1))`` times a random factor in
   [0.5, 1]; once older than ``max_age_s`` it becomes a dead letter, listed by
   ``python -m pipeline outbox list`` and sent again by ``outbox replay``.
4. ``close()`` stops the worker; what is pending stays in the outbox and is
   sent on the next start (also after ``kill -9``).

The outbox, the worker thread, the counts and pruning (at start, then every
:func:`sinks.outbox_sink.prune_every_s`) are
:class:`sinks.outbox_sink.OutboxDeliverySink`'s, shared with the webhook sink.

Logs name a URL as ``sinks.<name>.urls[<n>] (<scheme>)``; the URLs' parts are
registered with :mod:`pipeline.core.redact`, so no text shows them.

Example:
    >>> cfg = NotifySinkConfig(urls=["ntfy://ntfy.example.com/porch"])  # doctest: +SKIP
    >>> with NotifySink("phone", cfg) as sink:  # doctest: +SKIP
    ...     sink.send_alert(alert)
"""

from __future__ import annotations

import base64
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

from pipeline.core.config import NotifySinkConfig
from pipeline.core.events import Alert, iso_time
from pipeline.core.logs import log_unexpected
from pipeline.core.redact import redact
from sinks.apprise_delivery import DeadlineRunner, DeliveryTimeout, Message, apprise_send, supported
from sinks.notify_urls import ServiceUrl, resolve_ref, service_urls
from sinks.outbox_records import OutboxEvent
from sinks.outbox_sink import OutboxDeliverySink

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.lookout.notification+json"
"""The content type of a notification stored in the outbox."""

Send = Callable[[str, Message, float], "str | None"]
"""``send(url, message, timeout_s)``: ``None`` when delivered, else why not."""


def render(config: NotifySinkConfig, alert: Alert) -> tuple[str, str]:
    """The notification's title and body for ``alert``, from the sink's templates.

    Example:
        >>> a = Alert(event_id="e1", watch="porch", job_id="j1", camera="front",
        ...           condition="a package", message="Package!", reasoning="A box.",
        ...           time=0.0, look_count=3)
        >>> render(NotifySinkConfig(urls=["json://x"], body="{message} ({reasoning})"), a)
        ('porch (front)', 'Package! (A box.)')
    """
    fields: dict[str, Any] = {
        "watch": alert.watch,
        "camera": alert.camera,
        "condition": alert.condition,
        "message": alert.message,
        "reasoning": alert.reasoning,
        "time": iso_time(alert.time),
        "look_count": alert.look_count,
        "event_id": alert.event_id,
    }
    return config.title.format_map(fields), config.body.format_map(fields)


def encode_message(message: Message) -> bytes:
    """The outbox body of a notification (JSON; the JPEG in base64)."""
    jpeg = base64.b64encode(message.jpeg).decode() if message.jpeg is not None else None
    return orjson.dumps({"title": message.title, "body": message.body, "jpeg": jpeg})


def decode_message(body: bytes) -> Message:
    """The notification stored by :func:`encode_message`.

    Example:
        >>> decode_message(encode_message(Message("t", "b", b"\\xff\\xd8")))
        Message(title='t', body='b', jpeg=b'\\xff\\xd8')
    """
    data = orjson.loads(body)
    jpeg = data.get("jpeg")
    return Message(str(data["title"]), str(data["body"]), base64.b64decode(jpeg) if jpeg else None)


class RateWindow:
    """At most ``limit`` sends per ``period_s`` seconds for each key (a sliding window).

    Example:
        >>> w = RateWindow(2, 60.0)
        >>> w.record(0, 0.0); w.record(0, 1.0)
        >>> w.wait(0, 2.0), w.wait(0, 60.5), w.wait(1, 2.0)
        (58.0, 0.0, 0.0)
    """

    def __init__(self, limit: int, period_s: float) -> None:
        self.limit = limit
        self.period_s = period_s
        self._sent: dict[int, deque[float]] = {}

    def wait(self, key: int, now: float) -> float:
        """Seconds until ``key`` may send again (0: now)."""
        sent = self._sent.get(key)
        if sent is None:
            return 0.0
        while sent and sent[0] <= now - self.period_s:
            sent.popleft()
        return 0.0 if len(sent) < self.limit else sent[0] + self.period_s - now

    def record(self, key: int, now: float) -> None:
        """Count one send of ``key`` at ``now``."""
        self._sent.setdefault(key, deque()).append(now)


class NotifySink(OutboxDeliverySink[NotifySinkConfig]):
    """Send each alert, with its snapshot, to every Apprise URL of ``config``.

    Args:
        name: the sink's name (its key under ``[sinks]``); it keys its outbox events.
        config: its table.
        clock: epoch seconds (injectable for tests).
        rng: the random source of the backoff jitter.
        poll_s: longest idle wait of the worker.
        send: how one notification goes out (default: Apprise).

    Raises:
        ValueError: a URL Apprise cannot use (named by its key path, never shown).
        OSError: ``urls_file`` cannot be read.
    """

    kind = "notify"
    noun = "notification"

    def __init__(
        self,
        name: str,
        config: NotifySinkConfig,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        poll_s: float = 1.0,
        send: Send = apprise_send,
    ) -> None:
        super().__init__(name, config, clock=clock, rng=rng, poll_s=poll_s)
        self.urls: list[ServiceUrl] = service_urls(config)
        for url in self.urls:
            if not supported(url.url):
                raise ValueError(
                    f"{url.label(name)}: Apprise does not know this service or cannot "
                    "read this URL (see https://github.com/caronc/apprise/wiki)"
                )
        if not self.urls:
            raise ValueError(f"sinks.{name}: no Apprise URL in urls or urls_file")
        self._send = send
        self._runner = DeadlineRunner(name)
        self._rate = RateWindow(config.rate_limit, config.rate_period_s)

    def _abort_delivery(self) -> None:
        self._runner.abort()  # a delivery still in flight is abandoned; it stays pending

    # -- writes ------------------------------------------------------------------

    def _write_alert(self, alert: Alert) -> None:
        title, body = render(self.config, alert)
        jpeg = alert.jpeg if self.config.attach_snapshot else None
        stored = encode_message(Message(title, body, jpeg))
        now = self._clock()
        for url in self.urls:
            self.outbox.add(self.name, url.ref, stored, CONTENT_TYPE, now=now, by_reference=True)
            self._count("stored")
        self._wake.set()

    # -- delivery (worker thread) -----------------------------------------------------

    def _deliver_due(self) -> float | None:
        """Attempt due events whose URL may send now; return how long to wait (None: now)."""
        box = self.outbox
        self._prune_if_due()
        wait = self._poll_s
        attempted = False
        for ev in box.due(self.name, self._clock(), limit=50):
            if self._stop.is_set():
                return None
            url = resolve_ref(ev.endpoint, self.urls)
            if url is None:
                self._give_up(ev, "its URL is no longer in the sink's urls", attempted=False)
                continue
            limited = self._rate.wait(url.index, self._clock())
            if limited > 0:
                wait = min(wait, limited)
                continue
            self._attempt(ev, url)
            attempted = True
        if attempted:
            return None
        nxt = box.next_due(self.name)
        if nxt is not None:
            wait = min(wait, max(0.0, nxt - self._clock()))
        return wait

    def _attempt(self, ev: OutboxEvent, url: ServiceUrl) -> None:
        too_old = self._too_old(ev, self._clock())
        if too_old:
            self._give_up(ev, too_old, False)
            return
        error = self._deliver(url, decode_message(ev.body))
        now = self._clock()
        if error is None:
            self._rate.record(url.index, now)
            self.outbox.mark_delivered(ev.id, now, 0)
            self._count("delivered")
            return
        self._count("failed_attempts")
        attempts = ev.attempts + 1
        delay = self._retry_delay(ev)
        if now + delay - ev.created > self.config.max_age_s:
            self._give_up(ev, f"gave up after {attempts} attempt(s): {error}", True)
            return
        self.outbox.mark_retry(ev.id, now + delay, error, None)
        log.warning(
            "notify sink %r: %s: notification %s attempt %d failed (%s); next try in %.1f s",
            self.name,
            url.label(self.name),
            ev.id,
            attempts,
            error,
            delay,
        )

    def _deliver(self, url: ServiceUrl, message: Message) -> str | None:
        """Send one notification within ``request_timeout_s``; ``None`` or why it failed."""
        timeout = self.config.request_timeout_s
        try:
            return self._runner.run(lambda: self._send(url.url, message, timeout), timeout)
        except DeliveryTimeout as exc:
            return str(exc)
        except Exception as exc:
            log_unexpected(log, f"notify sink {self.name!r}: {url.label(self.name)}", exc)
            return redact(f"{type(exc).__name__}: {exc}")

    def _give_up(self, ev: OutboxEvent, error: str, attempted: bool) -> None:
        self.outbox.mark_dead(ev.id, self._clock(), error, None, attempted)
        self._count("dead")
        log.error(
            "notify sink %r: notification %s moved to dead letters (%s); "
            "`outbox replay` sends it again",
            self.name,
            ev.id,
            redact(error),
        )
