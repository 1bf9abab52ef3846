"""A look budget that refills: a token bucket, never blind for longer than one refill.

The hourly cap it replaces (at most N looks in any sliding hour) spent its N
looks in the first busy minutes and then let nothing through for the rest of
the hour: events in that time were missed. A token bucket holds at most
``burst`` looks and gains ``per_hour / 3600`` looks a second: a busy scene
gets a burst, then one look every ``3600 / per_hour`` seconds, so the watch
is never blind for longer than that.

It is the :class:`Budget` the adaptive sampler and the watch's lifecycle use
(``wait``, ``defer``, ``record``, ``used``, ``snapshot``); ``per_hour=None``
is no budget at all (every look allowed, looks still counted).

Example:
    >>> b = TokenBucket(per_hour=360, burst=2)     # one look per 10 s, bursts of 2
    >>> b.record(0.0); b.record(0.0)
    >>> b.wait(0.0), b.snapshot(0.0).exhausted_at
    (10.0, 0.0)
    >>> b.wait(10.0), b.snapshot(10.0).tokens
    (0.0, 1.0)
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Protocol


def default_burst(per_hour: int) -> int:
    """The burst when none is given: a tenth of the hourly rate, at least 1 and at most 60.

    Example:
        >>> default_burst(120), default_burst(5), default_burst(3600)
        (12, 1, 60)
    """
    return max(1, min(60, per_hour // 10))


@dataclass(frozen=True, slots=True)
class BudgetState:
    """The budget as the watch state, metrics and replays show it.

    Attributes:
        tokens: looks that can be made now (fractional while refilling);
            ``None`` without a budget.
        burst: the most it holds (``None`` without a budget).
        per_hour: refill rate, looks per hour (``None``: no budget).
        exhausted_at: when it last ran dry (seconds), ``None`` while a look is allowed.
        deferred: looks (timer or woken) that had to wait for a token so far.
        exhaustions: times it ran dry so far.
    """

    tokens: float | None
    burst: int | None
    per_hour: int | None
    exhausted_at: float | None
    deferred: int
    exhaustions: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return asdict(self)


class Budget(Protocol):
    """What the sampler and the watch's lifecycle ask of a look budget (times in seconds)."""

    def wait(self, now: float) -> float:
        """Seconds until a look is allowed (0: now)."""
        ...

    def defer(self, now: float) -> float:
        """Like ``wait``, for a look that is due now (counted when it has to wait)."""
        ...

    def record(self, now: float) -> None:
        """Count a look made at ``now``."""
        ...

    def used(self, now: float) -> int:
        """Looks made in the hour ending at ``now``."""
        ...

    def snapshot(self, now: float) -> BudgetState:
        """The budget's state at ``now``."""
        ...


class TokenBucket:
    """At most ``burst`` looks at once, refilled at ``per_hour`` looks an hour (times in seconds).

    Args:
        per_hour: looks an hour once the burst is spent (>= 1); ``None``: no
            budget (every look allowed).
        burst: looks that can be made back to back (default: :func:`default_burst`).

    Raises:
        ValueError: a rate or burst below 1.
    """

    def __init__(self, per_hour: int | None, burst: int | None = None) -> None:
        if per_hour is not None and per_hour < 1:
            raise ValueError(f"The look budget must be at least 1 look an hour, got {per_hour}.")
        if per_hour is not None:
            burst = default_burst(per_hour) if burst is None else burst
        if burst is not None and burst < 1:
            raise ValueError(f"The look burst must be at least 1, got {burst}.")
        self.per_hour = per_hour
        self.burst = burst
        self.rate = (per_hour or 0) / 3600.0
        self._tokens = float(burst or 0)
        self._at: float | None = None
        self._times: deque[float] = deque()
        self.exhausted_at: float | None = None
        self.deferred = 0
        self.exhaustions = 0

    def _refill(self, now: float) -> None:
        if self.burst is None:
            return
        if self._at is not None and now > self._at:
            self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        if self._at is None or now > self._at:
            self._at = now
        if self._tokens >= 1.0 - 1e-9:
            self.exhausted_at = None

    def wait(self, now: float) -> float:
        """Seconds until a look is allowed (0 when one is allowed now)."""
        self._refill(now)
        if self.burst is None or self._tokens >= 1.0 - 1e-9:
            return 0.0
        return max(1e-6, math.ceil((1.0 - self._tokens) / self.rate * 1e6) / 1e6)

    def defer(self, now: float) -> float:
        """Like :meth:`wait`, counting a look that has to wait (for the state and the replay)."""
        wait = self.wait(now)
        if wait > 0:
            self.deferred += 1
        return wait

    def record(self, now: float) -> None:
        """Spend a token on a look made at ``now`` (allowed by :meth:`wait`)."""
        self._times.append(now)
        self._trim(now)
        if self.burst is None:
            return
        self._refill(now)
        self._tokens = max(0.0, self._tokens - 1.0)
        if self._tokens < 1.0 - 1e-9 and self.exhausted_at is None:
            self.exhausted_at = now
            self.exhaustions += 1

    def restore(
        self,
        tokens: float | None,
        at: float,
        *,
        exhausted_at: float | None = None,
        deferred: int = 0,
    ) -> None:
        """Take over a budget from an earlier process: ``tokens`` were left at ``at``.

        It refills from ``at`` on, so a watch moved to another process gets no
        fresh burst. ``tokens=None`` (no budget then) keeps this one full.

        Example:
            >>> b = TokenBucket(per_hour=360, burst=5)
            >>> b.restore(0.0, at=100.0, exhausted_at=100.0, deferred=2)
            >>> b.wait(100.0), b.wait(110.0), b.deferred
            (10.0, 0.0, 2)
        """
        self.deferred = deferred
        if self.burst is None or tokens is None:
            return
        self._tokens = min(float(self.burst), max(0.0, tokens))
        self._at = at
        self.exhausted_at = exhausted_at if self._tokens < 1.0 - 1e-9 else None

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] >= 3600.0:
            self._times.popleft()

    def used(self, now: float) -> int:
        """Looks made in the hour ending at ``now``."""
        self._trim(now)
        return len(self._times)

    def snapshot(self, now: float) -> BudgetState:
        """The budget's state at ``now``."""
        self._refill(now)
        return BudgetState(
            tokens=None if self.burst is None else round(self._tokens, 3),
            burst=self.burst,
            per_hour=self.per_hour,
            exhausted_at=self.exhausted_at,
            deferred=self.deferred,
            exhaustions=self.exhaustions,
        )
