"""The wake stage on virtual time: a policy's decisions carried out, counted, and never stuck."""

from __future__ import annotations

from typing import Any

import pytest
from reactivex.testing import ReactiveTest, TestScheduler

from operators.cooldown import CooldownPolicy
from operators.wake_policy import (
    Answered,
    PictureWakePolicy,
    Wake,
    WakeContext,
    WakeDecision,
)
from operators.wakes import WakeLog, wake_signals, watch_wakes
from operators.zones import ZoneRule
from pipeline.core.detection import Box, Detection
from pipeline.core.frame import Frame
from tests.support.clocks import GuardedScheduler
from tests.support.fakes import rgb_frame

on_next, on_error, on_completed = (
    ReactiveTest.on_next,
    ReactiveTest.on_error,
    ReactiveTest.on_completed,
)


def _d(t: float, label: str = "person", box: Box | None = None) -> Detection:
    return Detection("porch", label, 0.9, box or Box(10, 60, 20, 90), time=t,
                     frame_size=(100, 100))  # fmt: skip


def _collect(s: TestScheduler, obs: Any, until: float) -> list[tuple[float, Any]]:
    out: list[tuple[float, Any]] = []
    sub = obs.subscribe(lambda x: out.append((s.clock, x)), lambda e: out.append((s.clock, e)))
    s.advance_to(until)
    sub.dispose()
    return out


class Scripted:
    """A policy that answers from a list and records what it saw."""

    def __init__(self, decisions: list[WakeDecision]) -> None:
        self.decisions = decisions
        self.seen: list[tuple[float, float, int, Frame | None, float | None]] = []

    def decide(self, detection: Detection, context: WakeContext) -> WakeDecision:
        self.seen.append((context.now, context.wait_start, len(context.matches),
                          context.last_judged, context.last_next_run_in))  # fmt: skip
        return self.decisions.pop(0)


def test_now_later_drop_and_what_the_policy_sees() -> None:
    s = TestScheduler()
    judged = rgb_frame(seq=9)
    policy = Scripted([
        WakeDecision.drop("no news"),
        WakeDecision.later(20.0, "soon"),
        WakeDecision.later(15.0, "sooner"),  # the earliest asked for wins
        WakeDecision.now("at once"),
    ])  # fmt: skip
    xs = s.create_hot_observable([on_next(t, _d(t)) for t in (1.0, 2.0, 3.0, 30.0)])
    waits = s.create_hot_observable([on_next(25.0, Answered(judged, 60.0))])
    log = WakeLog()
    got = _collect(s, xs.pipe(wake_signals(policy, waits=waits, scheduler=s, log=log)), 100.0)
    assert [(t, w.reason, w.detection.time) for t, w in got] == [
        (15.0, "sooner", 3.0),
        (30.0, "at once", 30.0),
    ]
    assert log.matches == 4 and log.wakes == 2 and log.dropped == {"no news": 1}
    # Matches since the wait began; the wait that began at 25 knows the judged frame.
    assert [(now, start, n) for now, start, n, _, _ in policy.seen] == [
        (1.0, 0.0, 1), (2.0, 0.0, 2), (3.0, 0.0, 3), (30.0, 25.0, 1)
    ]  # fmt: skip
    assert policy.seen[-1][3] is judged and policy.seen[-1][4] == 60.0


def test_a_new_wait_cancels_a_pending_wake() -> None:
    s = TestScheduler()
    xs = s.create_hot_observable([on_next(1.0, _d(1.0))])
    waits = s.create_hot_observable([on_next(5.0, "answer")])
    got = _collect(
        s,
        xs.pipe(wake_signals(CooldownPolicy(10.0), waits=waits, scheduler=s)),
        100.0,
    )
    assert got == []


def test_a_wake_a_hair_ahead_is_a_wake_now_and_time_moves_on() -> None:
    """A policy asking for a time less than a clock tick away: at once, never a timer
    that fires at the same instant again and again."""
    s = GuardedScheduler(limit=10)

    class Tiny:
        def decide(self, detection: Detection, context: WakeContext) -> WakeDecision:
            return WakeDecision.later(context.now + 1e-9, "a hair")

    xs = s.create_hot_observable([on_next(t / 10, _d(t / 10)) for t in range(1, 200)])
    got = _collect(s, xs.pipe(wake_signals(Tiny(), scheduler=s)), 30.0)
    assert [t for t, _ in got] == pytest.approx([t / 10 for t in range(1, 200)])
    assert max(s.per_instant.values()) <= 10


def test_policy_errors_end_the_stream_and_completion_emits_the_pending_wake() -> None:
    s = TestScheduler()

    class Broken:
        def decide(self, detection: Detection, context: WakeContext) -> WakeDecision:
            raise RuntimeError("policy failed")

    xs = s.create_hot_observable([on_next(1.0, _d(1.0)), on_next(2.0, _d(2.0))])
    got = _collect(s, xs.pipe(wake_signals(Broken(), scheduler=s)), 10.0)
    assert len(got) == 1 and isinstance(got[0][1], RuntimeError)
    s2 = TestScheduler()
    ys = s2.create_hot_observable([on_next(1.0, _d(1.0)), on_completed(3.0)])
    got2 = _collect(s2, ys.pipe(wake_signals(CooldownPolicy(10.0), scheduler=s2)), 20.0)
    assert [(t, w.detection.time) for t, w in got2] == [(3.0, 1.0)]
    with pytest.raises(ValueError, match="reason"):
        WakeDecision.drop(" ")


class Pictures:
    """A picture policy: wakes when a picture's seq is odd, drops the even ones."""

    def decide(self, detection: Detection, context: WakeContext) -> WakeDecision:
        return WakeDecision.drop("detections are evidence only")

    def see(self, frame: Frame, context: WakeContext) -> WakeDecision | None:
        if frame.seq == 0:
            return None
        if frame.seq % 2:
            return WakeDecision.now("news")
        return WakeDecision.drop("no news")


def test_pictures_reach_a_picture_policy() -> None:
    assert isinstance(Pictures(), PictureWakePolicy)
    assert not isinstance(CooldownPolicy(), PictureWakePolicy)
    s = TestScheduler()
    pics = s.create_hot_observable([on_next(t, rgb_frame(seq=t)) for t in (1, 2, 3, 4)] +
                                   [on_next(4.5, rgb_frame(seq=0)), on_completed(5.0)])  # fmt: skip
    log = WakeLog()
    wakes = watch_wakes(None, policy=Pictures(), pictures=pics, scheduler=s, log=log)
    got = _collect(s, wakes, 10.0)
    assert [(t, w.reason, w.frame.seq, w.detection) for t, w in got] == [
        (1.0, "news", 1, None), (3.0, "news", 3, None)
    ]  # fmt: skip
    assert log.dropped == {"no news": 2}


def test_watch_wakes_filters_labels_and_zones_and_remembers() -> None:
    s = TestScheduler()
    lower = {"lawn": ZoneRule(points=[(0, 0.5), (1, 0.5), (1, 1), (0, 1)], inertia=1)}
    dets = [_d(1.0), _d(2.0, "cat"), _d(3.0, box=Box(10, 5, 20, 30))]
    xs = s.create_hot_observable([on_next(d.time, d) for d in dets])
    remembered: list[float] = []
    wakes = watch_wakes(xs, policy=CooldownPolicy(0.0), labels=["person"], zones=lower,
                        zone_names=["lawn"], scheduler=s,
                        remember=lambda d: remembered.append(d.time))  # fmt: skip
    got = _collect(s, wakes, 10.0)
    assert [(t, w.detection.zones) for t, w in got] == [(1.0, ("lawn",))]
    assert remembered == [1.0]
    assert isinstance(got[0][1], Wake)
