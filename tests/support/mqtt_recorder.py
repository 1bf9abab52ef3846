"""The one MQTT recorder of the tests: a plain paho client that keeps what it receives.

Example::

    rec = MqttRecorder.under(broker, "lookout")            # lookout/# over MQTT 3.1.1
    rec.wait_topic("lookout/watches/porch/alert", 10)
    assert rec.last("lookout/available") == b"online"
    v5 = MqttRecorder(broker.host, broker.port, "rep/#", protocol=mqtt.MQTTv5)
    v5.raw("rep/a")[0].properties.CorrelationData
    rec.close()

It subscribes again after a reconnect (a broker restarted on its port), so a test
can take the broker down and up under it. The fixture ``recorder_factory``
(tests/conftest.py) closes every recorder it made. Two one-shot clients go with it::

    publish(broker, {"frigate/events": b"{...}"})                 # as another client would
    left = retained(broker, "homeassistant/#")                    # {topic: payload}
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from tests.support.mosquitto import Mosquitto

Message = tuple[str, bytes, bool]
"""(topic, payload, retain) of one message received."""

_ids = itertools.count()


class MqttRecorder:
    """Subscribe to ``topic`` (a filter) and record every message, in order of arrival.

    Args:
        host, port: the broker.
        topic: the subscription filter (``#``: everything).
        client_id: default a unique ``test-recorder-N``; give one with ``clean=False``
            to resume a persistent session.
        clean: clean session (MQTT 3.1.1; MQTT 5 always starts clean here).
        qos: the subscription's QoS.
        protocol: ``mqtt.MQTTv311`` or ``mqtt.MQTTv5``.

    Raises:
        AssertionError: the subscription was not acknowledged within 10 s.
    """

    def __init__(
        self,
        host: str,
        port: int,
        topic: str = "#",
        *,
        client_id: str = "",
        clean: bool = True,
        qos: int = 1,
        protocol: MQTTProtocolVersion = mqtt.MQTTv311,
    ) -> None:
        self.topic = topic
        self.qos = qos
        self.messages: list[Message] = []
        self.received: list[mqtt.MQTTMessage] = []
        self._cond = threading.Condition()
        subscribed = threading.Event()
        session: dict[str, Any] = {} if protocol == mqtt.MQTTv5 else {"clean_session": clean}
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-recorder-{next(_ids)}",
            protocol=protocol,
            **session,
        )
        self.client.on_connect = lambda c, *_: c.subscribe(self.topic, self.qos)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect(host, port, 30)
        self.client.loop_start()
        if not subscribed.wait(10):
            self.close()
            raise AssertionError(f"the recorder could not subscribe to {topic!r}")

    @classmethod
    def under(cls, broker: Mosquitto, prefix: str, **kwargs: Any) -> MqttRecorder:
        """A recorder of every topic under ``prefix`` (``prefix/#``) on ``broker``."""
        return cls(broker.host, broker.port, f"{prefix}/#", **kwargs)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
            self.received.append(msg)
            self._cond.notify_all()

    @property
    def properties(self) -> list[Any]:
        """The MQTT 5 properties of each message (None under 3.1.1), in order."""
        with self._cond:
            return [getattr(m, "properties", None) for m in self.received]

    def payloads(self, topic: str) -> list[bytes]:
        """The payloads received on ``topic``, in order."""
        with self._cond:
            return [p for t, p, _ in self.messages if t == topic]

    def last(self, topic: str) -> bytes | None:
        """The latest payload on ``topic``, or None."""
        got = self.payloads(topic)
        return got[-1] if got else None

    def raw(self, topic: str) -> list[mqtt.MQTTMessage]:
        """The paho messages received on ``topic`` (with their properties), in order."""
        with self._cond:
            return [m for m in self.received if m.topic == topic]

    def wait_for(self, predicate: Callable[[list[Message]], bool], timeout: float) -> list[Message]:
        """Wait until ``predicate(messages)`` holds; return the messages then.

        Raises:
            AssertionError: not within ``timeout`` s (says the last 40 messages).
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(t, p[:160]) for t, p, _ in self.messages][-40:]
                    raise AssertionError(f"timed out after {timeout} s; got {seen}")
                self._cond.wait(left)
            return list(self.messages)

    def wait_topic(self, topic: str, timeout: float, contains: bytes = b"") -> bytes:
        """Wait for a message on ``topic`` whose payload holds ``contains``; return it."""
        msgs = self.wait_for(
            lambda ms: any(t == topic and contains in p for t, p, _ in ms), timeout
        )
        return next(p for t, p, _ in msgs if t == topic and contains in p)

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


def publish(broker: Mosquitto, messages: Mapping[str, bytes], *, retain: bool = False) -> None:
    """Publish ``messages`` (topic: payload) at QoS 1 from a client of their own, and wait."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-publisher-{next(_ids)}")
    client.connect(broker.host, broker.port, 30)
    client.loop_start()
    try:
        for topic, payload in messages.items():
            client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def retained(broker: Mosquitto, topic_filter: str) -> dict[str, bytes]:
    """Every retained message under ``topic_filter`` (complete when a marker comes back)."""
    found: dict[str, bytes] = {}
    marker = f"test/marker/{uuid.uuid4().hex}"
    done = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == marker:
            done.set()
        elif msg.retain and msg.payload:
            found[msg.topic] = bytes(msg.payload)

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-retained-{next(_ids)}")
    client.on_message = on_message
    client.connect(broker.host, broker.port, 30)
    client.loop_start()
    try:
        client.subscribe([(topic_filter, 1), (marker, 1)])
        client.publish(marker, b"x", qos=1)
        assert done.wait(10), "the marker did not come back"
        return dict(found)
    finally:
        client.disconnect()
        client.loop_stop()
