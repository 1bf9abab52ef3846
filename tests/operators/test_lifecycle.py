"""The lifecycle of a watch run on virtual time: quiet period, retries, states that tell the truth."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex.observer import Observer
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, TestScheduler

from operators.lifecycle import QuietPeriod, WatchRun, retry_delay
from operators.look import Look
from operators.watch import run_watch
from operators.watch_spec import WatchSpec
from pipeline.core.detection import Box, Detection
from pipeline.core.events import LookRecord, WatchState, WatchStatus
from pipeline.core.verdict import AnswerKind, Verdict
from tests.support.clocks import GuardedHistorical, GuardedScheduler, SlowFrames
from tests.support.fakes import ScriptedBackend, StaticFrames, rgb_frame

YES = '{"condition_met": true, "next_run_in": 5, "reasoning": "Someone is there."}'
NO = '{"condition_met": false, "next_run_in": 60, "reasoning": "The path is empty."}'


def _person(t: float) -> Detection:
    return Detection("walkway", "person", 0.9, Box(0, 0, 5, 9), time=t)


def _repeat(quiet: float) -> WatchSpec:
    return WatchSpec(name="people", camera="walkway", condition="someone on the path",
                     mode="repeat", quiet_period_s=quiet, max_duration_minutes=0,
                     cooldown_s=0)  # fmt: skip


@pytest.mark.parametrize("epoch", [0.0, 1_700_000_000.0])
def test_quiet_period_end_is_one_look_not_a_livelock(epoch: float) -> None:
    """Issue 14: an alert at 1.733333 s (a frame time of a 30 fps clip) and a 20 s quiet period.

    On the old code the quiet period's end was a float a hair after the instant
    its timer fired: the watch looked again and again at 21.733333 s with
    virtual time stuck (51 looks there before this test stopped it).
    """
    s = GuardedHistorical(epoch)
    backend = ScriptedBackend([NO, YES], default=NO)
    dets: Subject[Detection] = Subject()
    looks: list[float] = []
    events = run_watch(_repeat(20.0), frames=StaticFrames(rgb_frame()), backend=backend,
                       detections=dets, scheduler=s, look_scheduler=s)  # fmt: skip

    def on(e: Any) -> None:
        if isinstance(e, LookRecord):
            looks.append(round(e.time - epoch, 6))

    events.subscribe(on)
    alert_at = 52 / 30  # 1.7333333...: not a whole number of microseconds
    s.schedule_absolute(s.at(alert_at), lambda *_: dets.on_next(_person(epoch + alert_at)))
    s.advance_to(s.at(120.0))
    # 0 (start), 1.733333 (woken: alert), 21.733333 (quiet over), then every 60 s.
    assert looks == [0.0, 1.733333, 21.733333, 81.733333]


@settings(max_examples=80, deadline=None)
@given(
    epoch=st.sampled_from([0.0, 1_234.5678, 1_700_000_000.0]),
    alert_at=st.floats(0.001, 50.0, allow_nan=False),
    quiet=st.floats(0.001, 400.0, allow_nan=False),
)
def test_the_look_after_any_quiet_period_comes_once(
    epoch: float, alert_at: float, quiet: float
) -> None:
    s = GuardedHistorical(epoch)
    dets: Subject[Detection] = Subject()
    times: list[float] = []
    run_watch(_repeat(quiet), frames=StaticFrames(rgb_frame()),
              backend=ScriptedBackend([NO, YES], default=NO), detections=dets, scheduler=s,
              look_scheduler=s).subscribe(
        lambda e: times.append(e.time - epoch) if isinstance(e, LookRecord) else None
    )  # fmt: skip
    s.schedule_absolute(s.at(alert_at), lambda *_: dets.on_next(_person(epoch + alert_at)))
    s.advance_to(s.at(alert_at + quiet + 1.0))
    assert len(times) == 3, times  # start, the alert, the one after the quiet period
    assert all(b > a for a, b in itertools.pairwise(times))  # virtual time moved on
    assert times[2] == pytest.approx(times[1] + quiet, abs=2e-6)


def test_quiet_period_is_exact_on_the_clock() -> None:
    s = TestScheduler()
    s.advance_to(1.7333333)
    q = QuietPeriod(s)
    assert not q.active() and q.remaining() == 0.0
    q.start(20.0)
    end = s.now + timedelta(seconds=q.remaining())
    s.advance_to(s.to_seconds(end))
    assert not q.active() and q.remaining() == 0.0


def _look(kind: AnswerKind, t: float = 100.0) -> Look:
    v = Verdict.failed(kind, "x") if kind not in (AnswerKind.MET, AnswerKind.NOT_MET) else (
        Verdict.answered(kind is AnswerKind.MET, 7))  # fmt: skip
    return Look("timer", t, v, None, None)


def test_retry_delay() -> None:
    assert retry_delay(_look(AnswerKind.NOT_MET), now=100.0) == 7.0
    assert retry_delay(_look(AnswerKind.EMPTY), now=102.0) == 30.0  # from the answer
    assert retry_delay(_look(AnswerKind.NO_FRAME), now=102.0) == 8.0  # from the look's start
    assert retry_delay(_look(AnswerKind.NO_FRAME), now=115.0) == 0.0


def test_a_look_without_a_frame_is_retried_10_s_after_the_look() -> None:
    """Issue 12, point 12. The camera gives pictures until 7 s; a look then waits 2 s in vain.

    On the old code the retry came 10 s after the look *ended*: 12 s after it began
    (looks at 5, 17, 29...).
    """
    s = TestScheduler()
    frames = SlowFrames(s, first_at=0.0, gone_at=4.0)
    backend = ScriptedBackend([], default='{"condition_met": false, "next_run_in": 5}')
    events: list[tuple[float, Any]] = []
    run_watch(WatchSpec(name="w", camera="porch", condition="a cat", max_duration_minutes=0),
              frames=frames, backend=backend, scheduler=s,
              look_scheduler=s).subscribe(lambda e: events.append((s.clock, e)))  # fmt: skip
    s.advance_to(40.0)
    looks = [(e.time, e.verdict.kind) for _, e in events if isinstance(e, LookRecord)]
    assert looks == [
        (0.0, AnswerKind.NOT_MET),
        (5.0, AnswerKind.NO_FRAME),
        (15.0, AnswerKind.NO_FRAME),
        (25.0, AnswerKind.NO_FRAME),
        (35.0, AnswerKind.NO_FRAME),
    ]
    assert frames.timeouts == [10.0, 2.0, 2.0, 2.0, 2.0]


def test_the_first_look_comes_as_soon_as_a_connecting_camera_has_a_picture() -> None:
    """Issue 12, point 12. The camera's first picture comes at 15 s.

    On the old code the first look gave up at 10 s and the next one came 10 s
    after that, plus its 2 s wait: the first picture was judged at 20 s.
    """
    s = TestScheduler()
    frames = SlowFrames(s, first_at=15.0)
    backend = ScriptedBackend([], default=NO)
    events: list[tuple[float, Any]] = []
    run_watch(WatchSpec(name="w", camera="porch", condition="a cat"), frames=frames,
              backend=backend, scheduler=s,
              look_scheduler=s).subscribe(lambda e: events.append((s.clock, e)))  # fmt: skip
    s.advance_to(30.0)
    looks = [(t, e.verdict.kind) for t, e in events if isinstance(e, LookRecord)]
    # A look that waits 10 s in vain, then at once (a clock tick later) another that
    # gets the picture at 15 s.
    assert looks[:2] == [(10.0, AnswerKind.NO_FRAME), (15.0, AnswerKind.NOT_MET)]
    assert frames.served[0] == (pytest.approx(10.0, abs=1e-6), 15.0)
    assert [r.frame.wall_time for r in backend.requests if r.frame] == [15.0]


def _states(answers: list[str], frames: Any = None, until: float = 200.0) -> list[WatchState]:
    s = TestScheduler()
    out: list[WatchState] = []
    run_watch(WatchSpec(name="w", camera="porch", condition="a cat", max_duration_minutes=0),
              frames=frames or StaticFrames(rgb_frame()), backend=ScriptedBackend(answers),
              scheduler=s, look_scheduler=s).subscribe(
        lambda e: out.append(e) if isinstance(e, WatchState) and e.iterations else None
    )  # fmt: skip
    s.advance_to(until)
    return out


def test_a_look_without_a_frame_says_camera_frame_unavailable() -> None:
    """Issue 12, point 10: the old code left ``last_reasoning`` empty."""
    states = _states([], frames=StaticFrames(None), until=5.0)
    assert states[-1].last_answer == "no_frame"
    assert states[-1].last_reasoning == "Camera frame unavailable"


@pytest.mark.parametrize(
    ("bad", "kind", "reasoning"),
    [
        ("", "empty", "The model gave an empty answer"),
        ("I am not sure.", "unparseable", "The model's answer could not be read"),
    ],
)
def test_after_a_bad_answer_the_state_does_not_keep_the_previous_reasoning(
    bad: str, kind: str, reasoning: str
) -> None:
    """Issue 12, point 10: the old code kept "The path is empty." after a bad answer."""
    states = _states([NO.replace("60", "5"), bad])
    assert [(st.last_answer, st.last_reasoning) for st in states[:2]] == [
        ("not_met", "The path is empty."),
        (kind, reasoning),
    ]
    assert not states[1].condition_met


def test_run_states_and_time_limit() -> None:
    s = TestScheduler()
    seen: list[WatchState] = []
    spec = WatchSpec(name="w", camera="c", condition="a cat", max_duration_minutes=0.5)
    run = WatchRun(spec, "job", s, Observer(seen.append))
    run.begin()
    sub = run.time_limit()
    s.advance_to(30.0)
    assert [x.status for x in seen] == [WatchStatus.QUEUED, WatchStatus.RUNNING,
                                        WatchStatus.FAILED]  # fmt: skip
    assert seen[-1].error_message == "timed out after 0.5 minutes" and seen[-1].ended_at == 30.0
    run.finish(WatchStatus.CANCELLED)  # already ended: nothing more
    assert len(seen) == 3
    sub.dispose()


def test_every_reschedule_moves_virtual_time_on() -> None:
    """A model that asks for the next look in 0 s, looks without frames, a tiny budget:
    every timer of the watch still moves virtual time on (the guard raises otherwise)."""
    s = GuardedScheduler(limit=20)
    dets = s.create_hot_observable(
        [ReactiveTest.on_next(t / 10, _person(t / 10)) for t in range(1, 3000)]
    )
    spec = WatchSpec(name="w", camera="porch", condition="a cat", max_duration_minutes=0,
                     max_looks_per_hour=50, mode="repeat", quiet_period_s=0.0000001,
                     cooldown_s=0.0000005)  # fmt: skip
    answers = ['{"condition_met": true, "next_run_in": 0}'] * 50
    errors: list[Exception] = []
    run_watch(spec, frames=SlowFrames(s, gone_at=100.0), backend=ScriptedBackend(answers),
              detections=dets, scheduler=s, look_scheduler=s).subscribe(
        lambda _: None, errors.append)  # fmt: skip
    s.advance_to(400.0)
    assert errors == []
    assert max(s.per_instant.values()) <= 20
