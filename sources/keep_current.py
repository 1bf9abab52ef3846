"""How long a camera keeps its decoder current, within a bounded share of its time.

After a wake that a watch's wake policy accepted, the follow-up looks of the
next seconds want fresh pictures; a camera that decodes each packet as it
arrives during those seconds has them ready (one frame's decode, not the GOP's).
:class:`KeepCurrent` decides when that is on. Its share of time is bounded by a
token bucket: time kept current is paid for with tokens that refill at
``share`` seconds per second, up to ``share * window_s`` seconds (7.5 s with
the defaults); a scene with constant movement (a wake every few seconds) gets
at most ``share`` of its time decoded in full in the long run (and at most
``share * (1 + window_s / T)`` over any span of ``T`` seconds), never a
permanent full decode.

Example:
    >>> keep = KeepCurrent(seconds=5.0, share=0.25)
    >>> keep.request(now=100.0)  # kept current until 105
    105.0
    >>> keep.active(104.0), keep.active(105.5)
    (True, False)
    >>> round(keep.granted_s, 1)
    5.0

Times are on whatever clock the caller uses (a camera: ``time.time``); the
class keeps no clock of its own, so tests run on plain numbers.
"""

from __future__ import annotations

import threading

BURST_WINDOW_S = 30.0
"""The bucket holds ``share`` of this many seconds: the most a burst of wakes gets at once."""


class KeepCurrent:
    """When a camera decodes each packet as it arrives, after wakes, within a share of time.

    Args:
        seconds: how long one request keeps the decoder current (0: never).
        share: the longest share of time kept current in the long run (0..1).
        window_s: the bucket holds ``share * window_s`` seconds: the most a
            burst of requests gets before the share applies (default 30 s).

    Raises:
        ValueError: ``seconds`` or ``window_s`` negative, ``share`` outside 0..1.
    """

    def __init__(self, seconds: float, share: float, window_s: float = BURST_WINDOW_S) -> None:
        if seconds < 0 or window_s < 0:
            raise ValueError("seconds and window_s must not be negative.")
        if not 0 <= share <= 1:
            raise ValueError(f"share must be between 0 and 1, got {share}.")
        self.seconds = seconds
        self.share = share
        self.capacity = share * window_s
        self._tokens = self.capacity
        self._refilled_at: float | None = None
        self._until = float("-inf")
        self._lock = threading.Lock()
        self.requests = 0
        """Requests so far."""
        self.granted_s = 0.0
        """Seconds of keeping current granted so far (each second counted once)."""
        self.refused_s = 0.0
        """Seconds asked for beyond the share (not granted)."""

    def request(self, now: float, seconds: float | None = None) -> float:
        """Keep current from ``now`` for ``seconds`` (default :attr:`seconds`), as the share allows.

        Overlapping requests pay only for the time they add. Returns the time
        until which the decoder is kept current now (in the past: not at all).
        """
        want = self.seconds if seconds is None else max(0.0, seconds)
        with self._lock:
            self.requests += 1
            self._refill(now)
            add = max(0.0, now + want - max(self._until, now))
            granted = min(add, self._tokens)
            self._tokens -= granted
            self.granted_s += granted
            self.refused_s += add - granted
            if granted > 0:
                self._until = max(self._until, now) + granted
            return self._until

    def active(self, now: float) -> bool:
        """Whether the decoder is to be kept current at ``now``."""
        return now < self._until

    @property
    def until(self) -> float:
        """The time until which the decoder is kept current (``-inf`` before any request)."""
        return self._until

    def _refill(self, now: float) -> None:
        if self._refilled_at is not None and now > self._refilled_at:
            self._tokens = min(self.capacity, self._tokens + (now - self._refilled_at) * self.share)
        if self._refilled_at is None or now > self._refilled_at:
            self._refilled_at = now
