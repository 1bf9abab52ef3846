"""adaptive_sampler on virtual time: every timer moves the clock on; dropped wakes say why."""

from __future__ import annotations

import itertools
from typing import Any

from reactivex.subject import Subject
from reactivex.testing import ReactiveTest

from operators.sampler import adaptive_sampler
from tests.support.clocks import GuardedHistorical, GuardedScheduler

on_next = ReactiveTest.on_next


def test_a_next_delay_of_zero_still_moves_virtual_time_on() -> None:
    s = GuardedScheduler(limit=5)
    started: list[float] = []
    op = adaptive_sampler(lambda trigger, due: started.append(s.clock), lambda _: 0.0,
                          scheduler=s, look_scheduler=s)  # fmt: skip
    sub = s.create_hot_observable([]).pipe(op).subscribe(lambda _: None)
    s.advance_to(0.001)
    sub.dispose()
    assert len(started) > 100  # about one look per clock tick...
    assert all(b > a for a, b in itertools.pairwise(started))  # ...each at a later instant


class HairBudget:
    """A budget whose waits are a hair long (float error of epoch arithmetic): 1e-9 s."""

    def __init__(self, hairs: int) -> None:
        self.hairs = hairs
        self.looks: list[float] = []

    def wait(self, now: float) -> float:
        self.hairs -= 1
        return 1e-9 if self.hairs >= 0 else 0.0

    def defer(self, now: float) -> float:
        return self.wait(now)

    def record(self, now: float) -> None:
        self.looks.append(now)

    def used(self, now: float) -> int:
        return len(self.looks)


def test_a_budget_wait_of_a_hair_still_moves_virtual_time_on() -> None:
    """The sampler reschedules a look the budget defers; with a wait shorter than a
    clock tick it must not fire again at the same instant (the guard raises if so)."""
    s = GuardedHistorical(epoch_s=1_700_000_000.123457, limit=5)
    budget = HairBudget(hairs=30)
    op = adaptive_sampler(lambda trigger, due: due, lambda _: 1.0, budget=budget,  # type: ignore[arg-type]
                          scheduler=s, look_scheduler=s)  # fmt: skip
    sub = Subject[int]().pipe(op).subscribe(lambda _: None)
    s.advance_to(s.at(2.5))
    sub.dispose()
    # The first look, deferred 30 times by a hair (each a clock tick later), then the
    # timer's looks at 1 s intervals.
    assert len(budget.looks) == 3
    assert 30e-6 <= budget.looks[0] - s.epoch_s < 40e-6


def test_wakes_during_a_look_are_dropped_as_in_flight() -> None:
    s = GuardedScheduler()

    class SlowLooks:
        def schedule(self, action: Any, state: Any = None) -> Any:
            return s.schedule_relative(5.0, action, state)

    dropped: list[tuple[float, str]] = []
    op = adaptive_sampler(lambda trigger, due: (trigger, due), lambda _: 100.0, scheduler=s,
                          look_scheduler=SlowLooks(),
                          on_drop=lambda t, why: dropped.append((t, why)))  # fmt: skip
    got: list[tuple[float, Any]] = []
    ws = s.create_hot_observable([on_next(2.0, 1), on_next(50.0, 2), on_next(52.0, 3)])
    sub = ws.pipe(op).subscribe(lambda x: got.append((s.clock, x)))
    s.advance_to(60.0)
    sub.dispose()
    # Each look knows its trigger and when it was due (it ends 5 s later).
    assert got == [(5.0, ("start", 0.0)), (55.0, ("wake", 50.0))]
    assert dropped == [(2.0, "look in flight"), (52.0, "look in flight")]
