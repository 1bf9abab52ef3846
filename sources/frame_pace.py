"""Pace a detector on the frames' own time, not on the wall clock.

A detector that analyses at most ``fps`` frames a second must count seconds of
*video*: a file decoded faster than real time (a replay, ``realtime = false``,
an embedded stream) delivers many seconds of video per wall-clock second, and a
wall-clock rate limit would analyse only a handful of its frames.
"""

from __future__ import annotations

from collections.abc import Callable

import reactivex
from reactivex import Observable
from reactivex import operators as ops

from pipeline.core.frame import Frame

_SLACK_S = 1e-6
"""Float noise in stream times (0.8 - 0.6 < 0.2): a microsecond early still counts as due."""


def frame_time(frame: Frame) -> tuple[bool, float]:
    """The frame's own time: ``(True, stream_time)``, or ``(False, wall_time)`` without one.

    Example:
        >>> import numpy as np
        >>> f = Frame(camera="c", seq=1, wall_time=1700000000.0, stream_time=2.5,
        ...           width=2, height=2, rgb=np.zeros((2, 2, 3), np.uint8))
        >>> frame_time(f)
        (True, 2.5)
    """
    if frame.stream_time is not None:
        return True, frame.stream_time
    return False, frame.wall_time


class FramePacer:
    """Let a frame through when ``period`` seconds of frame time have passed since the last.

    Frame time is the stream time, or the arrival time for frames without one.
    A frame whose time goes backwards (a reconnect restarts the stream's clock)
    or whose kind of time changes passes and starts the count again. Plain
    class; :func:`pace_frames` is the Rx operator.

    Example:
        >>> pacer = FramePacer(0.2)
        >>> [t for t in (0.0, 0.1, 0.2, 0.3, 0.45, 0.5, 0.1) if pacer.due(True, t)]
        [0.0, 0.2, 0.45, 0.1]

    Raises:
        ValueError: ``period`` is negative.
    """

    def __init__(self, period: float) -> None:
        if not period >= 0:
            raise ValueError(f"The period must be zero or more seconds, got {period}.")
        self.period = period
        self._last: tuple[bool, float] | None = None

    def due(self, is_stream_time: bool, t: float) -> bool:
        """Whether a frame at time ``t`` passes; if so, the count starts from it."""
        last = self._last
        if (
            last is None
            or last[0] != is_stream_time
            or t < last[1]
            or t >= last[1] + self.period - _SLACK_S
        ):
            self._last = (is_stream_time, t)
            return True
        return False

    def frame_due(self, frame: Frame) -> bool:
        """:meth:`due` for ``frame``'s own time."""
        return self.due(*frame_time(frame))


def pace_frames(fps: float) -> Callable[[Observable[Frame]], Observable[Frame]]:
    """Rx operator: at most ``fps`` frames per second of the frames' own time.

    Example:
        >>> camera.frames().pipe(pace_frames(5), ops.map(detector.detect))  # doctest: +SKIP

    What ``throttle_first(1 / fps)`` does on the wall clock, on the video's
    clock instead (see :class:`FramePacer`); each subscription counts on its own.

    Raises:
        ValueError: ``fps`` is not positive.
    """
    if not fps > 0:
        raise ValueError(f"The frame rate must be positive, got {fps}.")
    period = 1.0 / fps

    def _op(source: Observable[Frame]) -> Observable[Frame]:
        return reactivex.defer(lambda _: source.pipe(ops.filter(FramePacer(period).frame_due)))

    return _op
