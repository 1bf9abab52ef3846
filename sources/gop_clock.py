"""When a camera's keyframes arrive, and whether the next one comes soon enough to wait for.

A timer look may wait for the next keyframe (one frame's decode) instead of
decoding the GOP so far; that only pays when the keyframe comes within the
wait. :class:`GopClock` learns the GOP's length from the arrivals of the last
two keyframes and says whether the next is due within a given time.

Example:
    >>> gop = GopClock()
    >>> gop.keyframe(10.0); gop.keyframe(14.0)   # a 4 s GOP
    >>> gop.gop_s, gop.comes_within(now=14.5, seconds=1.0), gop.comes_within(17.0, 1.0)
    (4.0, False, True)
"""

from __future__ import annotations

KEYFRAME_SLACK_S = 0.25
"""How much later than one GOP after the last a keyframe may still come (network jitter)."""


class GopClock:
    """Keyframe arrivals of one camera: the GOP's length and when the next keyframe is due.

    Args:
        slack_s: a keyframe may come this much later than one GOP after the last.
    """

    def __init__(self, slack_s: float = KEYFRAME_SLACK_S) -> None:
        self.slack_s = slack_s
        self.last_at: float | None = None
        """Arrival time of the newest keyframe (``None`` before one)."""
        self.gop_s: float | None = None
        """Time between the last two keyframes (``None`` before two)."""

    def keyframe(self, at: float) -> None:
        """A keyframe arrived at ``at``."""
        if self.last_at is not None and at > self.last_at:
            self.gop_s = at - self.last_at
        self.last_at = at

    def comes_within(self, now: float, seconds: float) -> bool:
        """Whether the next keyframe may arrive within ``seconds`` of ``now`` (unknown: yes)."""
        if self.gop_s is None or self.last_at is None:
            return True
        return self.last_at + self.gop_s - now <= seconds + self.slack_s
