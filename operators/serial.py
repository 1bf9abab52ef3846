"""Serialized emission without holding a lock while the observer runs.

An operator that is fed from several threads (a look pool, a timer, a cancel)
must call its observer one message at a time (Rx's grammar), but it must not
hold its own lock while it does: the observer may block (a sink, a lock of the
runner) and a thread that waits for the operator's lock would then wait for the
observer too. :class:`SerialEmitter` queues messages under a short internal
lock and lets one thread at a time drain the queue, outside every lock. Call
:meth:`SerialEmitter.push` while holding the operator's own lock (so messages
keep the order of the state changes that produced them), and
:meth:`SerialEmitter.drain` after releasing it.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Generic, Literal, TypeVar

from reactivex import abc

_T = TypeVar("_T")

_Kind = Literal["N", "E", "C"]


class SerialEmitter(Generic[_T]):
    """Queue Rx messages and deliver them one at a time, on whichever thread drains first.

    Example:
        >>> from reactivex.observer import Observer
        >>> out = SerialEmitter(Observer(print))
        >>> out.push_next(1); out.push_next(2); out.drain()
        1
        2

    Messages after ``on_error`` or ``on_completed`` are dropped. A push never
    calls the observer; a drain delivers everything queued so far (and what
    other threads queue meanwhile) unless another thread is draining, in which
    case that thread delivers it. A message pushed by the observer itself (a
    re-entrant push) is delivered after the current one, never nested.

    Args:
        observer: the downstream observer.
    """

    def __init__(self, observer: abc.ObserverBase[_T]) -> None:
        self._observer = observer
        self._lock = threading.Lock()
        self._queue: deque[tuple[_Kind, Any]] = deque()
        self._draining = False
        self._stopped = False

    @property
    def stopped(self) -> bool:
        """Whether a terminal message was pushed."""
        return self._stopped

    def _push(self, kind: _Kind, value: Any) -> None:
        with self._lock:
            if self._stopped:
                return
            if kind != "N":
                self._stopped = True
            self._queue.append((kind, value))

    def push_next(self, value: _T) -> None:
        """Queue an ``on_next``."""
        with self._lock:  # _push, inlined: this is on every item
            if not self._stopped:
                self._queue.append(("N", value))

    def push_error(self, error: Exception) -> None:
        """Queue an ``on_error`` (later messages are dropped)."""
        self._push("E", error)

    def push_completed(self) -> None:
        """Queue an ``on_completed`` (later messages are dropped)."""
        self._push("C", None)

    def push_next_first(self, value: _T) -> bool:
        """Queue an ``on_next``, or claim its delivery when nothing is queued or being delivered.

        The hot path of an operator that emits one item per input: call it
        with the operator's lock held (as :meth:`push_next`); on ``True`` the
        caller must hand the same ``value`` to :meth:`deliver_first` after
        releasing that lock. It saves a queue round trip and a lock.
        ``False``: queued (or dropped after the end), as :meth:`push_next`;
        call :meth:`drain` as usual.

        Example:
            >>> from reactivex.observer import Observer
            >>> out = SerialEmitter(Observer(print))
            >>> if out.push_next_first(1):
            ...     out.deliver_first(1)
            1
        """
        lock = self._lock
        lock.acquire()  # not ``with``: half the cost on CPython 3.11, and this is per item
        try:
            if self._stopped:
                return False
            if self._draining or self._queue:
                self._queue.append(("N", value))
                return False
            self._draining = True
            return True
        finally:
            lock.release()

    def drain(self) -> None:
        """Deliver the queue unless another thread is delivering it; never call with a lock held."""
        with self._lock:
            if self._draining or not self._queue:
                return
            self._draining = True
            kind, value = self._queue.popleft()
        self.deliver_first(value, kind)

    def deliver_first(self, value: Any, kind: _Kind = "N") -> None:
        """Deliver ``value`` (claimed by :meth:`push_next_first`), then what was queued since.

        (:meth:`drain` uses it too, with the message it took from the queue.)
        """
        lock = self._lock
        queue = self._queue
        observer = self._observer
        try:
            while True:
                if kind == "N":
                    observer.on_next(value)
                elif kind == "E":
                    observer.on_error(value)
                else:
                    observer.on_completed()
                lock.acquire()  # (as in push_next_first)
                try:
                    if not queue:
                        self._draining = False
                        return
                    kind, value = queue.popleft()
                finally:
                    lock.release()
        except BaseException:
            with lock:
                self._draining = False
            raise

    def on_next(self, value: _T) -> None:
        """Queue and drain an ``on_next``."""
        self.push_next(value)
        self.drain()

    def on_error(self, error: Exception) -> None:
        """Queue and drain an ``on_error``."""
        self.push_error(error)
        self.drain()

    def on_completed(self) -> None:
        """Queue and drain an ``on_completed``."""
        self.push_completed()
        self.drain()
