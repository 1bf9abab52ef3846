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
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

from pipeline.core.backoff import backoff_delay
from pipeline.core.config import NotifySinkConfig
from pipeline.core.events import Alert, iso_time
from pipeline.core.logs import log_unexpected
from pipeline.core.redact import redact
from sinks.apprise_delivery import DeadlineRunner, DeliveryTimeout, Message, apprise_send, supported
from sinks.base import Sink
from sinks.notify_urls import ServiceUrl, resolve_ref, service_urls
from sinks.outbox import Outbox
from sinks.outbox_records import OutboxEvent

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.lookout.notification+json"
"""The content type of a notification stored in the outbox."""
CLOSE_WAIT_S = 1.0
"""How long ``close()`` waits for the worker (a delivery in flight is then abandoned, pending)."""

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


class NotifySink(Sink):
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
        super().__init__(name)
        self.config = config
        self.urls: list[ServiceUrl] = service_urls(config)
        for url in self.urls:
            if not supported(url.url):
                raise ValueError(
                    f"{url.label(name)}: Apprise does not know this service or cannot "
                    "read this URL (see https://github.com/caronc/apprise/wiki)"
                )
        if not self.urls:
            raise ValueError(f"sinks.{name}: no Apprise URL in urls or urls_file")
        self._clock = clock
        self._rng = rng or random.Random()
        self._poll_s = poll_s
        self._send = send
        self._runner = DeadlineRunner(name)
        self._rate = RateWindow(config.rate_limit, config.rate_period_s)
        self._outbox: Outbox | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._passes = threading.Condition()
        self._passes_begun = 0  # passes begun
        self._idle_pass = 0  # the latest pass that attempted nothing
        self._thread: threading.Thread | None = None
        self._next_prune = float("-inf")
        self.counts = {"stored": 0, "delivered": 0, "failed_attempts": 0, "dead": 0}
        self._count_lock = threading.Lock()

    @property
    def outbox(self) -> Outbox:
        """The open outbox.

        Raises:
            RuntimeError: the sink is not open.
        """
        if self._outbox is None:
            raise RuntimeError(f"Notify sink '{self.name}' is not open.")
        return self._outbox

    def _open(self) -> None:
        self._outbox = Outbox(self.config.outbox)
        pending = self._outbox.counts(self.name)["pending"]
        if pending:
            log.info("notify sink %r: %d pending notification(s) from before", self.name, pending)
        self._thread = threading.Thread(target=self._run, name=f"notify-{self.name}", daemon=True)
        self._thread.start()

    def _close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(CLOSE_WAIT_S)
            self._runner.abort()  # a delivery still in flight is abandoned; it stays pending
            self._thread.join(CLOSE_WAIT_S)
        if self._outbox is not None:
            self._outbox.close()

    def _count(self, key: str) -> None:
        with self._count_lock:
            self.counts[key] += 1

    def wait_idle(self, timeout: float) -> bool:
        """Block until a pass that began after this call attempted nothing; return success.

        Then nothing stored before the call can be sent now: each event was
        delivered, is waiting for its retry time or its URL's rate limit, or is
        a dead letter. For tests and shutdown.
        """
        with self._passes:
            after = self._passes_begun
            self._wake.set()
            return self._passes.wait_for(lambda: self._idle_pass > after, timeout)

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

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            with self._passes:
                self._passes_begun += 1
                this_pass = self._passes_begun
            try:
                wait = self._deliver_due()
            except Exception as exc:  # a broken database must not end the worker silently
                log_unexpected(log, f"notify sink {self.name!r}: outbox error", exc)
                wait = self._poll_s
            if wait is None:
                continue
            with self._passes:
                self._idle_pass = this_pass
                self._passes.notify_all()
            self._wake.wait(wait)

    def _deliver_due(self) -> float | None:
        """Attempt due events whose URL may send now; return how long to wait (None: now)."""
        box = self.outbox
        now = self._clock()
        if now >= self._next_prune:
            box.prune(now, self.config.keep_delivered_s, self.config.keep_dead_s, sink=self.name)
            self._next_prune = now + 3600.0
        wait = self._poll_s
        attempted = False
        for ev in box.due(self.name, now, limit=50):
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
        age = self._clock() - ev.created
        if age > self.config.max_age_s:
            self._give_up(ev, f"older than max_age_s ({self.config.max_age_s:g} s)", False)
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
        delay = backoff_delay(
            ev.attempts, self.config.backoff_initial_s, self.config.backoff_max_s, rng=self._rng
        )
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
