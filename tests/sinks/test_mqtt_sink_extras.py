from __future__ import annotations

from collections.abc import Callable

import orjson

from pipeline.core.config import MqttSinkConfig
from pipeline.core.events import WatchStatus
from pipeline.net.mqtt_connection import MqttConnection
from sinks.mqtt import MqttSink
from tests.sinks.conftest import Recorder, make_alert, make_state, wait_until
from tests.support.mosquitto import Mosquitto


def test_frigate_home_assistant_and_snapshot(
    mosquitto: Mosquitto,
    recorder_factory: Callable[..., Recorder],
    connection_factory: Callable[..., MqttConnection],
) -> None:
    rec = recorder_factory(mosquitto, "#")
    conn = connection_factory(mosquitto, topic_prefix="home/lookout")
    conn.start(wait_s=10)
    cfg = MqttSinkConfig(snapshots=True, frigate_compat=True, home_assistant=True)
    jpeg = b"\xff\xd8\xff\xe0jpeg-bytes\xff\xd9"
    with MqttSink("mqtt", cfg, conn) as sink:
        sink.send_state(make_state(status=WatchStatus.RUNNING, last_reasoning="Empty porch."))
        sink.send_alert(make_alert(1, jpeg=jpeg))
    assert conn.flush(10)
    wait_until(lambda: rec.last("frigate/camera_monitoring") is not None, what="frigate")
    frigate = orjson.loads(rec.last("frigate/camera_monitoring") or b"")
    assert frigate == {
        "camera": "front",
        "condition": "a package is on the porch",
        "message": "Package #1",
        "reasoning": "A brown box by the door.",
        "job_id": "job-1",
    }
    wait_until(lambda: rec.last("home/lookout/watches/porch/snapshot") == jpeg, what="snapshot")
    binary_topic = "homeassistant/binary_sensor/home_lookout/porch_met/config"
    sensor_topic = "homeassistant/sensor/home_lookout/porch_reasoning/config"
    wait_until(lambda: rec.last(sensor_topic) is not None, what="discovery")
    binary = orjson.loads(rec.last(binary_topic) or b"")
    assert binary["state_topic"] == "home/lookout/watches/porch/state"
    assert binary["availability_topic"] == "home/lookout/available"
    assert binary["payload_not_available"] == "offline"
    assert "condition_met" in binary["value_template"]
    sensor = orjson.loads(rec.last(sensor_topic) or b"")
    assert "last_reasoning" in sensor["value_template"]
    assert binary["unique_id"] != sensor["unique_id"]
    # Discovery is published once per watch, retained.
    assert len(rec.on(binary_topic)) == 1
    late = recorder_factory(mosquitto, "homeassistant/#")
    wait_until(lambda: len(late.messages) == 2, what="retained discovery")
    assert all(retained for _, _, retained in late.messages)
