"""Frigate events and generic JSON detections over a real Mosquitto broker."""

import queue
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from pipeline.core.config import FrigateDetectConfig, MqttConfig, MqttJsonDetectConfig
from pipeline.core.detection import Detection
from pipeline.net.mqtt_connection import MqttConnection
from sources.frigate import FrigateEventParser, frigate_detections
from sources.mqtt_json import JsonDetectionParser, mqtt_json_detections
from tests.support.mosquitto import Mosquitto


def frigate_event(kind: str, camera: str = "front_door", **after: Any) -> bytes:
    """A ``frigate/events`` payload shaped as in Frigate's MQTT documentation."""
    obj = {
        "id": "1607123955.475377-mxklsc",
        "camera": camera,
        "frame_time": 1607123961.837752,
        "snapshot": None,
        "label": "person",
        "sub_label": None,
        "top_score": 0.958984375,
        "false_positive": False,
        "start_time": 1607123955.475377,
        "end_time": None,
        "score": 0.7890625,
        "box": [424, 500, 536, 712],
        "area": 23744,
        "ratio": 2.113207,
        "region": [264, 450, 667, 853],
        "current_zones": ["driveway"],
        "entered_zones": ["yard", "driveway"],
        "thumbnail": None,
        "has_snapshot": False,
        "has_clip": False,
        "active": True,
        "stationary": False,
        "motionless_count": 0,
        "position_changes": 2,
        "attributes": {},
    }
    obj.update(after)
    return orjson.dumps({"type": kind, "before": obj, "after": obj})


@pytest.fixture
def conn(mosquitto: Mosquitto) -> Iterator[MqttConnection]:
    c = MqttConnection(MqttConfig(host=mosquitto.host, port=mosquitto.port, topic_prefix="t"))
    c.start(wait_s=10)
    try:
        yield c
    finally:
        c.stop(timeout=5)


def _drain(q: "queue.Queue[Detection]", n: int) -> list[Detection]:
    return [q.get(timeout=10) for _ in range(n)]


def test_frigate_events_over_real_broker(conn: MqttConnection) -> None:
    cfg = FrigateDetectConfig(topic_prefix="frigate", camera="front_door")
    q: queue.Queue[Detection] = queue.Queue()
    sub = frigate_detections(cfg, "porch", conn.subscribe, conn.unsubscribe).subscribe(q.put)
    try:
        conn.publish("frigate/events", frigate_event("new"), qos=1)
        conn.publish("frigate/events", frigate_event("update", camera="backyard"), qos=1)
        conn.publish("frigate/events", frigate_event("update", false_positive=True), qos=1)
        conn.publish("frigate/events", b"{not json", qos=1)
        conn.publish("frigate/events", frigate_event("end"), qos=1)
        conn.publish("frigate/events", frigate_event("update", label="car", score=None), qos=1)
        first, second = _drain(q, 2)
    finally:
        sub.dispose()
    assert first.camera == "porch" and first.label == "person" and first.source == "frigate"
    assert first.box.as_list() == [424, 500, 536, 712]
    assert first.zones == ("driveway",) and first.object_id == "1607123955.475377-mxklsc"
    assert first.time == 1607123961.837752 and first.event == "new"
    assert abs(first.score - 0.7890625) < 1e-9
    # Other cameras, false positives, garbage and "end" were skipped; score falls back.
    assert second.label == "car" and abs(second.score - 0.958984375) < 1e-9
    assert q.empty()


@pytest.mark.parametrize(
    ("payload", "labels"),
    [
        (frigate_event("new"), ["person"]),
        (frigate_event("end"), []),
        (frigate_event("new", false_positive=True), []),
        (frigate_event("new", camera="garage"), []),
        (frigate_event("new", box=[1, 2]), []),
        (b"[]", []),
        (b'{"type": "new"}', []),
    ],
)
def test_frigate_parser_table(payload: bytes, labels: list[str]) -> None:
    p = FrigateEventParser(FrigateDetectConfig(), {"front_door": "porch"})
    d = p.parse(payload)
    assert ([d.label] if d else []) == labels


def test_frigate_false_positives_kept_when_asked() -> None:
    p = FrigateEventParser(FrigateDetectConfig(include_false_positives=True), {"front_door": "p"})
    assert p.parse(frigate_event("new", false_positive=True)) is not None


def test_mqtt_json_over_real_broker(conn: MqttConnection) -> None:
    q: queue.Queue[Detection] = queue.Queue()
    cfg = MqttJsonDetectConfig(topic="yolo/porch")
    sub = mqtt_json_detections(cfg, "porch", conn.subscribe, conn.unsubscribe).subscribe(q.put)
    try:
        conn.publish("yolo/porch", b'{"label": "dog", "score": 0.5, "box": [10, 20, 30, 40], '
                     b'"frame_size": [640, 480], "time": 12.5, "object_id": 7}', qos=1)  # fmt: skip
        conn.publish("yolo/porch", b'{"camera": "porch", "detections": [{"label": "cat", '
                     b'"box": [0.1, 0.2, 0.3, 0.4]}, {"label": "", "box": [0, 0, 1, 1]}, '
                     b'{"camera": "gate", "label": "car", "box": [0, 0, 1, 1]}]}', qos=1)  # fmt: skip
        dog, cat = _drain(q, 2)
    finally:
        sub.dispose()
    assert (dog.label, dog.score, dog.frame_size, dog.time, dog.object_id) == (
        "dog", 0.5, (640, 480), 12.5, "7"
    )  # fmt: skip
    assert (
        cat.label == "cat"
        and cat.frame_size == (1, 1)
        and cat.box.as_list() == [0.1, 0.2, 0.3, 0.4]
    )
    assert cat.source == "mqtt" and cat.time > 1e9  # receipt time from the clock


@pytest.mark.parametrize(
    ("payload", "count"),
    [
        (b'{"label": "x", "box": [0.5, 0.5, 1, 1], "frame_size": [100, 200]}', 1),
        (b'{"label": "x", "box": [0.5, 0.5, 1, 1], "box_units": "pixels"}', 1),
        (b'{"label": "x", "box": [5, 5, 1, 1]}', 0),
        (b'{"label": "x", "box": [1, 1, 5, 5], "score": 2}', 0),
        (b'{"label": "x"}', 0),
        (b"nope", 0),
        (b'[{"label": "a", "box": [1, 1, 2, 2]}, 3]', 1),
    ],
)
def test_mqtt_json_parser_table(payload: bytes, count: int) -> None:
    p = JsonDetectionParser("porch")
    assert len(p.parse(payload, 0.0)) == count
    scaled = JsonDetectionParser("porch").parse(
        b'{"label": "x", "box": [0.5, 0.5, 1, 1], "frame_size": [100, 200]}', 0.0
    )
    assert scaled[0].box.as_list() == [50, 100, 100, 200]
