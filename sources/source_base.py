"""What every frame source shares: holds, frame subscribers, state, counters and shutdown.

:class:`SourceBase` is the one place where a :class:`~pipeline.core.frame.FrameSource`
keeps its bookkeeping; a source adds how it gets pictures (``freshest``,
``keyframe``, ``frames``) and, if it has one, a worker thread.

Example (a source whose pictures come from elsewhere)::

    class StillSource(SourceBase):
        def __init__(self, name: str, frame: Frame) -> None:
            super().__init__(name)
            self._frame = frame

        def freshest(self, timeout=None, *, due=None) -> Frame | None:
            return self._frame if self.held else None

        def keyframe(self, max_age_s, timeout=None, *, due=None) -> Frame | None:
            return self.freshest(timeout)

        def frames(self, fps: float | None = None) -> reactivex.Observable[Frame]:
            return self._tap_observable(lambda observer: Tap(observer))  # sources.taps.Tap

    source = StillSource("porch", frame)
    hold = source.connect()
    source.latest()          # the frame
    hold.dispose(); source.close()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Self

import reactivex
from reactivex import abc
from reactivex.disposable import Disposable
from reactivex.subject import BehaviorSubject

from pipeline.core.events import CameraState
from pipeline.core.frame import CameraStats, Frame
from pipeline.core.logs import log_unexpected
from pipeline.core.redact import redact
from sources.taps import Tap

log = logging.getLogger("lookout.sources")

Clock = Callable[[], float]


class SourceBase:
    """Holds, subscribers, state, counters and shutdown of one frame source.

    Subclasses implement ``freshest``, ``keyframe`` and ``frames`` (usually with
    :meth:`_tap_observable` and :meth:`_feed`), and may override the hooks
    ``_on_connect`` (a new hold), ``_on_subscribe`` (a new ``frames()``
    subscriber), ``_on_released`` (the last hold went), ``_refresh_counters``
    (before a ``stats()`` snapshot) and ``_shutdown`` (inside ``close()``).
    A worker thread started with :meth:`_start_worker` is joined by ``close()``.

    Thread safety: ``_lock`` is a re-entrant condition; every change of holders,
    state or closing notifies it, so a worker or a waiting reader wakes up.

    Args:
        name: the camera's name (put on every frame and every state).
        clock: wall clock for state and arrival times (epoch seconds).
    """

    def __init__(self, name: str, *, clock: Clock = time.time) -> None:
        self.name = name
        self._clock = clock
        self._lock = threading.Condition(threading.RLock())
        self._stop = threading.Event()
        self._closed = False
        self._holders = 0
        self._taps: list[Tap] = []
        self._thread: threading.Thread | None = None
        self._join_timeout_s = 5.0
        self._frames_decoded = 0
        self._decode_seconds = 0.0
        self._packets = 0
        self._last_packet_time: float | None = None
        self._last_frame_time: float | None = None
        self._state = CameraState(camera=name, online=False, since=clock())
        self._states: BehaviorSubject[CameraState] = BehaviorSubject(self._state)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ holds

    def connect(self) -> abc.DisposableBase:
        """Hold the source open; dispose the returned object (idempotent) to release it.

        Raises:
            RuntimeError: the source is closed.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError(f"Camera {self.name!r} is closed.")
            self._holders += 1
            self._on_connect()
            self._lock.notify_all()
        released = threading.Event()

        def release() -> None:
            if released.is_set():
                return
            released.set()
            with self._lock:
                self._holders -= 1
                if self._holders == 0:
                    self._on_released()
                self._lock.notify_all()

        return Disposable(release)

    @property
    def held(self) -> bool:
        """Whether someone holds the source open (not whether pictures flow: ``state.online``)."""
        with self._lock:
            return self._holders > 0

    def latest(self, timeout: float | None = None) -> Frame | None:
        """The newest frame (``FrameProvider``): the same as :meth:`freshest`."""
        return self.freshest(timeout)

    def freshest(self, timeout: float | None = None, *, due: float | None = None) -> Frame | None:
        """The newest picture; see :class:`~pipeline.core.frame.FrameSource`."""
        raise NotImplementedError

    def keyframe(
        self, max_age_s: float, timeout: float | None = None, *, due: float | None = None
    ) -> Frame | None:
        """A picture no older than ``max_age_s`` for about one decode; see ``FrameSource``."""
        raise NotImplementedError

    def keep_current(self, seconds: float | None = None) -> float:
        """Nothing to keep current here (a source without a decoder): returns the time now."""
        return self._clock()

    # ------------------------------------------------------------ state

    @property
    def state(self) -> CameraState:
        """The current connection state (online, reconnects, last error)."""
        with self._lock:
            return self._state

    @property
    def states(self) -> reactivex.Observable[CameraState]:
        """Every state change; a new subscriber first gets the current state."""
        return self._states

    def _set_state(self, *, online: bool, last_error: str | None, failed: bool = False) -> None:
        """Publish a new state (redacted, stamped with the clock) if anything changed.

        ``failed`` counts one more reconnect attempt (a failed connection or request).
        """
        with self._lock:
            old = self._state
            new = replace(
                old,
                online=online,
                last_error=None if last_error is None else redact(last_error),
                reconnects=old.reconnects + (1 if failed else 0),
            )
            if new == old:
                return
            self._state = replace(new, since=self._clock())
            state = self._state
            self._lock.notify_all()
        self._states.on_next(state)

    # ------------------------------------------------------------ counters

    def stats(self) -> CameraStats:
        """Frames decoded, decode time, packets, arrival times, online and reconnects, now.

        Cheap and non-blocking (it never waits for a decode in progress): fit for
        every metrics scrape. Counters cover all connections and only grow.

        Example::

            s = camera.stats()
            print(s.packets, s.frames_decoded, f"{s.decode_seconds:.3f} s", s.online)
        """
        self._refresh_counters()
        with self._lock:
            return CameraStats(
                frames_decoded=self._frames_decoded,
                decode_seconds=self._decode_seconds,
                packets=self._packets,
                last_packet_time=self._last_packet_time,
                last_frame_time=self._last_frame_time,
                online=self._state.online,
                reconnects=self._state.reconnects,
            )

    def _count_packet(self, arrived: float) -> None:
        with self._lock:
            self._packets += 1
            self._last_packet_time = arrived

    def _count_decoded(self, frames: int, seconds: float, last_frame_time: float | None) -> None:
        with self._lock:
            self._frames_decoded += frames
            self._decode_seconds += seconds
            newest = self._last_frame_time
            if last_frame_time is not None and (newest is None or last_frame_time > newest):
                self._last_frame_time = last_frame_time

    # ------------------------------------------------------------ subscribers

    def _tap_observable(
        self, make_tap: Callable[[abc.ObserverBase[Frame]], Tap]
    ) -> reactivex.Observable[Frame]:
        """A hot observable of frames: each subscriber is a tap and holds the source.

        A subscriber of a closed (or finished) source completes at once.
        """

        def subscribe(
            observer: abc.ObserverBase[Frame], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            tap = make_tap(observer)
            with self._lock:
                if self._closed or self._finished():
                    observer.on_completed()
                    return Disposable()
                self._taps.append(tap)
                self._on_subscribe()
            hold = self.connect()

            def dispose() -> None:
                with self._lock:
                    if tap in self._taps:
                        self._taps.remove(tap)
                hold.dispose()

            return Disposable(dispose)

        return reactivex.create(subscribe)

    def _current_taps(self) -> list[Tap]:
        with self._lock:
            return list(self._taps)

    def _feed(
        self,
        taps: list[Tap],
        t: float,
        picture: Callable[[], Frame | None],
        cheap: bool = True,
    ) -> None:
        """Give the frame of ``picture()`` to the taps due at ``t`` (decoded once, if any is due).

        A subscriber gets each frame once; one that raises is logged and kept (it
        must not stop the source or the other subscribers). Taps that take
        keyframes only are offered the picture when ``cheap`` is true: it costs
        no decode of its own (a keyframe, or a frame of a decoder kept current).
        """
        due = [tap for tap in taps if (cheap or not tap.keyframes) and tap.due(t)]
        if not due:
            return
        frame = picture()
        if frame is None:
            return
        for tap in due:
            if frame.seq == tap.last_seq:
                continue
            tap.last_seq = frame.seq
            tap.advance(t)
            try:
                tap.observer.on_next(frame)
            except Exception as exc:  # a subscriber's error must not stop the source
                tap.errors += 1
                log_unexpected(log, f"camera {self.name}: frame subscriber failed", exc)

    def _complete_taps(self) -> None:
        with self._lock:
            taps, self._taps = self._taps, []
        for tap in taps:
            try:
                tap.observer.on_completed()
            except Exception as exc:
                log_unexpected(log, f"camera {self.name}: frame subscriber failed", exc)

    # ------------------------------------------------------------ worker and closing

    def _start_worker(self, prefix: str) -> None:
        """Start ``self._work`` in a daemon thread ``prefix-NAME`` unless it runs (lock held)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._work, name=f"{prefix}-{self.name}", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Stop the worker, release what the source opened and complete every observable.

        Blocks until the worker thread has ended (at most ``_join_timeout_s``,
        when it is inside a blocking network call). Safe to call twice.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
            self._lock.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self._join_timeout_s)
        self._shutdown()
        self._complete_taps()
        self._set_state(online=False, last_error=self._state.last_error)
        self._states.on_completed()

    # ------------------------------------------------------------ hooks

    def _work(self) -> None:
        """The worker thread's body (sources with a worker override it)."""

    def _finished(self) -> bool:
        """Whether the source has played to its end (new subscribers complete at once)."""
        return False

    def _on_connect(self) -> None:
        """A new hold was taken (lock held)."""

    def _on_subscribe(self) -> None:
        """A new ``frames()`` subscriber was added (lock held)."""

    def _on_released(self) -> None:
        """The last hold was released (lock held)."""

    def _refresh_counters(self) -> None:
        """Fold counters kept elsewhere (a decoder's) into the source's, before ``stats()``."""

    def _shutdown(self) -> None:
        """Release what the source opened, after the worker has stopped (inside ``close()``)."""
