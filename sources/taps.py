"""A frame source's subscribers and how each is paced: every frame, a steady grid, a minimum gap."""

from __future__ import annotations

from dataclasses import dataclass

from reactivex import abc

from pipeline.core.frame import Frame


@dataclass(eq=False)
class Tap:
    """One ``frames()`` subscriber: its observer, its period and the last frame it got.

    The plain tap takes every frame it is offered; subclasses pace it
    (:class:`SteadyTap`, :class:`GapTap`). ``period`` is in the source's own time unit.
    A tap with ``keyframes`` set is offered only pictures that cost no decode of
    their own: keyframes (on a camera that decodes on demand each costs one
    packet's decode, not the GOP's) and, while the camera is kept current
    (``keep_current``), every frame it decodes anyway.
    """

    observer: abc.ObserverBase[Frame]
    period: float | None = None
    last_seq: int = -1
    errors: int = 0
    keyframes: bool = False

    def due(self, t: float) -> bool:
        """Whether a frame at time ``t`` is due for this subscriber."""
        return True

    def advance(self, t: float) -> None:
        """Note that the subscriber got a frame at time ``t``."""


@dataclass(eq=False)
class SteadyTap(Tap):
    """A tap paced to a steady grid: due at ``t0``, ``t0 + period``, ``t0 + 2 period``...

    A frame is due when the grid time has come; a time far before the grid (a
    reconnect restarting the stream's clock) restarts the grid. Without a
    period, every frame is due.

    Example:
        >>> tap = SteadyTap(observer=None, period=0.5)  # type: ignore[arg-type]
        >>> [t for t in (0.0, 0.2, 0.5, 0.6, 1.1) if tap.due(t) and not tap.advance(t)]
        [0.0, 0.5, 1.1]
    """

    next_due: float | None = None

    def due(self, t: float) -> bool:
        """Whether the grid time has come at ``t``."""
        if self.period is None:
            return True
        if self.next_due is None or t < self.next_due - 2 * self.period:
            self.next_due = t  # first packet, or time went backwards (reconnect)
        return t >= self.next_due

    def advance(self, t: float) -> None:
        """Move the grid one period on (or to ``t + period`` after a gap)."""
        if self.period is None or self.next_due is None:
            return
        self.next_due += self.period
        if self.next_due <= t:
            self.next_due = t + self.period


@dataclass(eq=False)
class GapTap(Tap):
    """A tap that lets a frame through when ``period`` has passed since the last one it got.

    What ``throttle_first(period)`` lets through, on the source's clock; use an
    exact time unit (integer microseconds of a virtual clock) for exact gaps.

    Example:
        >>> tap = GapTap(observer=None, period=250)  # type: ignore[arg-type]
        >>> [t for t in (0, 100, 300, 500, 550, 800) if tap.due(t) and not tap.advance(t)]
        [0, 300, 550, 800]
    """

    last: float | None = None

    def due(self, t: float) -> bool:
        """Whether ``period`` has passed since the last frame given."""
        return self.period is None or self.last is None or t - self.last >= self.period

    def advance(self, t: float) -> None:
        """Note the time of the frame given."""
        self.last = t
