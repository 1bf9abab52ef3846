"""Call a function at a deadline from one shared watchdog thread.

A socket timeout bounds each read, not a whole request: a server that sends
one byte a second never trips it. :class:`pipeline.net.http.HttpClient`
therefore arms an alarm per request that shuts the request's socket down when
the request's total time is up; the blocked read then returns at once.

One daemon thread serves every alarm of the process (a heap ordered by
deadline), so a request costs no thread of its own.

Example:
    >>> import threading, time
    >>> fired = threading.Event()
    >>> alarm = ALARMS.arm(time.monotonic() + 0.01, fired.set)
    >>> fired.wait(5)
    True
    >>> ALARMS.disarm(alarm)  # after it fired: a no-op
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("lookout.net.deadline")


@dataclass(order=True, slots=True)
class Alarm:
    """One armed alarm (compare by time; ``callback`` runs at most once)."""

    at: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class Alarms:
    """A heap of alarms and the daemon thread that fires them (started on first use).

    Callbacks run on the watchdog thread and must be quick and never block
    (shutting a socket down is); an exception in one is logged and the others
    still run.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._heap: list[Alarm] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, at: float, callback: Callable[[], None]) -> Alarm:
        """Call ``callback`` once the clock reaches ``at`` (unless disarmed first)."""
        alarm = Alarm(at, next(self._seq), callback)
        with self._cond:
            heapq.heappush(self._heap, alarm)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="http-deadlines", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return alarm

    def disarm(self, alarm: Alarm) -> None:
        """Forget ``alarm``; a no-op once it fired."""
        with self._cond:
            alarm.cancelled = True

    def pending(self) -> int:
        """Alarms armed and neither fired nor disarmed."""
        with self._cond:
            return sum(1 for a in self._heap if not a.cancelled)

    def _next_due(self) -> Alarm:
        """Wait until the earliest live alarm is due; pop and return it (under the lock)."""
        while True:
            while self._heap and self._heap[0].cancelled:
                heapq.heappop(self._heap)
            if not self._heap:
                self._cond.wait()
                continue
            wait = self._heap[0].at - self._clock()
            if wait <= 0:
                alarm = heapq.heappop(self._heap)
                alarm.cancelled = True
                return alarm
            self._cond.wait(wait)

    def _run(self) -> None:
        while True:
            with self._cond:
                alarm = self._next_due()
            try:
                alarm.callback()
            except Exception as exc:  # one broken callback must not stop the others
                log.error("deadline callback failed: %s: %s", type(exc).__name__, exc)


ALARMS = Alarms()
"""The process-wide watchdog used by the HTTP client."""
