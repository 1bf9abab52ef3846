"""Timer looks that cost about a keyframe: a frame selector for cameras that decode on demand.

A watch's timer look (the model said "look again in N s") is not urgent: a
picture a second or two old serves it as well as the newest one, and the
newest keyframe's picture costs one frame's decode instead of the GOP's.
:class:`KeyframeTimerLooks` (a :class:`~operators.frame_selector.FrameSelector`)
gives each look:

- ``timer``: the newest keyframe's picture when it is at most ``max_age_s``
  old; else the first keyframe after the look is due (the wait is at most
  ``max_age_s``, and a camera that knows its next keyframe is further away
  does not wait at all); else, or when that picture is the one the watch
  judged last, the next keyframe or, failing that, the newest frame (decoded
  to the newest packet); all within the look's wait for a frame;
- ``wake`` and ``start``: the newest frame, always.

A source that only has ``latest()`` (a plain
:class:`~pipeline.core.frame.FrameProvider`) gets ``latest()`` for every look.

Example:
    >>> import numpy as np
    >>> from pipeline.core.frame import Frame
    >>> class Yard:
    ...     name = "yard"
    ...     def _frame(self, seq, key):
    ...         return Frame(camera="yard", seq=seq, wall_time=float(seq), stream_time=None,
    ...                      width=2, height=2, keyframe=key, rgb=np.zeros((2, 2, 3), np.uint8))
    ...     def latest(self, timeout=None):
    ...         return self.freshest(timeout)
    ...     def freshest(self, timeout=None, *, due=None):
    ...         return self._frame(9, False)
    ...     def keyframe(self, max_age_s, timeout=None, *, due=None):
    ...         return self._frame(8, True)
    ...     def keep_current(self, seconds=None):
    ...         return 0.0
    >>> looks = KeyframeTimerLooks(max_age_s=2.0)
    >>> looks.select(Yard(), "timer", due=10.0, wait_s=2.0).seq   # the keyframe: cheap
    8
    >>> looks.select(Yard(), "wake", due=11.0, wait_s=2.0).seq    # a wake: the newest
    9
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

from operators.sampler import Trigger
from pipeline.core.frame import Frame, FrameProvider


@runtime_checkable
class ChoosyFrames(FrameProvider, Protocol):
    """A camera that offers the newest frame and the newest keyframe (``FrameSource`` does)."""

    def freshest(self, timeout: float | None = None, *, due: float | None = None) -> Frame | None:
        """The newest picture (see :meth:`pipeline.core.frame.FrameSource.freshest`)."""
        ...

    def keyframe(
        self, max_age_s: float, timeout: float | None = None, *, due: float | None = None
    ) -> Frame | None:
        """A recent keyframe's picture (see :meth:`pipeline.core.frame.FrameSource.keyframe`)."""
        ...


class KeyframeTimerLooks:
    """Timer looks take a recent keyframe; wakes (and the first look) take the newest frame.

    One per run of a watch (it remembers the frame the last look took, so a
    timer look never judges the same picture twice).

    Args:
        max_age_s: the staleness bound: how old a timer look's keyframe may be,
            and how long it may wait for the next one (``[cameras.NAME]
            timer_max_age_s``); ``0`` makes every look take the newest frame.

    Raises:
        ValueError: ``max_age_s`` is negative.
    """

    def __init__(self, max_age_s: float) -> None:
        if max_age_s < 0:
            raise ValueError(f"max_age_s must not be negative, got {max_age_s}.")
        self.max_age_s = max_age_s
        self._last: float | None = None  # wall_time of the frame the last look took

    def select(
        self, frames: FrameProvider, trigger: Trigger, due: float, wait_s: float
    ) -> Frame | None:
        """The frame for one look (see :class:`~operators.frame_selector.FrameSelector`)."""
        if not isinstance(frames, ChoosyFrames):
            frame = frames.latest(wait_s)
        elif trigger == "timer" and self.max_age_s > 0:
            frame = self._keyframe(frames, due, wait_s)
        else:
            frame = frames.freshest(wait_s, due=due)
        if frame is not None:
            self._last = frame.wall_time
        return frame

    def _keyframe(self, frames: ChoosyFrames, due: float, wait_s: float) -> Frame | None:
        # All the calls of one look wait ``wait_s`` at most in all (a blocking budget
        # on a live camera's own waits; a virtual-clock source never waits).
        deadline = time.monotonic() + wait_s

        def left(most: float = wait_s) -> float:
            return max(0.0, min(most, deadline - time.monotonic()))

        frame = frames.keyframe(self.max_age_s, left(self.max_age_s), due=due)
        if frame is not None and self._last is not None and frame.wall_time <= self._last:
            # The picture the last look judged (a short next_run_in): the next keyframe.
            frame = frames.keyframe(0.0, left(self.max_age_s), due=due)
        if frame is None:  # no keyframe fresh enough in time: the newest frame
            frame = frames.freshest(left(), due=due)
        return frame
