"""A camera seen through one watch: the looks in flight, and a gate that stops new ones.

Example:
    >>> gate = LookGate(camera)  # doctest: +SKIP
    >>> frame = gate.latest(2.0); gate.finished()  # doctest: +SKIP
"""

from __future__ import annotations

import threading
import time

from pipeline.core.frame import Frame, FrameSource


class LookGate:
    """A camera seen through one watch: counts looks in flight and can stop new ones.

    ``latest()`` (or ``freshest()``, ``keyframe()``: whichever the watch's frame
    selector asks for) is the first thing a look does, and every look that
    called it ends in one ``LookRecord``, or is written off by :meth:`abandon`
    when the watch ends first. A selector may ask more than once for one look
    (a keyframe, then the next one, then the newest frame): the calls of one
    thread count as one look until :meth:`finished`. While closed (draining for
    shutdown or a restart), a new look waits until the watch is cancelled and
    then gets no frame; its result is dropped with the watch.
    """

    def __init__(
        self,
        camera: FrameSource,
        max_wait_s: float = 60.0,
    ) -> None:
        self.camera = camera
        self.name = camera.name
        self.max_wait_s = max_wait_s
        self._lock = threading.Condition()
        self._started: list[tuple[int, float]] = []  # (thread, when), oldest first
        self._closed = False
        self._released = threading.Event()

    def _start(self) -> bool:
        """Count a look as started; False (after waiting for the release) while closed.

        A thread whose look is counted and not finished yet asks for the same look.
        """
        me = threading.get_ident()
        with self._lock:
            closed = self._closed
            if not closed and all(thread != me for thread, _ in self._started):
                self._started.append((me, time.monotonic()))
        if closed:
            self._released.wait(self.max_wait_s)
        return not closed

    def latest(self, timeout: float | None = None) -> Frame | None:
        """The camera's newest frame; while closed, wait for the release and return ``None``."""
        return self.camera.latest(timeout) if self._start() else None

    def freshest(self, timeout: float | None = None, *, due: float | None = None) -> Frame | None:
        """The camera's newest picture (:meth:`FrameSource.freshest`), as :meth:`latest` counts."""
        return self.camera.freshest(timeout, due=due) if self._start() else None

    def keyframe(
        self, max_age_s: float, timeout: float | None = None, *, due: float | None = None
    ) -> Frame | None:
        """A cheap recent picture (:meth:`FrameSource.keyframe`), as :meth:`latest` counts."""
        return self.camera.keyframe(max_age_s, timeout, due=due) if self._start() else None

    def keep_current(self, seconds: float | None = None) -> float:
        """Keep the camera's decoder current (:meth:`FrameSource.keep_current`); not a look."""
        return self.camera.keep_current(seconds)

    def finished(self) -> float | None:
        """Count one look as done; return its duration in seconds (``None`` if unknown)."""
        with self._lock:
            start = self._started.pop(0)[1] if self._started else None
            self._lock.notify_all()
        return None if start is None else time.monotonic() - start

    @property
    def in_flight(self) -> int:
        """Looks started and not yet finished."""
        with self._lock:
            return len(self._started)

    def close(self) -> None:
        """Stop new looks (looks in flight go on)."""
        with self._lock:
            self._closed = True

    def abandon(self) -> None:
        """The watch ended: stop new looks and write off those in flight (no record follows)."""
        with self._lock:
            self._closed = True
            self._started.clear()
            self._lock.notify_all()
        self._released.set()

    def wait_idle(self, deadline: float) -> bool:
        """Wait until no look is in flight or ``time.monotonic()`` passes ``deadline``."""
        with self._lock:
            while self._started:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.2))
            return True

    def release(self) -> None:
        """Let looks that waited while closed go (they get no frame)."""
        self._released.set()
