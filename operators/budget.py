"""A per-watch look budget: at most N looks in any sliding hour."""

from __future__ import annotations

from collections import deque


class LookBudget:
    """Sliding-window count of looks (plain class, times in seconds).

    Example:
        >>> b = LookBudget(2)
        >>> b.record(0.0); b.record(10.0)
        >>> b.wait(20.0)       # next look allowed when the first one is an hour old
        3580.0
        >>> b.wait(3600.0)
        0.0

    Args:
        max_looks: looks allowed per ``window_s`` (``None``: unlimited).
        window_s: the window, one hour by default.
    """

    def __init__(self, max_looks: int | None, window_s: float = 3600.0) -> None:
        if max_looks is not None and max_looks < 1:
            raise ValueError(f"The look budget must be at least 1, got {max_looks}.")
        if window_s <= 0:
            raise ValueError(f"The budget window must be positive, got {window_s}.")
        self.max_looks = max_looks
        self.window_s = window_s
        self._times: deque[float] = deque()

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] >= self.window_s:
            self._times.popleft()

    def record(self, now: float) -> None:
        """Count a look made at ``now``."""
        self._times.append(now)
        self._trim(now)

    def used(self, now: float) -> int:
        """Return the looks made in the window ending at ``now``."""
        self._trim(now)
        return len(self._times)

    def wait(self, now: float) -> float:
        """Seconds until a look is allowed (0 when one is allowed now)."""
        if self.max_looks is None:
            return 0.0
        self._trim(now)
        if len(self._times) < self.max_looks:
            return 0.0
        return max(0.0, self._times[-self.max_looks] + self.window_s - now)
