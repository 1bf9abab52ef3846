"""The one sink of a camera actor: states and looks go to the head in batches, alerts at once.

A camera actor's watches deliver to a :class:`Relay` (it stands in for every
sink of the config). States, camera states, looks and captions are queued
(at most :data:`MAX_QUEUED`) and sent to the hub in one call every
``flush_interval_s``, or as soon as ``batch_max`` are waiting (a watch's final
state at once); an alert first sends what is queued (order kept), then is handed to
the hub and the watch's thread waits until the hub has recorded it, retrying
while the hub is unreachable. So an alert the watch decided is on the head,
in the ledger and the sinks' queues (the webhook outbox on its disk), before
the watch looks again; if the node dies before that, the look counts as not
made and the watch, moved, looks again.

Example:
    >>> class Link:
    ...     def intake(self, items): print([kind for kind, _ in items])
    ...     def alert(self, alert): print("alert", alert.event_id)
    >>> relay = Relay(Link(), flush_interval_s=60)
    >>> relay.open()
    >>> relay.send_state(WatchState(id="j", name="w", camera="c", condition="x"))
    >>> relay.send_alert(Alert("e1", "w", "j", "c", "x", "m", "r", 0.0, 1))
    ['state']
    alert e1
    >>> relay.close()
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, ClassVar, Literal, Protocol

from pipeline.core.events import Alert, CameraState, Caption, LookRecord, WatchState
from pipeline.core.logs import log_unexpected
from pipeline.core.redact import redact
from sinks.base import Sink

log = logging.getLogger("lookout.cluster")

Kind = Literal["state", "camera", "look", "caption"]
Item = tuple[Kind, Any]
"""One queued delivery: its kind and the event."""

MAX_QUEUED = 20_000
"""Items that may wait for the hub; past this the oldest looks and states are dropped."""
BATCH_MAX = 500
"""Items that make a batch go before its time."""


class HubLink(Protocol):
    """How a relay reaches the hub (blocking calls that raise when the hub did not take it)."""

    def intake(self, items: list[Item]) -> None:
        """Deliver a batch of states, camera states, looks and captions."""
        ...

    def alert(self, alert: Alert) -> None:
        """Hand one alert over; returns once the hub has recorded it."""
        ...


class Relay(Sink):
    """Forward every event of a camera actor to the hub (see the module docstring).

    Args:
        link: the hub.
        flush_interval_s: seconds between batches.
        batch_max: items queued that send a batch at once.
        looks: forward looks and captions (the head keeps an activity store).
        retry_s: first wait after a failed hand-over (doubles up to 5 s).
    """

    wants_looks: ClassVar[bool] = True
    wants_captions: ClassVar[bool] = True
    every_watch: ClassVar[bool] = True

    def __init__(
        self,
        link: HubLink,
        name: str = "@relay",
        *,
        flush_interval_s: float = 1.0,
        batch_max: int = BATCH_MAX,
        looks: bool = False,
        retry_s: float = 0.2,
    ) -> None:
        super().__init__(name)
        self.link = link
        self.flush_interval_s = flush_interval_s
        self.batch_max = batch_max
        self.looks = looks
        self.retry_s = retry_s
        self.sent = 0
        self.alerts = 0
        self.dropped = 0
        self.failed_attempts = 0
        self._queue: deque[Item] = deque()
        self._queue_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    def _open(self) -> None:
        self._thread = threading.Thread(target=self._run, name="relay", daemon=True)
        self._thread.start()

    def _close(self) -> None:
        self._closing.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)
        with self._send_lock:
            self._flush(final=True)

    def _run(self) -> None:
        while not self._closing.is_set():
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            with self._send_lock:
                self._flush()

    # ------------------------------------------------------------ writes

    def _put(self, item: Item, urgent: bool = False) -> None:
        with self._queue_lock:
            self._queue.append(item)
            while len(self._queue) > MAX_QUEUED:
                self._queue.popleft()
                self.dropped += 1
            full = len(self._queue) >= self.batch_max
        if urgent or full:
            self._wake.set()

    def _write_state(self, state: WatchState) -> None:
        self._put(("state", state), urgent=state.status.ended)

    def _write_camera_state(self, state: CameraState) -> None:
        self._put(("camera", state))

    def _write_look(self, look: LookRecord) -> None:
        if self.looks:
            self._put(("look", look))

    def _write_caption(self, caption: Caption) -> None:
        if self.looks:
            self._put(("caption", caption))

    def _write_alert(self, alert: Alert) -> None:
        with self._send_lock:
            wait = self.retry_s
            while True:
                try:
                    if not self._flush():  # what came before the alert goes first
                        raise ConnectionError("the head did not take the queued states")
                    self.link.alert(alert)
                    self.alerts += 1
                    return
                except Exception as exc:
                    log_unexpected(log, f"alert {alert.event_id}", exc, expected=(Exception,))
                    self.failed_attempts += 1
                    if self._closing.is_set():
                        log.error(
                            "alert %s of watch %s not handed to the head before the stop: %s",
                            alert.event_id,
                            alert.watch,
                            redact(str(exc)),
                        )
                        return
                    log.warning(
                        "alert %s: the head did not take it (%s); again in %.1f s",
                        alert.event_id,
                        redact(f"{type(exc).__name__}: {exc}"),
                        wait,
                    )
                time.sleep(wait)
                wait = min(5.0, wait * 2)

    def _flush(self, final: bool = False) -> bool:
        """Send what is queued (call with the send lock held); whether it all went.

        A failed batch goes back to the front of the queue for the next flush;
        the last flush (``final``) tries three times, then drops it (counted).
        """
        with self._queue_lock:
            items = list(self._queue)
            self._queue.clear()
        if not items:
            return True
        error = ""
        for _ in range(3 if final else 1):
            try:
                self.link.intake(items)
                self.sent += len(items)
                return True
            except Exception as exc:
                log_unexpected(log, "relay: sending to the head", exc, expected=(Exception,))
                self.failed_attempts += 1
                error = redact(f"{type(exc).__name__}: {exc}")
        if final:
            self.dropped += len(items)
            log.error("%d states and looks not delivered to the head: %s", len(items), error)
            return False
        with self._queue_lock:  # keep the order: the failed batch goes first
            self._queue.extendleft(reversed(items))
        return False

    def stats(self) -> dict[str, int]:
        """Counters: items sent, alerts handed over, dropped, failed attempts, queued."""
        with self._queue_lock:
            queued = len(self._queue)
        return {
            "sent": self.sent,
            "alerts": self.alerts,
            "dropped": self.dropped,
            "failed_attempts": self.failed_attempts,
            "queued": queued,
        }
