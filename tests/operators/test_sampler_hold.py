"""adaptive_sampler's ``hold``: a look's result is kept back on the scheduler's clock."""

import itertools
from typing import Any

import pytest
from reactivex.testing import ReactiveTest, TestScheduler

from operators.sampler import adaptive_sampler

on_next = ReactiveTest.on_next


def _collect(s: TestScheduler, obs: Any, until: float) -> list[tuple[float, Any]]:
    out: list[tuple[float, Any]] = []
    errors: list[Exception] = []
    sub = obs.subscribe(lambda x: out.append((s.clock, x)), errors.append)
    s.advance_to(until)
    sub.dispose()
    if errors:
        out.append((s.clock, errors[0]))
    return out


def _sampler(s: TestScheduler, hold: Any) -> Any:
    looks = iter(range(100))
    return adaptive_sampler(
        lambda trig, _due: (next(looks), trig, s.clock),
        lambda _: 10.0,
        min_gap=1.0,
        scheduler=s,
        look_scheduler=s,
        hold=hold,
    )


def test_hold_shifts_the_next_look_and_drops_wakes_meanwhile() -> None:
    s = TestScheduler()
    # Wake at 2 comes while look 0 (started at 0) is held until 3: dropped. Wake at
    # 15 comes while look 1 (timer, 13) is held until 16: dropped. The timer look at 26
    # is out at 29, so the wake at 30 (1 s gap) starts a look.
    ws = s.create_hot_observable([on_next(2.0, "w"), on_next(15.0, "w"), on_next(30.0, "w")])
    got = _collect(s, ws.pipe(_sampler(s, lambda _: 3.0)), 50.0)
    # (emitted at, (look number, trigger, started at))
    assert got == [
        (3.0, (0, "start", 0.0)),
        (16.0, (1, "timer", 13.0)),
        (29.0, (2, "timer", 26.0)),
        (33.0, (3, "wake", 30.0)),
        (46.0, (4, "timer", 43.0)),
    ]


def test_no_hold_or_zero_hold_is_todays_behaviour() -> None:
    expected = [
        (0.0, (0, "start", 0.0)),
        (2.0, (1, "wake", 2.0)),
        (12.0, (2, "timer", 12.0)),
        (15.0, (3, "wake", 15.0)),
        (25.0, (4, "timer", 25.0)),
        (30.0, (5, "wake", 30.0)),
        (40.0, (6, "timer", 40.0)),
    ]
    for hold in (None, lambda _: 0.0):
        s = TestScheduler()
        ws = s.create_hot_observable([on_next(t, "w") for t in (2.0, 15.0, 30.0)])
        assert _collect(s, ws.pipe(_sampler(s, hold)), 49.0) == expected


def test_hold_per_result_and_its_errors() -> None:
    s = TestScheduler()
    ws = s.create_hot_observable([on_next(1.0, "w")])
    # The first result is held 0.5 s, so the wake at 1.0 waits for the 1 s gap after 0.5.
    holds = iter([0.5, 2.0])
    got = _collect(s, ws.pipe(_sampler(s, lambda _: next(holds))), 10.0)
    assert got == [(0.5, (0, "start", 0.0)), (3.5, (1, "wake", 1.5))]

    s = TestScheduler()

    def bad(_: Any) -> float:
        raise RuntimeError("no latency")

    got = _collect(s, s.create_hot_observable([]).pipe(_sampler(s, bad)), 20.0)
    assert len(got) == 1 and isinstance(got[0][1], RuntimeError)


def test_dispose_during_a_held_look_emits_nothing() -> None:
    s = TestScheduler()
    out: list[Any] = []
    sub = s.create_hot_observable([]).pipe(_sampler(s, lambda _: 3.0)).subscribe(out.append)
    s.advance_to(2.0)
    sub.dispose()
    s.advance_to(20.0)
    assert out == []


@pytest.mark.parametrize("hold", [None, 0.0, 1.0, 4.0])
def test_at_most_one_look_in_flight_with_any_hold(hold: float | None) -> None:
    s = TestScheduler()
    started: list[float] = []
    emitted: list[float] = []
    op = adaptive_sampler(
        lambda _t, _due: started.append(s.clock) or s.clock,
        lambda _: 2.0,
        min_gap=0.5,
        scheduler=s,
        look_scheduler=s,
        hold=None if hold is None else (lambda _: hold),
    )
    ws = s.create_hot_observable([on_next(0.25 * k, k) for k in range(1, 80)])
    sub = ws.pipe(op).subscribe(lambda _: emitted.append(s.clock))
    s.advance_to(30.0)
    sub.dispose()
    h = hold or 0.0
    assert emitted == [t + h for t in started[: len(emitted)]]
    # The next look never starts before the previous one's result came out.
    assert all(b >= a + h for a, b in itertools.pairwise(started))
