"""MQTT 5 properties both ways, per-sink counters, outage time, discovery cleanup."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from pipeline.core.config import MqttConfig, MqttSinkConfig
from pipeline.core.events import WatchStatus
from pipeline.net.mqtt_connection import MqttConnection, MqttMessage
from sinks.mqtt import MqttSink
from tests.support.events import make_alert, make_state
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_recorder import MqttRecorder
from tests.support.waiting import wait_until


@pytest.fixture
def v5_client(
    mosquitto: Mosquitto, recorder_factory: Callable[..., MqttRecorder]
) -> Callable[[str], MqttRecorder]:
    """A raw paho MQTT 5 client: publishes with properties, records what it receives."""
    return lambda topic: recorder_factory(mosquitto, topic, protocol=mqtt.MQTTv5)


def test_subscribe_messages_gets_mqtt5_properties_and_retain(
    mosquitto: Mosquitto,
    connection_factory: Callable[..., MqttConnection],
    v5_client: Callable[[str], MqttRecorder],
) -> None:
    conn = connection_factory(mosquitto, protocol="5")
    got: list[MqttMessage] = []
    plain: list[tuple[str, bytes]] = []
    conn.subscribe_messages("req/#", got.append)
    conn.subscribe("req/#", lambda t, p: plain.append((t, p)))
    conn.start(wait_s=10)
    client = v5_client("none/#")
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ResponseTopic = "me/replies"
    props.CorrelationData = b"\x00c1"
    props.UserProperty = [("trace", "abc"), ("n", "1")]
    props.ContentType = "application/json"
    client.client.publish("req/list", b"{}", qos=1, properties=props)
    client.client.publish("req/retained", b"r", qos=1, retain=True)
    wait_until(lambda: len(got) == 2 and len(plain) == 2, what="both requests")
    first = next(m for m in got if m.topic == "req/list")
    assert first == MqttMessage(
        topic="req/list",
        payload=b"{}",
        qos=1,
        retain=False,
        response_topic="me/replies",
        correlation_data=b"\x00c1",
        user_properties=(("trace", "abc"), ("n", "1")),
        content_type="application/json",
    )
    # A live message is not flagged retained; one delivered from the broker's store is.
    late: list[MqttMessage] = []
    conn.subscribe_messages("req/retained", late.append)
    wait_until(lambda: late != [], what="retained copy")
    assert late[0].retain and late[0].response_topic is None
    assert ("req/list", b"{}") in plain


def test_publish_sends_mqtt5_properties(
    mosquitto: Mosquitto,
    connection_factory: Callable[..., MqttConnection],
    v5_client: Callable[[str], MqttRecorder],
) -> None:
    client = v5_client("rep/#")
    conn = connection_factory(mosquitto, protocol="5")
    conn.start(wait_s=10)
    assert conn.publish(
        "rep/a",
        b"x",
        qos=1,
        response_topic="rep/back",
        correlation_data=b"c-9",
        user_properties=(("k", "v"),),
        content_type="text/plain",
    )
    assert conn.publish("rep/b", b"y", qos=1)
    wait_until(lambda: client.raw("rep/a") != [] and client.raw("rep/b") != [], what="both")
    p: Any = client.raw("rep/a")[0].properties
    assert p is not None
    assert p.ResponseTopic == "rep/back" and p.CorrelationData == b"c-9"
    assert p.UserProperty == [("k", "v")] and p.ContentType == "text/plain"
    assert not hasattr(client.raw("rep/b")[0].properties, "CorrelationData")


def test_mqtt311_leaves_properties_out(
    mosquitto: Mosquitto,
    connection_factory: Callable[..., MqttConnection],
    recorder_factory: Callable[..., MqttRecorder],
) -> None:
    rec = recorder_factory(mosquitto, "old/#")
    conn = connection_factory(mosquitto, protocol="3.1.1")
    got: list[MqttMessage] = []
    conn.subscribe_messages("old/#", got.append)
    conn.start(wait_s=10)
    assert conn.publish("old/a", b"x", qos=1, correlation_data=b"c", response_topic="r")
    wait_until(lambda: rec.payloads("old/a") == [b"x"] and got != [], what="message")
    assert got[0].correlation_data is None and got[0].response_topic is None


def test_publish_refuses_a_bad_qos() -> None:
    conn = MqttConnection(MqttConfig())
    with pytest.raises(ValueError, match="QoS"):
        conn.publish("a", b"", qos=3)
    with pytest.raises(ValueError, match="QoS"):
        conn.subscribe("a", lambda t, p: None, qos=-1)


def test_unsubscribe_removes_one_handler_then_the_topic(
    mosquitto: Mosquitto, connection_factory: Callable[..., MqttConnection]
) -> None:
    conn = connection_factory(mosquitto)
    a: list[MqttMessage] = []
    b: list[tuple[str, bytes]] = []
    conn.subscribe_messages("u/t", a.append)
    conn.subscribe("u/t", lambda t, p: b.append((t, p)))
    conn.subscribe("u/mark", lambda t, p: b.append((t, p)))
    conn.start(wait_s=10)
    conn.publish("u/t", b"1", qos=1)
    wait_until(lambda: len(a) == 1 and len(b) == 1, what="first")
    conn.unsubscribe("u/t", a.append)  # a bound method is a new object: nothing removed
    conn.publish("u/t", b"2", qos=1)
    wait_until(lambda: len(a) == 2 and len(b) == 2, what="second")
    conn.unsubscribe("u/t")
    conn.publish("u/t", b"3", qos=1)
    conn.publish("u/mark", b"m", qos=1)  # after the UNSUBSCRIBE on the same connection
    wait_until(lambda: ("u/mark", b"m") in b, what="marker")
    assert len(a) == 2 and [p for t, p in b if t == "u/t"] == [b"1", b"2"]


def test_disconnected_since_follows_the_broker(
    mosquitto: Mosquitto, connection_factory: Callable[..., MqttConnection]
) -> None:
    conn = connection_factory(mosquitto)
    assert conn.disconnected_since is None
    conn.start(wait_s=10)
    assert conn.disconnected_since is None
    before = time.time()
    mosquitto.stop()
    wait_until(lambda: conn.disconnected_since is not None, what="outage start")
    since = conn.disconnected_since
    assert since is not None and before <= since <= time.time()
    mosquitto.start()
    wait_until(lambda: conn.connected, timeout=15, what="reconnect")
    assert conn.disconnected_since is None
    conn.stop(timeout=5)
    assert conn.disconnected_since is None


def test_disconnected_since_counts_from_start_without_a_broker(
    mosquitto: Mosquitto, connection_factory: Callable[..., MqttConnection]
) -> None:
    mosquitto.stop()
    conn = connection_factory(mosquitto)
    before = time.time()
    conn.start()
    since = conn.disconnected_since
    assert since is not None and since >= before


def test_per_sink_counters(
    mosquitto: Mosquitto, connection_factory: Callable[..., MqttConnection]
) -> None:
    conn = connection_factory(mosquitto, queue_size=20)
    conn.start(wait_s=10)
    alerts = MqttSink("alerts", MqttSinkConfig(), conn)
    states = MqttSink("states", MqttSinkConfig(), conn)
    with alerts, states:
        for n in range(5):
            alerts.send_alert(make_alert(n))
        states.send_state(make_state(status=WatchStatus.RUNNING))
        assert conn.flush(10)
        a, s = alerts.stats(), states.stats()
        assert (a.accepted, a.sent, a.queued, a.dropped) == (5, 5, 0, 0)
        assert (s.accepted, s.sent, s.queued, s.dropped) == (1, 1, 0, 0)
        # Broker away: the queue (20) fills, the rest is dropped and counted on the sink.
        mosquitto.stop()
        wait_until(lambda: not conn.connected, what="disconnect")
        for n in range(40):
            alerts.send_alert(make_alert(100 + n))
        a = alerts.stats()
        assert a.dropped >= 20 and a.queued <= 20
        assert a.accepted == 5 + a.queued and a.dropped == 40 - a.queued
        assert states.stats().dropped == 0
        # Stopping the connection with the broker still away loses the queued ones.
        queued = a.queued
    conn.stop(timeout=0.5)
    after = alerts.stats()
    assert after.queued == 0 and after.dropped == 40  # the overflow plus the queued ones
    assert queued > 0
    assert conn.stats().dropped >= after.dropped


def test_forget_watch_clears_home_assistant_discovery(
    mosquitto: Mosquitto,
    connection_factory: Callable[..., MqttConnection],
    recorder_factory: Callable[..., MqttRecorder],
) -> None:
    conn = connection_factory(mosquitto)
    conn.start(wait_s=10)
    porch = "homeassistant/device/lookout/watch_porch/config"
    other = "homeassistant/device/lookout/watch_gate/config"
    with MqttSink("mqtt", MqttSinkConfig(home_assistant=True), conn) as sink:
        sink.send_state(make_state(status=WatchStatus.RUNNING))
        sink.send_state(make_state(watch="gate", status=WatchStatus.RUNNING))
        assert conn.flush(10)
        sink.forget_watch("porch")
        assert conn.flush(10)
        # A late subscriber (like Home Assistant starting) finds no porch device.
        late = recorder_factory(mosquitto, "homeassistant/#")
        wait_until(lambda: late.payloads(other) != [], what="the other watch's discovery")
        assert late.payloads(porch) == []
        # The watch coming back is discovered again.
        sink.send_state(make_state(status=WatchStatus.QUEUED))
        wait_until(lambda: late.payloads(porch) != [], what="rediscovery")
    # Without Home Assistant, forgetting publishes nothing; a closed sink ignores it.
    quiet = MqttSink("quiet", MqttSinkConfig(), conn)
    with quiet:
        quiet.forget_watch("porch")
    quiet.forget_watch("porch")
    assert quiet.stats().accepted == 0
