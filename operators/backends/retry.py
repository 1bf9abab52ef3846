"""Retry policy for HTTP calls: which failures are transient, and how long to wait.

Example:
    >>> import random
    >>> d = backoff_delay(2, initial_s=0.5, max_s=20.0, rng=random.Random(1))
    >>> 1.0 <= d <= 2.0
    True
    >>> parse_retry_after("7"), is_retryable_status(503), is_retryable_status(400)
    (7.0, True, False)
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
JITTER = 0.5


def is_retryable_status(status: int) -> bool:
    """Whether an HTTP status is worth retrying: 408, 425, 429 and 5xx (not 501)."""
    return status in RETRYABLE_STATUS or (500 <= status < 600 and status != 501)


def backoff_delay(
    attempt: int, initial_s: float, max_s: float, rng: random.Random | None = None
) -> float:
    """Exponential backoff with jitter and a cap.

    The ``attempt``-th retry (0-based) waits ``base = min(max_s, initial_s * 2**attempt)``
    scaled by a random factor in ``[1 - JITTER, 1]``, i.e. between ``base / 2`` and ``base``.

    Raises:
        ValueError: for a negative attempt or non-positive times.
    """
    if attempt < 0:
        raise ValueError(f"attempt must not be negative, got {attempt}.")
    if initial_s <= 0 or max_s <= 0:
        raise ValueError("initial_s and max_s must be positive.")
    base = min(max_s, initial_s * (2.0 ** min(attempt, 60)))
    r = (rng or random).random()
    return base * (1.0 - JITTER * r)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Read seconds from a ``Retry-After`` header (delta or HTTP date); ``None`` if absent/bad.

    Example:
        >>> parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT",
        ...                   now=datetime(2015, 10, 21, 7, 27, 50, tzinfo=UTC))
        10.0
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
