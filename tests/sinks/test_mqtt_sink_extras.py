from __future__ import annotations

from collections.abc import Callable

import orjson

from pipeline.core.config import MqttSinkConfig
from pipeline.core.events import WatchStatus
from pipeline.net.mqtt_connection import MqttConnection
from sinks.mqtt import MqttSink
from tests.support.events import make_alert, make_state
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_recorder import MqttRecorder
from tests.support.waiting import wait_until


def test_frigate_home_assistant_and_snapshot(
    mosquitto: Mosquitto,
    recorder_factory: Callable[..., MqttRecorder],
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
    device_topic = "homeassistant/device/home_lookout/watch_porch/config"
    wait_until(lambda: rec.last(device_topic) is not None, what="discovery")
    device = orjson.loads(rec.last(device_topic) or b"")
    binary, sensor = device["cmps"]["met"], device["cmps"]["reasoning"]
    assert binary["state_topic"] == "home/lookout/watches/porch/state"
    assert device["availability_topic"] == "home/lookout/available"
    assert device["payload_not_available"] == "offline"
    assert "condition_met" in binary["value_template"]
    assert "last_reasoning" in sensor["value_template"]
    assert binary["unique_id"] != sensor["unique_id"]
    # Discovery is published once per watch, retained (with Lookout's own device).
    assert len(rec.payloads(device_topic)) == 1
    late = recorder_factory(mosquitto, "homeassistant/#")
    wait_until(lambda: len(late.messages) == 2, what="retained discovery")
    assert all(retained for _, _, retained in late.messages)
