"""Call a function at a deadline from one shared watchdog thread; cut a request at its deadline.

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

import contextlib
import heapq
import http.client
import itertools
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.core.logs import log_unexpected

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
                log_unexpected(log, "deadline callback failed", exc)


ALARMS = Alarms()
"""The process-wide watchdog used by the HTTP client."""


class Flight:
    """One request in flight: its socket, and whether its deadline or an abort cut it.

    The alarm calls :meth:`expire`; a closing client calls :meth:`abort`. Either
    shuts the socket down, so a thread blocked reading it returns at once. The
    requesting thread calls :meth:`finish` when the answer is read: False means
    it was cut (the answer may be partial and must not be used).

    Example:
        >>> flight = Flight()
        >>> flight.expire(); flight.finish(), flight.state
        (False, 'expired')
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.state = "running"  # -> done | expired | aborted
        self._sock: socket.socket | None = None

    def attach(self, conn: http.client.HTTPConnection) -> None:
        """Remember the connection's socket; cut it at once if the request already ended."""
        with self._lock:
            self._sock = conn.sock
            cut = self.state != "running"
        if cut:
            self._shutdown(conn.sock)

    def _cut(self, state: str) -> None:
        with self._lock:
            if self.state != "running":
                return
            self.state = state
            sock = self._sock
        self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: socket.socket | None) -> None:
        if sock is not None:  # the plain socket call: an SSLSocket's own would drop its TLS state
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def expire(self) -> None:
        """The deadline passed: end the request (called by the alarm thread)."""
        self._cut("expired")

    def abort(self) -> None:
        """The client is closing: end the request."""
        self._cut("aborted")

    def finish(self) -> bool:
        """Mark the request done; False when the deadline or an abort came first."""
        with self._lock:
            if self.state == "running":
                self.state = "done"
            return self.state == "done"


def within(limit: float, deadline: float | None) -> float:
    """``limit`` seconds, or less when the deadline comes sooner (never below 1 ms)."""
    if deadline is None:
        return limit
    return max(0.001, min(limit, deadline - time.monotonic()))
