"""A control client for tests: sends run-time watch requests, waits for the replies.

Example::

    requester = Requester(broker, "lookout/watches/reply", v5=False)
    requester.wait_ready("lookout")
    reply = requester.request("lookout/watches/set", {"name": "gate", ...})
    requester.close()
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.support.mosquitto import Mosquitto

_ids = itertools.count()


class Requester:
    """Send control requests and wait for replies.

    With MQTT 5 the reply comes on the request's response topic with its
    correlation data; with 3.1.1 on ``reply_topic``, matched by ``correlation_id``.
    """

    def __init__(self, broker: Mosquitto, reply_topic: str, v5: bool) -> None:
        self.v5 = v5
        self.reply_topic = reply_topic
        self.replies: list[tuple[dict[str, Any], bytes | None]] = []
        self._cond = threading.Condition()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"test-requester-{next(_ids)}",
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        )
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(reply_topic, qos=1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        if not subscribed.wait(10):
            raise AssertionError("the requester could not subscribe")

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        props = getattr(msg, "properties", None)
        corr = getattr(props, "CorrelationData", None) if props is not None else None
        with self._cond:
            self.replies.append((orjson.loads(msg.payload), corr))
            self._cond.notify_all()

    def request(
        self, topic: str, body: dict[str, Any] | bytes | None, timeout: float = 15
    ) -> dict[str, Any]:
        corr = f"c{next(_ids)}"
        if isinstance(body, bytes):
            payload = body
        else:
            data = dict(body or {})
            if not self.v5:
                data["correlation_id"] = corr
            payload = orjson.dumps(data)
        props = None
        if self.v5:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.ResponseTopic = self.reply_topic
            props.CorrelationData = corr.encode()
        self.client.publish(topic, payload, qos=1, properties=props)

        def mine(reply: dict[str, Any], c: bytes | None) -> bool:
            if self.v5:
                return c == corr.encode()
            return reply.get("correlation_id") == corr or isinstance(body, bytes)

        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for reply, c in self.replies:
                    if mine(reply, c):
                        self.replies.remove((reply, c))
                        return reply
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no reply to {topic}; got {self.replies}")
                self._cond.wait(left)

    def wait_ready(self, prefix: str, timeout: float = 15) -> None:
        """Send ``list`` until a reply comes (the server has subscribed)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.request(f"{prefix}/watches/list", None, timeout=0.5)
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
