from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from pipeline.core.config import MqttConfig, MqttSinkConfig
from pipeline.core.events import CameraState, WatchStatus
from pipeline.net.mqtt_connection import MqttConnection, MqttError
from sinks.mqtt import MqttSink
from tests.support.events import make_alert, make_state
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_recorder import MqttRecorder
from tests.support.waiting import wait_until


def test_topic_helper_rejects_separators() -> None:
    conn = MqttConnection(MqttConfig(topic_prefix="home/lookout"))
    assert conn.topic("watches", "porch", "alert") == "home/lookout/watches/porch/alert"
    with pytest.raises(ValueError, match="Topic part"):
        conn.topic("a/b")
    with pytest.raises(ValueError, match="Topic part"):
        conn.topic("#")


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_availability_alert_and_retained_state(
    protocol: str,
    mosquitto: Mosquitto,
    recorder_factory: Callable[..., MqttRecorder],
    connection_factory: Callable[..., MqttConnection],
) -> None:
    rec = recorder_factory(mosquitto, "lookout/#")
    conn = connection_factory(mosquitto, protocol=protocol)
    conn.start(wait_s=10)
    wait_until(lambda: rec.last("lookout/available") == b"online", what="online")
    sink = MqttSink("mqtt", MqttSinkConfig(), conn)
    with sink:
        sink.send_state(make_state(status=WatchStatus.RUNNING, iterations=2))
        sink.send_alert(make_alert(1))
        sink.send_camera_state(CameraState(camera="front", online=True))
    assert conn.flush(10)
    wait_until(lambda: rec.payloads("lookout/watches/porch/alert") != [], what="alert")
    alert = orjson.loads(rec.payloads("lookout/watches/porch/alert")[0])
    assert alert["event_id"] == "evt-1"
    assert alert["message"] == "Package #1"
    assert alert["frame"] == {"camera": "front", "seq": 1}
    wait_until(lambda: rec.last("lookout/cameras/front/state") is not None, what="camera state")
    stats = conn.stats()
    assert stats.dropped == 0
    assert stats.sent >= 4
    # A late subscriber sees retained state.
    late = recorder_factory(mosquitto, "lookout/+/+/state")
    wait_until(lambda: late.last("lookout/watches/porch/state") is not None, what="retained")
    state = orjson.loads(late.last("lookout/watches/porch/state") or b"")
    assert state["status"] == "running"
    assert all(retain for _, _, retain in late.messages)
    conn.stop(timeout=5)
    wait_until(lambda: rec.last("lookout/available") == b"offline", what="offline")


def test_subscribe_survives_broker_restart(
    mosquitto: Mosquitto,
    connection_factory: Callable[..., MqttConnection],
) -> None:
    conn = connection_factory(mosquitto)
    got: list[tuple[str, bytes]] = []
    conn.subscribe("frigate/events", lambda t, p: got.append((t, p)))
    conn.start(wait_s=10)
    conn.publish("frigate/events", b"one")
    wait_until(lambda: ("frigate/events", b"one") in got, what="first message")
    mosquitto.restart()
    wait_until(lambda: conn.stats().connects >= 2, timeout=15, what="reconnect")
    wait_until(lambda: conn.connected, what="connected")
    conn.publish("frigate/events", b"two")
    wait_until(lambda: ("frigate/events", b"two") in got, what="message after restart")


def test_queue_overflow_is_counted_not_silent(
    mosquitto: Mosquitto,
    connection_factory: Callable[..., MqttConnection],
    caplog: pytest.LogCaptureFixture,
) -> None:
    conn = connection_factory(mosquitto, queue_size=10)
    conn.start(wait_s=10)
    mosquitto.stop()
    wait_until(lambda: not conn.connected, what="disconnect")
    results = [conn.publish("lookout/x", b"%d" % i) for i in range(30)]
    stats = conn.stats()
    assert results.count(False) == stats.dropped
    assert stats.dropped >= 20
    assert stats.queued <= 10
    assert "dropped" in caplog.text


def test_wait_connected_reports_refused_credentials(
    mosquitto_factory: Callable[..., Mosquitto],
    connection_factory: Callable[..., MqttConnection],
) -> None:
    broker = mosquitto_factory(users={"alice": "right-pass"})
    conn = connection_factory(broker, username="alice", password="wrong-pass-123")
    with pytest.raises(MqttError, match="refused") as err:
        conn.start(wait_s=5)
    assert "wrong-pass-123" not in str(err.value)


def test_stopped_connection_refuses_reuse(mosquitto: Mosquitto) -> None:
    conn = MqttConnection(MqttConfig(host=mosquitto.host, port=mosquitto.port))
    conn.start(wait_s=10)
    assert conn.stop(timeout=5)
    with pytest.raises(MqttError, match="stopped"):
        conn.publish("lookout/x", b"1")
    with pytest.raises(MqttError, match="stopped"):
        conn.start()
