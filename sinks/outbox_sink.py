"""What the outbox-backed delivery sinks (webhook, notify) share: the worker's life.

An :class:`OutboxDeliverySink` opens its SQLite outbox (:class:`sinks.outbox.Outbox`)
on ``open()``, runs one worker thread that calls the sink's ``_deliver_due``
pass after pass (woken at once by a write, else after the wait the pass
returned), counts what happens under a lock, prunes delivered events and dead
letters on a schedule (:func:`prune_every_s`), and on ``close()`` stops the
worker after the delivery in flight: after :data:`CLOSE_WAIT_S` the sink's
``_abort_delivery`` ends it and its event stays pending for the next start.

Each sink keeps its own delivery: what one attempt is, its deadline, retries,
pauses and dead letters.

Example:
    >>> from pipeline.core.config import WebhookSinkConfig
    >>> class Quiet(OutboxDeliverySink[WebhookSinkConfig]):
    ...     kind = "quiet"
    ...     def _deliver_due(self) -> float | None:
    ...         return self._poll_s  # nothing to send; look again after poll_s
    ...     def _abort_delivery(self) -> None:
    ...         pass
    >>> with Quiet("q", WebhookSinkConfig(url="https://example.com/h")) as sink:  # doctest: +SKIP
    ...     sink.wait_idle(5.0)
    True
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import ClassVar, Generic, TypeVar

from pipeline.core.backoff import backoff_delay
from pipeline.core.config import OutboxSinkConfig
from pipeline.core.logs import log_unexpected
from sinks.base import Sink
from sinks.outbox import Outbox
from sinks.outbox_records import OutboxEvent

log = logging.getLogger(__name__)

CLOSE_WAIT_S = 1.0
"""How long ``close()`` waits for the worker before it ends the delivery in flight (pending)."""


C = TypeVar("C", bound=OutboxSinkConfig)


def prune_every_s(config: OutboxSinkConfig) -> float:
    """How often a sink prunes its outbox: half the shorter retention, within 1 s .. 1 h.

    Example:
        >>> prune_every_s(OutboxSinkConfig())
        3600.0
        >>> prune_every_s(OutboxSinkConfig(keep_delivered_s=60.0))
        30.0
    """
    return min(3600.0, max(1.0, min(config.keep_delivered_s, config.keep_dead_s) / 2))


class OutboxDeliverySink(Sink, Generic[C]):
    """A sink that stores each event in the outbox and delivers it from a worker thread.

    Subclasses set :attr:`kind` (and :attr:`noun`), implement ``_deliver_due``
    (one pass: attempt what is due; return how long to wait, None to look again
    at once) and ``_abort_delivery`` (end the delivery in flight from another
    thread), and may override ``_opened`` (called with the outbox before the
    worker starts).

    Args:
        name: the sink's name; it keys its events in a shared outbox file.
        config: its table.
        clock: epoch seconds (injectable for tests); stored times use it.
        rng: random source of the backoff jitter.
        poll_s: longest idle wait; events replayed by another process are seen this often.
    """

    kind: ClassVar[str] = "outbox"
    """The sink's type, in logs and the worker thread's name."""
    noun: ClassVar[str] = "event"
    """What one outbox event is called in logs."""

    def __init__(
        self,
        name: str,
        config: C,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        poll_s: float = 1.0,
    ) -> None:
        super().__init__(name)
        self.config = config
        self._clock = clock
        self._rng = rng or random.Random()
        self._poll_s = poll_s
        self._outbox: Outbox | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._passes = threading.Condition()
        self._passes_begun = 0
        self._idle_pass = 0  # the latest pass that attempted nothing
        self._thread: threading.Thread | None = None
        self._next_prune = float("-inf")
        self.counts = {"stored": 0, "delivered": 0, "failed_attempts": 0, "dead": 0}
        """Events stored, delivered, attempts failed and events given up, since the sink opened."""
        self._count_lock = threading.Lock()

    @property
    def outbox(self) -> Outbox:
        """The open outbox.

        Raises:
            RuntimeError: the sink is not open.
        """
        if self._outbox is None:
            raise RuntimeError(f"{self.kind.capitalize()} sink '{self.name}' is not open.")
        return self._outbox

    def _open(self) -> None:
        self._outbox = Outbox(self.config.outbox)
        self._opened(self._outbox)
        pending = self._outbox.counts(self.name)["pending"]
        if pending:
            log.info(
                "%s sink %r: %d pending %s(s) from before", self.kind, self.name, pending, self.noun
            )
        self._thread = threading.Thread(
            target=self._run, name=f"{self.kind}-{self.name}", daemon=True
        )
        self._thread.start()

    def _opened(self, outbox: Outbox) -> None:
        """Called with the open outbox before the worker starts (a hook)."""

    def _close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(CLOSE_WAIT_S)
            self._abort_delivery()  # a delivery still in flight ends; its event stays pending
            self._thread.join(CLOSE_WAIT_S)
        if self._outbox is not None:
            self._outbox.close()

    def _abort_delivery(self) -> None:
        """End the delivery in flight, from the closing thread."""
        raise NotImplementedError

    def _count(self, key: str, n: int = 1) -> None:
        with self._count_lock:
            self.counts[key] += n

    def _counts_now(self) -> dict[str, int]:
        with self._count_lock:
            return dict(self.counts)

    def wait_idle(self, timeout: float) -> bool:
        """Block until a pass that began after this call attempted nothing; return success.

        Then nothing stored before the call can be sent now: each event was
        delivered, is waiting for its retry time (or the sink's own limits), or
        is a dead letter. For tests and shutdown.
        """
        with self._passes:
            after = self._passes_begun
            self._wake.set()
            return self._passes.wait_for(lambda: self._idle_pass > after, timeout)

    # -- the worker thread ----------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            with self._passes:
                self._passes_begun += 1
                this_pass = self._passes_begun
            try:
                wait = self._deliver_due()
            except Exception as exc:  # a broken database must not end the worker silently
                log_unexpected(log, f"{self.kind} sink {self.name!r}: outbox error", exc)
                wait = self._poll_s
            if wait is None:
                continue
            with self._passes:
                self._idle_pass = this_pass
                self._passes.notify_all()
            self._wake.wait(wait)

    def _deliver_due(self) -> float | None:
        """Attempt the events that are due; return how long to wait (None: look again now)."""
        raise NotImplementedError

    def prune(self) -> int:
        """Delete this sink's delivered and dead events past their retention; return how many.

        The worker runs this at start and then every :func:`prune_every_s` (by
        the sink's clock); call it to prune now.
        """
        now = self._clock()
        gone = self.outbox.prune(
            now, self.config.keep_delivered_s, self.config.keep_dead_s, sink=self.name
        )
        self._next_prune = now + prune_every_s(self.config)
        if gone:
            log.info(
                "%s sink %r: pruned %d old %s(s) from the outbox",
                self.kind,
                self.name,
                gone,
                self.noun,
            )
        return gone

    def _prune_if_due(self) -> None:
        if self._clock() >= self._next_prune:
            self.prune()

    def _too_old(self, ev: OutboxEvent, now: float) -> str | None:
        """Why ``ev`` is given up before an attempt (older than ``max_age_s``), or None."""
        if now - ev.created > self.config.max_age_s:
            return f"older than max_age_s ({self.config.max_age_s:g} s)"
        return None

    def _retry_delay(self, ev: OutboxEvent) -> float:
        """The backoff before ``ev``'s next attempt, after its failed one."""
        cfg = self.config
        return backoff_delay(ev.attempts, cfg.backoff_initial_s, cfg.backoff_max_s, rng=self._rng)
