"""The scheduler's clock, read and set so that virtual time always moves on.

Every reactivex scheduler keeps time as a ``datetime``, and virtual schedulers
(``TestScheduler``, ``HistoricalScheduler``) count whole microseconds: a delay
is rounded to the microsecond when it is scheduled. An end computed in float
seconds (``now + 20.0``) can therefore fall a hair after the instant its timer
fires; the remaining delay then rounds to 0 and the timer fires again at the
same instant, for ever. The helpers here keep deadlines on the scheduler's own
clock (``datetime``), so "is it over?" and "how long is left?" are exact.

Example:
    >>> from reactivex.testing import TestScheduler
    >>> s = TestScheduler()
    >>> end = deadline(s, 20.0)
    >>> seconds_until(s, end), reached(s, end)
    (20.0, False)
"""

from __future__ import annotations

from datetime import datetime, timedelta

from reactivex import abc

TICK_S = 1e-6
"""The resolution of a virtual clock: one microsecond."""

NEVER = datetime.min
"""A deadline that has always been reached (compare with ``reached``)."""


def now_s(scheduler: abc.SchedulerBase) -> float:
    """Return the scheduler's clock as epoch seconds (virtual seconds on test schedulers)."""
    return scheduler.now.timestamp()


def deadline(scheduler: abc.SchedulerBase, seconds: float) -> datetime:
    """The scheduler's instant ``seconds`` from now, on its own clock (to the microsecond)."""
    return scheduler.now + timedelta(seconds=seconds)


def reached(scheduler: abc.SchedulerBase, instant: datetime) -> bool:
    """Whether the scheduler's clock is at or past ``instant`` (``NEVER`` is always reached)."""
    if instant is NEVER:
        return True
    return scheduler.now >= instant


def seconds_until(scheduler: abc.SchedulerBase, instant: datetime) -> float:
    """Seconds from now until ``instant`` on the scheduler's clock (0 once it is reached).

    The result is a whole number of microseconds, so scheduling it lands exactly
    on ``instant``.
    """
    if reached(scheduler, instant):
        return 0.0
    return (instant - scheduler.now).total_seconds()


def at_least_a_tick(seconds: float) -> float:
    """Return ``seconds``, but never less than one clock tick.

    A timer that reschedules itself with this always moves virtual time on.

    Example:
        >>> at_least_a_tick(0.0), at_least_a_tick(2.5)
        (1e-06, 2.5)
    """
    return seconds if seconds >= TICK_S else TICK_S
