"""What a broker keeps retained under a topic filter, read the way a new subscriber sees it.

Example::

    left = retained(broker, "homeassistant/#")   # {topic: payload}
"""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.mosquitto import Mosquitto


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

    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="")
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
