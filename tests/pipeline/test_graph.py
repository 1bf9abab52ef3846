"""The shared graph and the watches' lifetime: detector errors, auto per camera, ended watches."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import reactivex
from reactivex import Observable, abc
from reactivex.testing import ReactiveTest, TestScheduler

from operators.watch import run_watch
from pipeline.app.graph import Graph, LookPools, resubscribe_on_error
from pipeline.app.runner import Pipeline
from pipeline.app.watch_setup import watch_spec
from pipeline.core.config import WatchConfig
from pipeline.core.config_loader import load_config_text
from pipeline.core.detection import Box, Detection
from pipeline.core.events import LookRecord, WatchState, WatchStatus
from tests.support.clips import Clip
from tests.support.fakes import ScriptedBackend, StaticFrames, rgb_frame
from tests.support.model_server import Reply
from tests.support.waiting import wait_until

on_next, on_error = ReactiveTest.on_next, ReactiveTest.on_error


def _det(t: float) -> Detection:
    return Detection("porch", "person", 0.9, Box(0, 0, 5, 9), time=t)


def _errors_once(s: TestScheduler) -> tuple[Observable[Detection], list[float]]:
    """A cold detection source: the first subscription fails at 5 s, later ones emit at +1 s."""
    subscribed: list[float] = []

    def subscribe(
        observer: abc.ObserverBase[Detection], _sched: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        subscribed.append(s.clock)
        if len(subscribed) == 1:
            return s.schedule_relative(5.0, lambda *_: observer.on_error(RuntimeError("onnx boom")))
        return s.schedule_relative(1.0, lambda *_: observer.on_next(_det(s.clock)))

    return reactivex.create(subscribe), subscribed


def test_a_failing_detector_is_resubscribed_after_a_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    s = TestScheduler()
    source, subscribed = _errors_once(s)
    out: list[tuple[float, Any]] = []
    errors: list[Exception] = []
    source.pipe(resubscribe_on_error("detector 'onnx'", "porch", initial_s=2, max_s=2)).subscribe(
        lambda d: out.append((s.clock, d)), errors.append, scheduler=s
    )
    with caplog.at_level(logging.ERROR, "lookout"):
        s.advance_to(60)
    assert errors == []
    # Failed at 5, waited 1..2 s (jittered), subscribed again, got a detection 1 s later.
    assert len(subscribed) == 2 and 6.0 <= subscribed[1] <= 7.0, subscribed
    assert [t for t, _ in out] == [subscribed[1] + 1.0]
    assert "camera porch: detector 'onnx' failed (RuntimeError: onnx boom)" in caplog.text


def test_a_watch_keeps_running_and_looking_when_its_detector_fails_once() -> None:
    s = TestScheduler()
    source, subscribed = _errors_once(s)
    dets = source.pipe(resubscribe_on_error("detector 'onnx'", "porch", scheduler=s))
    backend = ScriptedBackend([], default='{"condition_met": false, "next_run_in": 10}')
    cfg = WatchConfig(name="w", camera="porch", condition="a person", zones=[], cooldown_s=0)
    out: list[Any] = []
    errors: list[Exception] = []
    run_watch(
        watch_spec(cfg),
        frames=StaticFrames(rgb_frame()),
        backend=backend,
        detections=dets,
        scheduler=s,
        look_scheduler=s,
    ).subscribe(out.append, errors.append)
    s.advance_to(35)
    states = [e for e in out if isinstance(e, WatchState)]
    looks = [e for e in out if isinstance(e, LookRecord)]
    assert errors == [] and states[-1].status is WatchStatus.RUNNING
    assert len(subscribed) == 2
    # Timer looks go on (0, 10, 20, 30) and the detection after the retry woke one.
    assert {lk.trigger for lk in looks} == {"start", "timer", "wake"}, looks


def test_auto_is_resolved_per_kind_of_camera(h264_clip: Clip) -> None:
    cfg = load_config_text(
        f"""
[cameras.moving]
url = "{h264_clip.path}"
[cameras.moving.detect]
type = "motion"
[cameras.still]
url = "{h264_clip.path}"
"""
    )
    graph = Graph(cfg)
    try:
        assert graph.has_detector("moving") and not graph.has_detector("still")
        with_dets = graph.backend("auto", has_detections=True)
        without = graph.backend("auto", has_detections=False)
        assert with_dets.type == "detections" and without.type == "none"
        assert graph.backend("auto", has_detections=True) is with_dets  # cached
        graph.reset_auto()
        assert graph.backend("auto", has_detections=True) is not with_dets
    finally:
        graph.close()


def test_the_runner_gives_auto_watches_the_backend_of_their_camera(h264_clip: Clip) -> None:
    cfg = load_config_text(
        f"""
[cameras.moving]
url = "{h264_clip.path}"
loop = true
[cameras.moving.detect]
type = "motion"
[cameras.still]
url = "{h264_clip.path}"
loop = true
[[watches]]
name = "a"
camera = "moving"
condition = "someone walks"
[[watches]]
name = "b"
camera = "still"
condition = "someone walks"
"""
    )
    p = Pipeline(cfg)
    p.start()
    try:
        watches = p.watches
        assert watches["a"].backend is not None and watches["a"].backend.type == "detections"
        assert watches["b"].backend is not None and watches["b"].backend.type == "none"
    finally:
        p.stop(grace_s=1)


def test_look_pools_grow_with_the_watches_that_use_them() -> None:
    pools = LookPools()
    try:
        first = pools.reserve("vlm")
        assert pools.reserve("vlm") is first and pools.size("vlm") == 2
        pools.reserve("other")
        pools.release("vlm")
        assert pools.size("vlm") == 2 and pools.size("other") == 1
    finally:
        pools.close()


@pytest.fixture
def slow_model(model_server_factory: Any) -> Iterator[Any]:
    yield model_server_factory(
        responder=lambda _r: Reply('{"condition_met": false, "next_run_in": 5}', delay=6.0)
    )


def test_a_watch_that_times_out_mid_look_leaves_and_does_not_hold_the_drain(
    h264_clip: Clip, slow_model: Any
) -> None:
    cfg = load_config_text(
        f"""
[cameras.c]
url = "{h264_clip.path}"
loop = true
[backends.vlm]
type = "openai"
base_url = "{slow_model.base_url}"
retries = 0
[[watches]]
name = "short"
camera = "c"
condition = "a cat"
backend = "vlm"
max_duration_minutes = 0.03
"""
    )
    p = Pipeline(cfg)
    p.start()
    try:
        running = p.watches["short"]
        wait_until(lambda: "short" not in p.watches, 15, "watch short to end")
        assert running.status == "failed" and running.gate.in_flight == 0
        listed = {w["name"]: w for w in p.watch_list()}
        assert listed["short"]["status"] == "failed"
        assert "timed out" in (listed["short"]["error_message"] or "")
        # The look still waiting for the model is written off: nothing to wait for.
        assert p.drain(grace_s=5) is True
    finally:
        p.stop(grace_s=0)
