"""How long to wait before trying again: exponential backoff with jitter, or a server's Retry-After.

The one place for retry delays: camera reconnects, model-server retries and
restarts, webhook redeliveries all use :func:`backoff_delay` (or the stateful
:class:`Backoff` around it), and HTTP clients read ``Retry-After`` with
:func:`parse_retry_after`.

Example:
    >>> import random
    >>> d = backoff_delay(2, initial_s=0.5, max_s=20.0, rng=random.Random(1))
    >>> 1.0 <= d <= 2.0
    True
    >>> parse_retry_after("7")
    7.0
"""

from __future__ import annotations

import math
import random
import re
import time
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime

_SECONDS = re.compile(r"\d+(?:\.\d+)?")


def backoff_delay(
    attempt: int,
    initial_s: float,
    max_s: float,
    *,
    factor: float = 2.0,
    jitter: float = 0.5,
    rng: random.Random | None = None,
) -> float:
    """Return the wait before retry number ``attempt`` (0-based): exponential, capped, jittered.

    With ``d = min(max_s, initial_s * factor**attempt)`` the result is drawn
    uniformly from ``[d * (1 - jitter), d]``: never above the cap, never zero, and
    two clients that fail together do not retry in lockstep.

    Example:
        >>> [backoff_delay(n, 1.0, 60.0, jitter=0.0) for n in range(8)]
        [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]

    Args:
        attempt: failures before this one (0 for the first retry).
        initial_s: the first delay in seconds (> 0).
        max_s: the longest delay in seconds (> 0).
        factor: growth per failure (>= 1).
        jitter: fraction of the delay that is random, in [0, 1).
        rng: random source (a seeded ``random.Random`` in tests); the module's by default.

    Raises:
        ValueError: for a negative attempt, non-positive times, a factor below 1
            or a jitter outside [0, 1).
    """
    if attempt < 0:
        raise ValueError(f"The attempt number must not be negative, got {attempt}.")
    if initial_s <= 0 or max_s <= 0:
        raise ValueError(f"Backoff delays must be positive, got {initial_s} and {max_s}.")
    if factor < 1:
        raise ValueError(f"The backoff factor must be at least 1, got {factor}.")
    if not 0 <= jitter < 1:
        raise ValueError(f"The backoff jitter must be in [0, 1), got {jitter}.")
    delay = min(max_s, initial_s * factor ** min(attempt, 64))
    if jitter:
        delay *= 1.0 - jitter * (rng or random).random()
    return delay


@dataclass
class Backoff:
    """Delays for consecutive attempts: :func:`backoff_delay` with a counter, reset on success.

    Example:
        >>> b = Backoff(initial=1.0, cap=60.0, jitter=0.0)
        >>> [b.next_delay() for _ in range(8)]
        [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
        >>> b.reset(); b.next_delay()
        1.0

    Args:
        initial: first delay in seconds (> 0).
        cap: longest delay in seconds (>= initial).
        factor: growth per failure (>= 1).
        jitter: fraction of the delay that is random (0..1, exclusive of 1).
        rng: random source (inject a seeded ``random.Random`` for reproducible tests).
    """

    initial: float = 1.0
    cap: float = 60.0
    factor: float = 2.0
    jitter: float = 0.3
    rng: random.Random = field(default_factory=random.Random, repr=False)
    attempts: int = 0

    def __post_init__(self) -> None:
        if self.initial <= 0:
            raise ValueError(f"The first backoff delay must be positive, got {self.initial}.")
        if self.cap < self.initial:
            raise ValueError(f"The backoff cap ({self.cap}) must not be below the first delay.")
        if self.factor < 1:
            raise ValueError(f"The backoff factor must be at least 1, got {self.factor}.")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"The backoff jitter must be in [0, 1), got {self.jitter}.")

    def next_delay(self) -> float:
        """Return the delay before the next attempt and count the attempt."""
        delay = backoff_delay(
            self.attempts,
            self.initial,
            self.cap,
            factor=self.factor,
            jitter=self.jitter,
            rng=self.rng,
        )
        self.attempts += 1
        return delay

    def reset(self) -> None:
        """Start again from the first delay (call after a successful connection)."""
        self.attempts = 0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Return the seconds a ``Retry-After`` header asks to wait (seconds or HTTP date).

    ``None`` when the header is absent or unreadable; a date in the past gives 0.

    Example:
        >>> parse_retry_after("120"), parse_retry_after("soon")
        (120.0, None)
        >>> parse_retry_after("Thu, 01 Jan 1970 00:01:00 GMT", now=30.0)
        30.0

    Args:
        value: the header's value.
        now: epoch seconds to measure a date against; the wall clock by default.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if _SECONDS.fullmatch(value):
        seconds = float(value)
        return seconds if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" gives a naive datetime; HTTP dates are UTC
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


__all__ = ["Backoff", "backoff_delay", "parse_retry_after"]
