"""Timer looks that cost about a keyframe (KeyframeTimerLooks), and what a look record says of it."""

from __future__ import annotations

import doctest
from collections.abc import Callable
from typing import Any

import pytest
import reactivex
from reactivex.scheduler import HistoricalScheduler
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import operators.timer_keyframes
from operators.sampler import Trigger, adaptive_sampler
from operators.timer_keyframes import KeyframeTimerLooks
from operators.wake_policy import WakeContext, WakeDecision
from operators.watch import run_watch
from operators.watch_spec import WatchSpec
from pipeline.app.replay.clip_reader import ClipReader
from pipeline.core.detection import Box, Detection
from pipeline.core.events import LookRecord
from pipeline.core.frame import Frame
from tests.support.clips import Clip
from tests.support.fakes import ScriptedBackend, StaticFrames, rgb_frame


def _tenths(seconds: float | None) -> float | None:
    """A wait as asked for, to a tenth of a second (the calls of a look share one budget)."""
    return None if seconds is None else round(seconds, 1)


class Camera:
    """A camera offering freshest and keyframe pictures, recording what each look asked for."""

    name = "porch"

    def __init__(self, keyframes: list[Frame | None]) -> None:
        self.keyframes = keyframes
        self.calls: list[tuple[Any, ...]] = []

    def latest(self, timeout: float | None = None) -> Frame | None:
        self.calls.append(("latest", timeout))
        return rgb_frame(seq=99, wall_time=99.0)

    def freshest(self, timeout: float | None = None, *, due: float | None = None) -> Frame | None:
        self.calls.append(("freshest", _tenths(timeout), due))
        return rgb_frame(seq=50, wall_time=50.0)

    def keyframe(
        self, max_age_s: float, timeout: float | None = None, *, due: float | None = None
    ) -> Frame | None:
        self.calls.append(("keyframe", max_age_s, _tenths(timeout), due))
        return self.keyframes.pop(0) if self.keyframes else None


def test_timer_looks_take_the_keyframe_and_wakes_the_newest_frame() -> None:
    camera = Camera([rgb_frame(seq=10, wall_time=10.0)])
    looks = KeyframeTimerLooks(max_age_s=2.0)
    frame = looks.select(camera, "timer", due=11.0, wait_s=10.0)
    assert frame is not None and frame.seq == 10
    # The staleness bound is also the longest wait for the next keyframe.
    assert camera.calls == [("keyframe", 2.0, 2.0, 11.0)]
    for trigger in ("wake", "start"):
        frame = looks.select(camera, trigger, due=12.0, wait_s=2.0)
        assert frame is not None and frame.seq == 50
    assert camera.calls[1:] == [("freshest", 2.0, 12.0), ("freshest", 2.0, 12.0)]


def test_a_timer_look_never_judges_the_last_picture_again_and_falls_back_to_the_newest() -> None:
    seen = rgb_frame(seq=10, wall_time=10.0)
    camera = Camera([seen, seen, rgb_frame(seq=30, wall_time=30.0)])
    looks = KeyframeTimerLooks(max_age_s=2.0)
    assert looks.select(camera, "timer", 10.5, 2.0) is seen
    # Asked again within the same GOP: the newest keyframe is the picture judged
    # last, so it waits for the next one (max_age 0: only one from now on).
    frame = looks.select(camera, "timer", 11.5, 2.0)
    assert frame is not None and frame.seq == 30
    assert camera.calls[-2:] == [("keyframe", 2.0, 2.0, 11.5), ("keyframe", 0.0, 2.0, 11.5)]
    # No keyframe fresh enough in time (a long GOP, or offline): the newest frame.
    frame = looks.select(camera, "timer", 40.0, 2.0)
    assert frame is not None and frame.seq == 50 and camera.calls[-1] == ("freshest", 2.0, 40.0)


def test_a_zero_bound_or_a_plain_provider_takes_the_newest_frame() -> None:
    camera = Camera([rgb_frame(seq=10)])
    frame = KeyframeTimerLooks(max_age_s=0.0).select(camera, "timer", 1.0, 2.0)
    assert frame is not None and frame.seq == 50 and camera.calls == [("freshest", 2.0, 1.0)]
    plain = StaticFrames(rgb_frame(seq=7))
    frame = KeyframeTimerLooks(max_age_s=2.0).select(plain, "timer", 1.0, 2.0)
    assert frame is not None and frame.seq == 7
    with pytest.raises(ValueError, match="max_age_s"):
        KeyframeTimerLooks(max_age_s=-1.0)
    assert doctest.testmod(operators.timer_keyframes).failed == 0


class WakeNow:
    """Every matching detection wakes the watch at once."""

    def decide(self, detection: Detection, context: WakeContext) -> WakeDecision:
        return WakeDecision.now("news")


class KeptReader(ClipReader):
    """A clip that counts the keep_current calls of the watch path."""

    kept = 0

    def keep_current(self, seconds: float | None = None) -> float:
        self.kept += 1
        return super().keep_current(seconds)


def test_a_watch_on_a_clip_judges_keyframes_on_its_timer_and_the_newest_frame_when_woken(
    clip_factory: Callable[..., Clip],
) -> None:
    clip = clip_factory(seconds=30.0, fps=10, gop=20)  # a 2 s GOP
    sched = HistoricalScheduler()
    looks: list[LookRecord] = []
    detections: Subject[Detection] = Subject()
    spec = WatchSpec(name="yard", camera="replay", condition="a box", max_duration_minutes=0)
    backend = ScriptedBackend([], default='{"condition_met": false, "next_run_in": 3}')
    with KeptReader(clip.path, scheduler=sched) as reader:
        events = run_watch(spec, frames=reader, backend=backend, detections=detections,
                           wake_policy=WakeNow(), frame_selector=KeyframeTimerLooks(2.0),
                           scheduler=sched, look_scheduler=sched)  # fmt: skip

        def record(event: Any) -> None:
            if isinstance(event, LookRecord):
                looks.append(event)

        subs: list[Any] = []
        reader.when_ready(lambda: subs.append(events.subscribe(record)))
        person = Detection(
            "replay", "person", 0.9, Box(0, 0, 5, 5), time=reader.at(10.55).timestamp()
        )
        sched.schedule_absolute(reader.at(10.55), lambda *_: detections.on_next(person))
        reader.start()
        sched.advance_to(reader.at(24.0))
        decoded = reader.decoded
    timers = [lk for lk in looks if lk.trigger == "timer"]
    wakes = [lk for lk in looks if lk.trigger == "wake"]
    assert len(timers) >= 5 and len(wakes) == 1 and reader.kept == 1
    for look in timers:  # each timer look: a keyframe at most 2 s old, taken when due
        assert look.frame_kind == "keyframe" and look.lateness_s == 0.0
        assert look.frame_age_s is not None and 0.0 <= look.frame_age_s <= 2.0
        assert look.frame is not None and round(look.frame["stream_time"] * 10) % 20 == 0
    wake = wakes[0]
    assert wake.frame_kind == "inter" and wake.frame_age_s == pytest.approx(0.05, abs=0.051)
    assert wake.frame is not None and wake.frame["stream_time"] == pytest.approx(10.5)
    # Decoded: a keyframe per timer look, the wake's GOP so far (10.0..10.5), the first picture.
    assert decoded <= len(timers) + 6 + 2
    assert wake.to_dict()["frame_kind"] == "inter" and "lateness_s" in wake.to_dict()


class LateTimers(TestScheduler):
    """Virtual time whose relative timers all fire 0.3 s late (a busy machine)."""

    def schedule_relative(self, duetime: Any, action: Any, state: Any = None) -> Any:
        return super().schedule_relative(self.to_seconds(duetime) + 0.3, action, state)


def test_a_look_is_due_when_its_timer_was_set_for_not_when_it_fired() -> None:
    s = LateTimers()
    seen: list[tuple[str, float, float]] = []

    def look(trigger: Trigger, due: float) -> float:
        seen.append((trigger, due, s.clock))
        return 5.0

    reactivex.never().pipe(
        adaptive_sampler(look, lambda delay: delay, scheduler=s, look_scheduler=s)
    ).subscribe(lambda _: None)
    s.advance_to(11.0)
    # The timer fires 0.3 s late each time: the look is due 5 s after the last one
    # ended, so 0.3 s of lateness counts against it.
    assert seen == [("start", 0.0, 0.0), ("timer", 5.0, 5.3), ("timer", 10.3, 10.6)]
