"""run_watch with its wake seam: a custom policy, pictures, the wake log's reasons."""

from __future__ import annotations

from typing import Any

from reactivex.testing import ReactiveTest, TestScheduler

from operators.wake_policy import WakeContext, WakeDecision
from operators.wakes import WakeLog
from operators.watch import run_watch
from operators.watch_spec import WatchSpec
from pipeline.core.detection import Box, Detection
from pipeline.core.events import Alert, LookRecord
from pipeline.core.frame import Frame
from tests.support.fakes import ScriptedBackend, StaticFrames, rgb_frame

on_next = ReactiveTest.on_next
NO = '{"condition_met": false, "next_run_in": 60, "reasoning": "Nothing."}'
YES = '{"condition_met": true, "next_run_in": 5, "reasoning": "A box."}'


class Changes:
    """Wakes on a picture whose seq differs from the frame the model judged last."""

    def __init__(self) -> None:
        self.contexts: list[tuple[float, int | None, float | None]] = []

    def decide(self, detection: Detection, context: WakeContext) -> WakeDecision:
        return WakeDecision.drop("pictures decide")

    def see(self, frame: Frame, context: WakeContext) -> WakeDecision | None:
        judged = context.last_judged
        self.contexts.append((context.wait_start, judged.seq if judged else None,
                              context.last_next_run_in))  # fmt: skip
        if judged is not None and frame.seq != judged.seq:
            return WakeDecision.now("new picture")
        return None


def test_a_picture_policy_wakes_the_watch_and_sees_the_judged_frame() -> None:
    s = TestScheduler()
    camera = StaticFrames(rgb_frame(seq=1))
    pictures = s.create_hot_observable([on_next(t, rgb_frame(seq=1 if t < 20 else 2))
                                        for t in (5.0, 10.0, 25.0, 30.0)])  # fmt: skip
    policy = Changes()
    looks: list[tuple[float, str]] = []

    def on(e: Any) -> None:
        if isinstance(e, LookRecord):
            looks.append((e.time, e.trigger))

    s.schedule_absolute(20.0, lambda *_: setattr(camera, "frame", rgb_frame(seq=2)))

    run_watch(WatchSpec(name="w", camera="porch", condition="a box", max_duration_minutes=0),
              frames=camera, backend=ScriptedBackend([], default=NO), scheduler=s,
              look_scheduler=s, wake_policy=policy, pictures=pictures).subscribe(on)  # fmt: skip
    s.advance_to(50.0)
    assert looks == [(0.0, "start"), (25.0, "wake")]
    # Each picture was compared with the frame the model judged last; the wait's
    # timer look was 60 s away.
    assert policy.contexts[:3] == [(0.0, 1, 60.0), (0.0, 1, 60.0), (0.0, 1, 60.0)]
    assert policy.contexts[3] == (25.0, 2, 60.0)


def test_the_wake_log_says_why_wakes_were_dropped() -> None:
    s = TestScheduler()
    person = [on_next(t, Detection("porch", "person", 0.9, Box(0, 0, 5, 9), time=t))
              for t in (2.0, 2.5, 20.0, 40.0)]  # fmt: skip
    log = WakeLog()
    events: list[Any] = []
    spec = WatchSpec(name="w", camera="porch", condition="a box", mode="repeat",
                     quiet_period_s=30, max_duration_minutes=0, cooldown_s=0)  # fmt: skip
    run_watch(spec, frames=StaticFrames(rgb_frame()),
              backend=ScriptedBackend([NO, YES], default=NO),
              detections=s.create_hot_observable(person), scheduler=s, look_scheduler=s,
              wake_log=log).subscribe(events.append)  # fmt: skip
    s.advance_to(45.0)
    # 0: start; 2: woken, alert, quiet until 32 (the timer looks then); the wakes at
    # 2.5 and 20 come in the quiet period and are dropped; 40 wakes a look.
    looks = [(e.time, e.trigger) for e in events if isinstance(e, LookRecord)]
    assert looks == [(0.0, "start"), (2.0, "wake"), (32.0, "timer"), (40.0, "wake")]
    assert [a.time for a in events if isinstance(a, Alert)] == [2.0]
    assert log.matches == 4 and log.wakes == 4
    assert log.dropped == {"quiet period": 2}
