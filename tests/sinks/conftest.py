"""Helpers for sink tests: a raw paho subscriber that records messages, alert factories."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from pipeline.config import MqttConfig
from pipeline.events import Alert, WatchState
from sinks.mqtt_connection import MqttConnection
from tests.support.mosquitto import Mosquitto


def make_alert(n: int = 1, watch: str = "porch", camera: str = "front", **kw: Any) -> Alert:
    fields: dict[str, Any] = {
        "event_id": f"evt-{n}",
        "watch": watch,
        "job_id": "job-1",
        "camera": camera,
        "condition": "a package is on the porch",
        "message": f"Package #{n}",
        "reasoning": "A brown box by the door.",
        "time": 1_700_000_000.0 + n,
        "look_count": n,
        "frame": {"camera": camera, "seq": n},
    }
    fields.update(kw)
    return Alert(**fields)


def make_state(watch: str = "porch", **kw: Any) -> WatchState:
    return WatchState(id="job-1", name=watch, camera="front", condition="a package", **kw)


def wait_until(pred: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class Recorder:
    """A plain paho client subscribed to ``topic`` that records (topic, payload, retain)."""

    def __init__(
        self,
        host: str,
        port: int,
        topic: str = "#",
        *,
        client_id: str = "",
        clean: bool = True,
        qos: int = 1,
    ) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.topic = topic
        self.qos = qos
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean,
        )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.reconnect_delay_set(1, 1)
        self.client.connect(host, port, 30)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError("recorder did not subscribe")

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        client.subscribe(self.topic, self.qos)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def on(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t == topic]

    def last(self, topic: str) -> bytes | None:
        got = self.on(topic)
        return got[-1] if got else None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def recorder_factory() -> Iterator[Callable[..., Recorder]]:
    made: list[Recorder] = []

    def factory(broker: Mosquitto, topic: str = "#", **kw: Any) -> Recorder:
        rec = Recorder(broker.host, broker.port, topic, **kw)
        made.append(rec)
        return rec

    yield factory
    for rec in made:
        rec.close()


@pytest.fixture
def connection_factory() -> Iterator[Callable[..., MqttConnection]]:
    made: list[MqttConnection] = []

    def factory(broker: Mosquitto, **kw: Any) -> MqttConnection:
        kw.setdefault("reconnect_max_s", 1)
        cfg = MqttConfig(host=broker.host, port=broker.port, **kw)
        conn = MqttConnection(cfg)
        made.append(conn)
        return conn

    yield factory
    for conn in made:
        conn.stop(timeout=2)
