"""Frigate's three detection topics over a real Mosquitto broker (payloads as Frigate documents)."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import pytest

from pipeline.core.config import FrigateDetectConfig, MqttConfig
from pipeline.core.detection import Detection
from pipeline.net.mqtt_connection import MqttConnection
from sources.frigate import frigate_detections
from tests.support import frigate_payloads as fp
from tests.support.mosquitto import Mosquitto


@pytest.fixture
def conn(mosquitto: Mosquitto) -> Iterator[MqttConnection]:
    c = MqttConnection(MqttConfig(host=mosquitto.host, port=mosquitto.port, topic_prefix="t"))
    c.start(wait_s=10)
    try:
        yield c
    finally:
        c.stop(timeout=5)


def drain(q: queue.Queue[Detection], n: int) -> list[Detection]:
    return [q.get(timeout=10) for _ in range(n)]


def test_events_reviews_and_object_updates_all_become_detections(conn: MqttConnection) -> None:
    cfg = FrigateDetectConfig(topic_prefix="nvr", camera="front_cam")
    q: queue.Queue[Detection] = queue.Queue()
    sub = frigate_detections(cfg, "yard", conn.subscribe, conn.unsubscribe).subscribe(q.put)
    try:
        conn.publish("nvr/events", fp.dumps(fp.event(camera="front_cam")), qos=1)
        conn.publish("nvr/reviews", fp.dumps(fp.review()), qos=1)
        conn.publish("nvr/tracked_object_update", fp.dumps(fp.face(camera="front_cam")), qos=1)
        conn.publish("nvr/tracked_object_update", fp.dumps(fp.description("front_cam")), qos=1)
        conn.publish("nvr/reviews", fp.dumps(fp.review(camera="garage")), qos=1)
        got = drain(q, 4)
    finally:
        sub.dispose()
    events = {d.event for d in got}
    assert events == {"update", "review.update", "object_update.face"}
    assert all(d.camera == "yard" and d.source == "frigate" for d in got)
    assert sorted(d.label for d in got if d.event == "review.update") == ["car", "person"]
    face = next(d for d in got if d.event == "object_update.face")
    assert "person:john" in face.tags
    assert q.empty()


def test_reviews_and_updates_can_be_turned_off(conn: MqttConnection) -> None:
    cfg = FrigateDetectConfig(camera="front_cam", reviews="off", object_updates=False)
    q: queue.Queue[Detection] = queue.Queue()
    sub = frigate_detections(cfg, "yard", conn.subscribe, conn.unsubscribe).subscribe(q.put)
    try:
        conn.publish("frigate/reviews", fp.dumps(fp.review()), qos=1)
        conn.publish("frigate/tracked_object_update", fp.dumps(fp.face("front_cam")), qos=1)
        conn.publish("frigate/events", fp.dumps(fp.event(camera="front_cam")), qos=1)
        (only,) = drain(q, 1)  # the event published last arrives; nothing before it did
    finally:
        sub.dispose()
    assert only.event == "update"
    assert q.empty()
