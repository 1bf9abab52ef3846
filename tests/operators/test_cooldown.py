"""The baseline's cooldown (DESIGN.md, behaviour A) on virtual time.

A wait starts when the last look's answer came; the first match of a wait
wakes at ``max(first match, wait start + cooldown)``; later matches of the
same wait wake at once; a new wait cancels a pending wake.
"""

import itertools
import math
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from reactivex.testing import ReactiveTest, TestScheduler

from operators.cooldown import CooldownPolicy, baseline_policy, cooldown, cooldown_wake_time

on_next, on_completed = ReactiveTest.on_next, ReactiveTest.on_completed


def _collect(s: TestScheduler, obs: Any, until: float) -> list[tuple[float, Any]]:
    out: list[tuple[float, Any]] = []
    sub = obs.subscribe(lambda x: out.append((s.clock, x)))
    s.advance_to(until)
    sub.dispose()
    return out


def test_cooldown_exact_ticks() -> None:
    # Without ``waits`` each wake starts the next wait (a look answered at once); the
    # first wait starts at subscription (0). 1, 2, 5 -> the 10 s mark; 11.5 -> 20; 30 is
    # at the mark of the wait from 20: at once; 31 -> 40. (Before behaviour A was exact,
    # the window opened at the first match: 11, 21.5, 40.)
    s = TestScheduler()
    xs = s.create_hot_observable([on_next(t, t) for t in (1.0, 2.0, 5.0, 11.5, 30.0, 31.0)])
    assert _collect(s, xs.pipe(cooldown(10.0, scheduler=s)), 100.0) == [
        (10.0, 5.0), (20.0, 11.5), (30.0, 30.0), (40.0, 31.0)
    ]  # fmt: skip


def test_a_new_wait_cancels_the_pending_wake_and_sets_a_new_mark() -> None:
    s = TestScheduler()
    xs = s.create_hot_observable([on_next(t, t) for t in (3.0, 9.0, 12.0, 30.0)])
    waits = s.create_hot_observable([on_next(8.0, "answer")])
    # 3 -> pending at 10; the answer at 8 cancels it (mark 18); 9 and 12 -> 18; 30 at once.
    got = _collect(s, xs.pipe(cooldown(10.0, waits=waits, scheduler=s)), 100.0)
    assert got == [(18.0, 12.0), (30.0, 30.0)]


def test_cooldown_zero_passes_every_match_at_once_and_completion() -> None:
    s = TestScheduler()
    xs = s.create_hot_observable([on_next(1.0, "a"), on_next(2.0, "b")])
    assert _collect(s, xs.pipe(cooldown(0.0, scheduler=s)), 5.0) == [(1.0, "a"), (2.0, "b")]
    s2 = TestScheduler()
    ys = s2.create_hot_observable([on_next(1.0, "a"), on_completed(3.0)])
    assert _collect(s2, ys.pipe(cooldown(10.0, scheduler=s2)), 20.0) == [(3.0, "a")]
    for bad in (-1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="cooldown"):
            cooldown(bad)


def test_baseline_policy_is_at_once_with_zones() -> None:
    assert baseline_policy(10.0, zones=True) == CooldownPolicy(0.0)
    assert baseline_policy(10.0, zones=False) == CooldownPolicy(10.0)
    assert cooldown_wake_time(3.0, 0.0, 10.0) == 10.0
    assert cooldown_wake_time(14.0, 0.0, 10.0) == 14.0


times = st.floats(0.0, 500.0, allow_nan=False).map(lambda t: round(t, 3))


@settings(max_examples=150, deadline=None)
@given(
    wait_start=st.floats(0.0, 100.0).map(lambda t: round(t, 3)),
    cool=st.floats(0.5, 60.0).map(lambda t: round(t, 3)),
    offsets=st.lists(st.floats(0.001, 200.0).map(lambda t: round(t, 3)), min_size=1,
                     max_size=30, unique=True),
)  # fmt: skip
def test_wake_time_is_max_of_first_match_and_wait_start_plus_cooldown(
    wait_start: float, cool: float, offsets: list[float]
) -> None:
    """Behaviour A: one wake at max(first match, wait start + cooldown), then each match at once."""
    matches = sorted(round(wait_start + o, 3) for o in offsets)
    mark = wait_start + cool
    assume(all(abs(m - mark) > 1e-3 for m in matches))
    s = TestScheduler()
    waits = s.create_hot_observable([on_next(wait_start, "answer")] if wait_start else [])
    xs = s.create_hot_observable([on_next(m, m) for m in matches])
    got = _collect(s, xs.pipe(cooldown(cool, waits=waits, scheduler=s)), 1000.0)
    first = cooldown_wake_time(matches[0], wait_start, cool)
    expected = ([first] if matches[0] < mark else []) + [m for m in matches if m > mark]
    assert [t for t, _ in got] == pytest.approx(expected, abs=1e-6)
    # Each wake carries the latest match by its time.
    assert all(item == max(m for m in matches if m <= t + 1e-9) for t, item in got)


def _reference(waits: list[float], matches: list[float], cool: float) -> list[float]:
    """Behaviour A, spelled out: the wake times for these waits and matches (no ties)."""
    events = sorted([(t, "wait") for t in waits] + [(t, "match") for t in matches])
    wait_start, pending, out = 0.0, None, []
    for t, kind in events:
        if pending is not None and pending < t:
            out.append(pending)
            pending = None
        if kind == "wait":
            wait_start, pending = t, None
        elif t >= wait_start + cool:
            out.append(t)
            pending = None
        elif pending is None:
            pending = wait_start + cool
    return out + ([pending] if pending is not None else [])


@settings(max_examples=150, deadline=None)
@given(
    waits=st.lists(times, max_size=8, unique=True),
    matches=st.lists(times, min_size=1, max_size=30, unique=True),
    cool=st.sampled_from([0.0, 2.5, 10.0, 30.0]),
)
def test_cooldown_follows_behaviour_a_over_many_waits(
    waits: list[float], matches: list[float], cool: float
) -> None:
    waits, matches = sorted(w for w in waits if w > 0), sorted(matches)
    marks = [w + cool for w in [0.0, *waits]]
    instants = [*waits, *matches, *marks]
    assume(all(abs(a - b) > 1e-3 for a, b in itertools.combinations(instants, 2) if a != b))
    assume(not set(waits) & set(matches))
    assume(cool > 0 or not set(marks) & set(matches))
    s = TestScheduler()
    ws = s.create_hot_observable([on_next(w, "answer") for w in waits])
    xs = s.create_hot_observable([on_next(m, m) for m in matches])
    got = [t for t, _ in _collect(s, xs.pipe(cooldown(cool, waits=ws, scheduler=s)), 1000.0)]
    assert got == pytest.approx(_reference(waits, matches, cool), abs=1e-6)
    # Never a wake before the cooldown mark of its wait.
    for t in got:
        start = max([0.0, *[w for w in waits if w <= t]])
        assert t >= start + cool - 1e-6


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0, 500, allow_nan=False), max_size=40),
    st.floats(0.5, 60, allow_nan=False),
)
def test_cooldown_never_lets_two_wakes_through_in_a_window(
    times: list[float], window: float
) -> None:
    s = TestScheduler()
    xs = s.create_hot_observable([on_next(t, t) for t in sorted(times)])
    wakes = [t for t, _ in _collect(s, xs.pipe(cooldown(window, scheduler=s)), 1000.0)]
    # To the clock's resolution: a virtual scheduler counts whole microseconds.
    assert all(b - a >= window - 1e-6 for a, b in itertools.pairwise(wakes))
    assert bool(wakes) == bool(times)  # every burst ends in a wake
