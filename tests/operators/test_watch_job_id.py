"""Each look of a watch carries its run's job id, so backends can tell runs apart."""

from __future__ import annotations

from typing import Any

from reactivex.testing import ReactiveTest, TestScheduler

from operators.backends.detections import DetectionsBackend
from operators.watch import run_watch
from operators.watch_spec import WatchSpec
from pipeline.core.config import DetectionsBackendConfig
from pipeline.core.detection import Box, Detection
from pipeline.core.events import Alert
from tests.support.fakes import ScriptedBackend, StaticFrames, rgb_frame

NO = '{"condition_met": false, "next_run_in": 5, "reasoning": "Nothing."}'


def _cfg() -> WatchSpec:
    return WatchSpec(
        name="pkg", camera="porch", condition="a person", mode="repeat", quiet_period_s=60
    )


def _run(
    backend: Any, job_id: str | None, until: float, detections: tuple[float, ...] = ()
) -> list[Any]:
    s = TestScheduler()
    person = [
        ReactiveTest.on_next(t, Detection("porch", "person", 0.9, Box(0, 0, 5, 9), time=t))
        for t in detections
    ]
    out: list[Any] = []
    events = run_watch(
        _cfg(),
        frames=StaticFrames(rgb_frame()),
        backend=backend,
        detections=s.create_hot_observable(person),
        scheduler=s,
        look_scheduler=s,
        job_id=job_id,
    )
    sub = events.subscribe(out.append)
    s.advance_to(until)
    sub.dispose()
    return out


def test_every_look_carries_the_runs_job_id() -> None:
    backend = ScriptedBackend([], default=NO)
    _run(backend, "job7", until=20)
    assert len(backend.requests) >= 2
    assert {r.job_id for r in backend.requests} == {"job7"}


def test_a_run_without_a_job_id_gets_one_id_for_all_its_looks() -> None:
    first, second = ScriptedBackend([], default=NO), ScriptedBackend([], default=NO)
    _run(first, None, until=20)
    _run(second, None, until=20)
    ids = {r.job_id for r in first.requests}
    assert len(ids) == 1 and "" not in ids
    assert ids.isdisjoint({r.job_id for r in second.requests})


def test_a_restarted_watch_does_not_inherit_the_old_runs_streak() -> None:
    backend = DetectionsBackend(
        "det", DetectionsBackendConfig(consecutive_looks=2, next_run_in_s=5, window_s=10)
    )
    seen = tuple(float(t) for t in range(0, 30))
    # The old run saw one matching look at 0, then ended; the runner forgets the
    # watch, yet a late look of the old run lands afterwards.
    _run(backend, "old", until=1, detections=seen)
    backend.forget("pkg")
    _run(backend, "old", until=1, detections=seen)
    # The new run needs two looks of its own (0 and 5) before its first alert.
    ev = _run(backend, "new", until=20, detections=seen)
    alerts = [a.time for a in ev if isinstance(a, Alert)]
    assert alerts == [5.0], alerts
