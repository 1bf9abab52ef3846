"""Decodes that queue instead of crowding: a few at a time, process-wide, in due-time order.

Every camera decodes in the thread that asks for a picture (a look, a detector's
tap, a camera keeping its decoder current). With many cameras, many of those
threads decode at once and share the cores: each decode takes several times
longer, and every look is late. A :class:`DecodeQueue` lets at most
``workers`` decodes run at a time (one per core by default) and serves the
waiting ones by their due time, earliest first: a look that was due earlier
decodes first, and every decode runs at full speed.

Example:
    >>> queue = DecodeQueue(workers=2)
    >>> with queue.slot(due=12.0):
    ...     pass  # decode here
    >>> queue.stats().decodes, queue.running
    (1, 0)

:func:`shared_decode_queue` is the process-wide queue that cameras use unless
they are given another one. The queue only orders and bounds; it decodes
nothing itself, so a decode never changes thread.
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

DecodeGate = Callable[[float | None], AbstractContextManager[None]]
"""``due -> context``: hold it while decoding (:meth:`DecodeQueue.slot`)."""


@dataclass(frozen=True, slots=True)
class DecodeQueueStats:
    """What a :class:`DecodeQueue` did so far (counters only grow).

    Attributes:
        workers: decodes allowed at once.
        decodes: slots taken.
        waited: slots that had to wait (every worker busy, or an earlier-due decode waiting).
        wait_seconds: time spent waiting for a slot, summed (``time.monotonic``).
        max_waiting: the most decodes that waited at once.
    """

    workers: int
    decodes: int = 0
    waited: int = 0
    wait_seconds: float = 0.0
    max_waiting: int = 0


def core_count() -> int:
    """The cores this process may run on (``sched_getaffinity``; ``cpu_count`` elsewhere)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class DecodeQueue:
    """At most ``workers`` decodes at once; waiting decodes go earliest due time first.

    A decode holds a slot (:meth:`slot`) for as long as it decodes. When every
    slot is taken, the caller waits; when one frees, the waiting decode with the
    earliest ``due`` (ties: the one that asked first) takes it. ``due`` is the
    time the picture was wanted, on the clock the callers share (epoch seconds
    for cameras and looks); ``None`` means now, by ``clock``.

    Thread-safe. Never take a slot while holding a lock that a decode holding a
    slot may wait for: a decoder takes its own lock first, then a slot.

    Example::

        queue = DecodeQueue(workers=2)
        with queue.slot(due=look_due):
            frame = decode_the_gop()

    Args:
        workers: decodes at once (default: one per core, :func:`core_count`).
        clock: the clock of ``due`` times (default ``time.time``).

    Raises:
        ValueError: ``workers`` is not positive.
    """

    def __init__(self, workers: int | None = None, *, clock: Callable[[], float] = time.time):
        n = core_count() if workers is None else workers
        if n < 1:
            raise ValueError(f"A decode queue needs at least one worker, got {n}.")
        self.workers = n
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._waiting: list[tuple[float, int]] = []
        self._tickets = itertools.count()
        self._running = 0
        self._decodes = 0
        self._waited = 0
        self._wait_seconds = 0.0
        self._max_waiting = 0

    @property
    def running(self) -> int:
        """Decodes holding a slot now."""
        with self._cond:
            return self._running

    @property
    def waiting(self) -> int:
        """Decodes waiting for a slot now."""
        with self._cond:
            return len(self._waiting)

    def stats(self) -> DecodeQueueStats:
        """The counters so far."""
        with self._cond:
            return DecodeQueueStats(
                self.workers, self._decodes, self._waited, self._wait_seconds, self._max_waiting
            )

    @contextmanager
    def slot(self, due: float | None = None) -> Iterator[None]:
        """Hold one decode slot for the ``with`` block; wait for it in due-time order.

        Args:
            due: when the picture was wanted (``None``: now).
        """
        self._acquire(self._clock() if due is None else due)
        try:
            yield
        finally:
            self._release()

    def _acquire(self, due: float) -> None:
        with self._cond:
            if self._running < self.workers and not self._waiting:
                self._running += 1
                self._decodes += 1
                return
            ticket = (due, next(self._tickets))
            heapq.heappush(self._waiting, ticket)
            self._max_waiting = max(self._max_waiting, len(self._waiting))
            started = time.monotonic()
            while self._running >= self.workers or self._waiting[0] != ticket:
                self._cond.wait()
            heapq.heappop(self._waiting)
            self._running += 1
            self._decodes += 1
            self._waited += 1
            self._wait_seconds += time.monotonic() - started
            if self._waiting and self._running < self.workers:
                self._cond.notify_all()  # another slot is free for the next in line

    def _release(self) -> None:
        with self._cond:
            self._running -= 1
            if self._waiting:
                self._cond.notify_all()


_shared: DecodeQueue | None = None
_shared_lock = threading.Lock()


def shared_decode_queue() -> DecodeQueue:
    """The process-wide decode queue (one slot per core), made on first use.

    Example:
        >>> shared_decode_queue() is shared_decode_queue()
        True
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = DecodeQueue()
        return _shared
