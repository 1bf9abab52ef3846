"""The news wake policy inside a watch, on virtual time: pictures and detections in, looks out."""

from __future__ import annotations

from typing import Any

import numpy as np
from reactivex import Observable
from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler

from operators.news import NewsSettings
from operators.news_wakes import NewsPolicy
from operators.scene import SceneSettings
from operators.wakes import WakeLog
from operators.watch import run_watch
from operators.watch_spec import WatchSpec
from operators.zone_geometry import ZoneRule
from pipeline.core.detection import Box, Detection
from pipeline.core.events import LookRecord
from pipeline.core.frame import Frame
from tests.support.fakes import ScriptedBackend

on_next = ReactiveTest.on_next
LOWER = ZoneRule(points=[(0, 0.5), (1, 0.5), (1, 1), (0, 1)], inertia=1)
EMPTY = '{"condition_met": false, "next_run_in": 60, "reasoning": "Nothing relevant."}'
RELEVANT = '{"condition_met": false, "next_run_in": 5, "reasoning": "A box, no parcel."}'


WALKER = np.random.default_rng(3).integers(150, 250, (12, 6)).astype(np.uint8)


def _picture(t: float, box: bool, walker: bool = False) -> Frame:
    rng = np.random.default_rng(0)  # the same grass in every picture
    grass = np.kron(rng.integers(60, 140, (12, 16)), np.ones((4, 4))).astype(np.uint8)
    if box:
        grass[30:40, 20:30] = 240  # in the lower half
    if walker:  # someone walking to and fro along the lower half, 2 pixels a picture
        step = round(t * 10) % 112
        x = min(step, 112 - step)
        grass[26:38, x : x + 6] = WALKER
    rgb = np.repeat(grass[:, :, None], 3, axis=2)
    return Frame(camera="yard", seq=round(t * 5), wall_time=t, stream_time=t,
                 width=64, height=48, rgb=rgb)  # fmt: skip


class LatestPicture:
    """The camera as the watch sees it: the newest picture emitted so far."""

    name = "yard"

    def __init__(self) -> None:
        self.frame: Frame | None = None

    def latest(self, timeout: float | None = None) -> Frame | None:
        return self.frame


def _watch(
    box_between: tuple[float, float],
    answers: list[str],
    *,
    until: float = 30.0,
    detections: list[tuple[float, Detection]] | None = None,
    pictures: bool = True,
    walker: bool = False,
) -> tuple[list[tuple[float, str]], list[tuple[float, str]], WakeLog]:
    s = TestScheduler()
    camera = LatestPicture()
    n = round(until * 5)
    shots = [_picture(i / 5, box_between[0] <= i / 5 < box_between[1], walker) for i in range(n)]

    camera.frame = shots[0]
    pics: Observable[Frame] = s.create_hot_observable(
        [on_next(f.wall_time, f) for f in shots]
    ).pipe(ops.do_action(lambda f: setattr(camera, "frame", f)))
    dets = None
    if detections is not None:
        dets = s.create_hot_observable([on_next(t, d) for t, d in detections])
    woken: list[tuple[float, str]] = []
    log = WakeLog(on_wake=lambda t, w: woken.append((t, w.reason)))
    policy = NewsPolicy(
        [("lower", LOWER)],
        NewsSettings(min_area=0.01, persist_s=0.4, evidence_s=None),
        SceneSettings(width=64, cell=4),
        pictures_fps=5.0 if pictures else None,
    )
    spec = WatchSpec(name="parcel", camera="yard", condition="a parcel in the lower half",
                     zones=("lower",), mode="repeat", quiet_period_s=0,
                     max_duration_minutes=0)  # fmt: skip
    backend = ScriptedBackend(answers, default=EMPTY)
    events: list[Any] = []
    sub = run_watch(spec, frames=camera, backend=backend, detections=dets,
                    zones={"lower": LOWER}, scheduler=s, look_scheduler=s, job_id="j",
                    wake_policy=policy, pictures=pics if pictures else None,
                    wake_log=log).subscribe(lambda e: events.append((s.clock, e)))  # fmt: skip
    s.advance_to(until)
    sub.dispose()
    looks = [(t, e.trigger) for t, e in events if isinstance(e, LookRecord)]
    return looks, woken, log


def test_a_parcel_wakes_the_watch_once_and_its_leaving_once_more() -> None:
    # Start look at 0 s: nothing (next in 60 s). A box lies in the zone from 10 s to
    # 20 s: news after 0.4 s (three pictures). The model calls it relevant (next in
    # 5 s): the timer looks at 15.4 s; the box goes at 20 s: news again after 0.4 s.
    looks, woken, log = _watch((10.0, 20.0), [EMPTY, RELEVANT, RELEVANT, EMPTY])
    assert looks == [(0.0, "start"), (10.4, "wake"), (15.4, "timer"), (20.4, "wake")]
    assert woken == [(10.4, "entered"), (20.4, "left")]
    assert log.dropped == {}


def test_what_leaves_a_scene_the_model_found_empty_wakes_nothing() -> None:
    # The model calls the box nothing relevant (next in 60 s): its leaving is no news.
    looks, woken, log = _watch((10.0, 20.0), [EMPTY, EMPTY])
    assert looks == [(0.0, "start"), (10.4, "wake")]
    assert woken == [(10.4, "entered")]
    assert log.dropped == {"nothing watched left": 1}


def test_without_pictures_objects_that_come_stop_and_go_are_the_news() -> None:
    def car(t: float, *, stationary: bool = False, event: str | None = None) -> Detection:
        return Detection(camera="yard", label="car", score=0.9, box=Box(10, 30, 30, 45),
                         time=t, frame_size=(64, 48), object_id="7", stationary=stationary,
                         event=event)  # fmt: skip

    dets = [(t, car(t)) for t in (5.0, 5.5, 6.0)] + [(9.0, car(9.0, stationary=True))]
    dets += [(12.0, car(12.0, stationary=True)), (14.0, car(14.0, event="end"))]
    looks, woken, log = _watch((99.0, 99.0), [EMPTY, RELEVANT, RELEVANT, EMPTY],
                               detections=dets, pictures=False)  # fmt: skip
    assert woken == [(5.0, "entered"), (9.0, "stationary"), (14.0, "left")]
    assert looks == [(0.0, "start"), (5.0, "wake"), (9.0, "wake"), (14.0, "wake")]
    assert log.dropped == {"no news": 3}  # 5.5, 6.0 (seen by the 5.0 look) and 12.0


def test_in_a_zone_someone_walks_in_all_the_time_only_the_parcel_wakes_the_watch() -> None:
    # Someone walks to and fro in the zone from the start (the first look sees them); a
    # parcel lies there from 40 s to 50 s. By 40 s the zone is busy: the walker's comings
    # and goings are no news, the parcel is, once it has kept its look for still_s (0.6 s).
    looks, woken, _ = _watch((40.0, 50.0), [EMPTY, RELEVANT, RELEVANT, EMPTY], until=56.0,
                               walker=True)  # fmt: skip
    assert looks[0] == (0.0, "start")
    assert [t for t, trigger in looks if trigger == "wake"] == [40.6]
    assert woken[0] == (40.6, "still")
    assert looks[2:] == [(45.6, "timer"), (50.6, "timer")]  # the model asked for 5 s, twice
