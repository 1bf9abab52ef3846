"""A repeat watch re-arms after its alert: fresh history, and the backend forgets its streak."""

from __future__ import annotations

from typing import Any

from reactivex.testing import ReactiveTest, TestScheduler

from operators.backends.detections import DetectionsBackend
from operators.watch import run_watch
from operators.watch_spec import WatchSpec
from pipeline.core.config import DetectionsBackendConfig
from pipeline.core.detection import Box, Detection
from pipeline.core.events import Alert, LookRecord
from tests.support.fakes import ScriptedBackend, StaticFrames, rgb_frame

YES = (
    '{"condition_met": true, "next_run_in": 5, "reasoning": "A box.",'
    ' "notification_message": "Package!"}'
)
NO = '{"condition_met": false, "next_run_in": 5, "reasoning": "Nothing."}'


def _cfg(**kw: Any) -> WatchSpec:
    return WatchSpec(
        name="pkg", camera="porch", condition="a person", mode="repeat", quiet_period_s=60, **kw
    )


def _run(cfg: WatchSpec, backend: Any, detections: list[float], until: float) -> list[Any]:
    s = TestScheduler()
    person = [
        ReactiveTest.on_next(t, Detection("porch", "person", 0.9, Box(0, 0, 5, 9), time=t))
        for t in detections
    ]
    dets = s.create_hot_observable(person)
    out: list[Any] = []
    events = run_watch(
        cfg,
        frames=StaticFrames(rgb_frame()),
        backend=backend,
        detections=dets,
        scheduler=s,
        look_scheduler=s,
        job_id="job1",
    )
    sub = events.subscribe(out.append)
    s.advance_to(until)
    sub.dispose()
    return out


def test_detections_streak_starts_again_after_the_quiet_period() -> None:
    backend = DetectionsBackend(
        "det", DetectionsBackendConfig(consecutive_looks=2, next_run_in_s=5, window_s=10)
    )
    # A person is seen all the time: looks at 0, 5 (alert), quiet until 65, then 65, 70...
    ev = _run(_cfg(), backend, [float(t) for t in range(0, 200)], until=130)
    looks = [e for e in ev if isinstance(e, LookRecord)]
    met = [e.time for e in looks if e.verdict.condition_met]
    alerts = [a.time for a in ev if isinstance(a, Alert)]
    # Without forgetting, the streak carried over and the first look after the
    # quiet period (65) would alert at once; re-armed, it needs two looks again.
    assert alerts == [5.0, 70.0], alerts
    assert met == [5.0, 70.0]


def test_history_is_cleared_when_a_repeat_watch_re_arms() -> None:
    backend = ScriptedBackend([NO, YES, NO, NO], default=NO)
    _run(_cfg(), backend, [], until=200)
    turns = [len(r.history) for r in backend.requests]
    # Looks at 0, 5 (alert), 65, 70: the look after the quiet period starts with no history.
    assert turns[:4] == [0, 1, 0, 1], turns
