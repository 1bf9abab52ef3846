"""Virtual clocks for operator tests: one that refuses to stand still, one that a look can spend.

:class:`GuardedScheduler` is a ``TestScheduler`` that counts the actions it
runs at each instant and raises :class:`StuckClock` when one instant runs more
than ``limit`` of them: an operator that keeps rescheduling itself without
moving virtual time on fails the test instead of hanging it.
:class:`SlowFrames` is a camera on that clock whose ``latest(timeout)``
spends virtual time waiting, as a real one spends wall time.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from reactivex import abc, typing
from reactivex.scheduler import HistoricalScheduler
from reactivex.testing import TestScheduler

from pipeline.core.frame import Frame
from tests.support.fakes import rgb_frame


class StuckClock(AssertionError):
    """Virtual time stood still: too many actions ran at one instant."""


class GuardedScheduler(TestScheduler):
    """A ``TestScheduler`` that fails when more than ``limit`` actions run at one instant."""

    def __init__(self, limit: int = 50) -> None:
        super().__init__()
        self.limit = limit
        self.per_instant: Counter[float] = Counter()

    def schedule_absolute(
        self, duetime: typing.AbsoluteTime, action: typing.ScheduledAction[Any], state: Any = None
    ) -> abc.DisposableBase:
        def guarded(scheduler: abc.SchedulerBase, st: Any = None) -> Any:
            self.per_instant[self.clock] += 1
            if self.per_instant[self.clock] > self.limit:
                raise StuckClock(f"{self.limit} actions at t={self.clock}: virtual time is stuck")
            return action(scheduler, st)

        return super().schedule_absolute(duetime, guarded, state)


class GuardedHistorical(HistoricalScheduler):
    """A ``HistoricalScheduler`` (epoch clock, as a replay's) with the same guard."""

    def __init__(self, epoch_s: float = 0.0, limit: int = 50) -> None:
        super().__init__(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=epoch_s))
        self.epoch_s = epoch_s
        self.limit = limit
        self.per_instant: Counter[datetime] = Counter()

    def schedule_absolute(
        self, duetime: typing.AbsoluteTime, action: typing.ScheduledAction[Any], state: Any = None
    ) -> abc.DisposableBase:
        def guarded(scheduler: abc.SchedulerBase, st: Any = None) -> Any:
            self.per_instant[self.now] += 1
            if self.per_instant[self.now] > self.limit:
                raise StuckClock(f"{self.limit} actions at {self.now}: virtual time is stuck")
            return action(scheduler, st)

        return super().schedule_absolute(duetime, guarded, state)

    def at(self, seconds: float) -> datetime:
        """The clock's instant ``seconds`` after its start."""
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=self.epoch_s + seconds)


class SlowFrames:
    """A camera on a virtual clock: no picture before ``first_at``, none from ``gone_at``.

    ``latest(timeout)`` spends virtual time as a real camera spends wall time:
    it returns at once with a picture when there is one, else it waits (moves
    the clock on) until one comes or ``timeout`` runs out.
    """

    def __init__(
        self,
        scheduler: TestScheduler,
        first_at: float = 0.0,
        gone_at: float = float("inf"),
        name: str = "porch",
    ) -> None:
        self.s = scheduler
        self.first_at = first_at
        self.gone_at = gone_at
        self.name = name
        self.timeouts: list[float | None] = []
        self.served: list[tuple[float, float]] = []  # (asked at, picture at)

    def _has_picture(self, t: float) -> bool:
        return self.first_at <= t < self.gone_at

    def latest(self, timeout: float | None = None) -> Frame | None:
        self.timeouts.append(timeout)
        asked = self.s.clock
        if self._has_picture(asked):
            self.served.append((asked, asked))
            return rgb_frame(wall_time=asked)
        wait = timeout or 0.0
        if asked < self.first_at <= asked + wait:
            self.s.sleep(self.first_at - asked)
            self.served.append((asked, self.first_at))
            return rgb_frame(wall_time=self.first_at)
        self.s.sleep(wait)
        return None
