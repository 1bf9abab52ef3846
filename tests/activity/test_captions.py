"""Captions: a sidecar describes the camera's picture, paced and budgeted, into the store and MQTT."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
from reactivex.disposable import Disposable
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

from operators.backends.registry import build_backend
from pipeline.app.activity.captions import CameraCaptions
from pipeline.core.config import (
    ActivityConfig,
    CaptionsConfig,
    HttpBackendConfig,
    MqttConfig,
    MqttSinkConfig,
)
from pipeline.core.detection import Box, Detection
from pipeline.core.events import Caption
from pipeline.net.mqtt_connection import MqttConnection
from sinks.activity.query import Filter, entries
from sinks.activity.sink import ActivitySink
from sinks.activity.store import ActivityStore
from sinks.mqtt import MqttSink
from sinks.registry import SinkHub
from tests.support.fakes import StaticFrames, rgb_frame
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_recorder import MqttRecorder
from tests.support.sidecar import Sidecar
from tests.support.waiting import wait_until


class _Camera(StaticFrames):
    def __init__(self) -> None:
        super().__init__(rgb_frame(camera="porch"), name="porch")
        self.holds = 0

    def connect(self) -> Disposable:
        self.holds += 1

        def release() -> None:
            self.holds -= 1

        return Disposable(release)


def _run(cfg: CaptionsConfig, car: Sidecar, until: float,
         dets: Subject[Detection] | None = None, wakes_at: tuple[float, ...] = ()) -> tuple[list[Caption], CameraCaptions, _Camera]:  # fmt: skip
    s = TestScheduler()
    got: list[Caption] = []
    backend = build_backend("car", HttpBackendConfig(url=car.url()))
    camera = _Camera()
    with ThreadPoolExecutor(1) as pool:
        runner = CameraCaptions("porch", cfg, camera, backend, got.append, dets, scheduler=s,
                                executor=pool, clock=lambda: s.clock)  # fmt: skip
        runner.start()
        assert camera.holds == 1
        for t in wakes_at:
            s.schedule_absolute(t, lambda *_: dets.on_next(_det()) if dets else None)  # type: ignore[misc]
        step = 0.5
        t = 0.0
        while t < until:  # each caption finishes (real HTTP) before virtual time goes on
            t += step
            s.advance_to(t)
            wait_until(lambda: not runner._busy.locked(), 10, "the caption", interval=0.005)
        runner.stop()
    backend.stop()
    return got, runner, camera


def _det() -> Detection:
    return Detection(camera="porch", label="person", score=0.9, box=Box(0, 0, 5, 5), time=0.0)


def test_captions_every_n_seconds_with_the_prompt() -> None:
    cfg = CaptionsConfig(backend="car", every_s=10, min_gap_s=0, prompt="What moves?")
    with Sidecar([(200, {"description": "A cat crosses the porch."})]) as car:
        got, _, camera = _run(cfg, car, until=35)
    assert [c.time for c in got] == [0.0, 10.0, 20.0, 30.0]
    assert got[0].text == "A cat crosses the porch." and got[0].backend == "car"
    assert got[0].jpeg is not None and got[0].jpeg[:2] == b"\xff\xd8"
    assert all(body["prompt"] == "What moves?" for _, body in car.requests)
    assert camera.holds == 0  # let go at stop


def test_wakes_caption_too_but_not_closer_than_min_gap_and_within_budget() -> None:
    cfg = CaptionsConfig(backend="car", every_s=None, on_wake=True, min_gap_s=5, max_per_hour=20)
    dets: Subject[Detection] = Subject()
    with Sidecar([(200, {"description": "someone"})]) as car:
        got, runner, _ = _run(cfg, car, until=30, dets=dets, wakes_at=(1, 2, 3, 8, 20))
    # 1 -> caption; 2 and 3 inside min_gap_s; 8 -> caption; 20 -> over the budget
    # (20 an hour: a burst of 2, then one every 180 s)
    assert [(c.time, c.trigger) for c in got] == [(1.0, "wake"), (8.0, "wake")]
    assert runner.skipped == 1


def test_a_failing_backend_gives_a_caption_that_says_why(tmp_path: Path) -> None:
    cfg = CaptionsConfig(backend="car", every_s=60)
    with Sidecar([(400, {"error": "bad picture"})]) as car:
        got, _, _ = _run(cfg, car, until=1)
    assert got and got[0].text == "" and "HTTP 400" in (got[0].error or "")


def test_captions_reach_the_store_and_mqtt(tmp_path: Path, mosquitto: Mosquitto) -> None:
    conn = MqttConnection(MqttConfig(host=mosquitto.host, port=mosquitto.port, topic_prefix="lk"))
    conn.start()
    rec = MqttRecorder.under(mosquitto, "lk")
    store = ActivityStore(tmp_path / "d", ActivityConfig(), clock=lambda: 0.0)
    hub = SinkHub({"mqtt": MqttSink("mqtt", MqttSinkConfig(), conn)})
    hub.attach(ActivitySink(store))
    hub.open()
    try:
        cfg = CaptionsConfig(backend="car", every_s=60)
        with Sidecar([(200, {"description": "Two parcels by the door."})]) as car:
            got, _, _ = _run(cfg, car, until=1)
        for c in got:
            hub.send_caption(c)
        payload = rec.wait_topic("lk/cameras/porch/caption", 10)
        assert orjson.loads(payload)["caption"] == "Two parcels by the door."
        assert store.flush()
        rows = entries(store.db_path, Filter(text="parcels"))
        assert [(r["kind"], r["camera"]) for r in rows] == [("caption", "porch")]
        assert rows[0]["picture"]
    finally:
        hub.close()
        rec.close()
        conn.stop(2)
