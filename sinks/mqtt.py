"""The MQTT sink: alerts, retained watch and camera state, snapshots, Frigate and Home Assistant.

Topics (``<p>`` is ``[mqtt] topic_prefix``):

- ``<p>/watches/<watch>/alert``: alert JSON (QoS from ``[mqtt] qos``, 1 by default).
- ``<p>/watches/<watch>/snapshot``: the judged frame as JPEG, retained (``snapshots = true``).
- ``<p>/watches/<watch>/state``: the watch state JSON, retained.
- ``<p>/cameras/<camera>/state``: the camera state JSON, retained.
- ``<frigate_prefix>/camera_monitoring``: the baseline's notification JSON (``frigate_compat``).
- ``<discovery_prefix>/binary_sensor|sensor/<p>/<watch>_.../config``: Home Assistant
  discovery, published once per watch (``home_assistant``), and cleared (an
  empty retained payload, which removes the entities) when the watch is removed
  for good: cancelled at run time or dropped from the config by a reload.

While the broker is away, messages wait in the connection's bounded queue
(see :class:`pipeline.net.mqtt_connection.MqttConnection`); ``close()`` does not close
the shared connection, whose ``stop()`` flushes it. Each sink counts its own
messages (``stats()``: accepted, sent, queued, dropped, rejected), apart from
the connection's totals.

Example:
    >>> sink = MqttSink("mqtt", MqttSinkConfig(), connection)  # doctest: +SKIP
    >>> with sink:  # doctest: +SKIP
    ...     sink.send_alert(alert)
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from pipeline.core.config import MqttSinkConfig
from pipeline.core.events import Alert, CameraState, WatchState
from pipeline.net.mqtt_connection import MqttConnection, MqttTally, TallyStats
from sinks.base import Sink

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")


def _safe(part: str) -> str:
    return _UNSAFE.sub("_", part)


def discovery_messages(
    watch: str, connection: MqttConnection, discovery_prefix: str
) -> list[tuple[str, bytes]]:
    """Home Assistant discovery configs of one watch: a binary sensor and a reasoning sensor.

    Example:
        >>> from pipeline.core.config import MqttConfig
        >>> msgs = discovery_messages("porch", MqttConnection(MqttConfig()), "homeassistant")
        >>> [t for t, _ in msgs]  # doctest: +NORMALIZE_WHITESPACE
        ['homeassistant/binary_sensor/lookout/porch_met/config',
         'homeassistant/sensor/lookout/porch_reasoning/config']
    """
    prefix = connection.config.topic_prefix
    node = _safe(prefix)
    state_topic = connection.topic("watches", watch, "state")
    device = {
        "identifiers": [f"lookout_{node}"],
        "name": f"Lookout ({prefix})",
        "manufacturer": "Lookout",
        "model": "camera watches",
    }
    common: dict[str, Any] = {
        "state_topic": state_topic,
        "availability_topic": connection.availability_topic,
        "payload_available": "online",
        "payload_not_available": "offline",
        "json_attributes_topic": state_topic,
        "device": device,
    }
    binary = {
        **common,
        "name": f"{watch} condition met",
        "unique_id": f"lookout_{node}_{_safe(watch)}_met",
        "object_id": f"lookout_{_safe(watch)}_met",
        "value_template": "{{ 'ON' if value_json.condition_met else 'OFF' }}",
        "payload_on": "ON",
        "payload_off": "OFF",
    }
    sensor = {
        **common,
        "name": f"{watch} last reasoning",
        "unique_id": f"lookout_{node}_{_safe(watch)}_reasoning",
        "object_id": f"lookout_{_safe(watch)}_reasoning",
        "value_template": "{{ (value_json.last_reasoning or '')[:250] }}",
        "icon": "mdi:eye",
    }
    base = f"{discovery_prefix}/{{}}/{node}/{_safe(watch)}_{{}}/config"
    return [
        (base.format("binary_sensor", "met"), orjson.dumps(binary)),
        (base.format("sensor", "reasoning"), orjson.dumps(sensor)),
    ]


class MqttSink(Sink):
    """Publish alerts and state through the shared :class:`MqttConnection`.

    Args:
        name: the sink's name (its key under ``[sinks]``).
        config: the sink's table.
        connection: the process's MQTT connection (started by its owner).
    """

    def __init__(self, name: str, config: MqttSinkConfig, connection: MqttConnection) -> None:
        super().__init__(name)
        self.config = config
        self.connection = connection
        self.tally = MqttTally()
        self._discovered: set[str] = set()
        self._topics: dict[tuple[str, str, str], str] = {}

    def stats(self) -> TallyStats:
        """Delivery counters of this sink (accepted, sent, queued, dropped, rejected).

        Example:
            >>> sink.stats().dropped  # doctest: +SKIP
            0
        """
        return self.tally.stats()

    def _publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.connection.publish(topic, payload, retain=retain, tally=self.tally)

    def _topic(self, group: str, name: str, leaf: str) -> str:
        key = (group, name, leaf)
        topic = self._topics.get(key)
        if topic is None:
            topic = self.connection.topic(group, name, leaf)
            self._topics[key] = topic
        return topic

    def _discover(self, watch: str) -> None:
        if not self.config.home_assistant or watch in self._discovered:
            return
        self._discovered.add(watch)
        for topic, payload in discovery_messages(
            watch, self.connection, self.config.discovery_prefix
        ):
            self._publish(topic, payload, retain=True)

    def _forget_watch(self, name: str) -> None:
        # Cleared even when not discovered in this process: a previous run may have.
        self._discovered.discard(name)
        for key in [k for k in self._topics if k[:2] == ("watches", name)]:
            del self._topics[key]
        if not self.config.home_assistant:
            return
        for topic, _ in discovery_messages(name, self.connection, self.config.discovery_prefix):
            self._publish(topic, b"", retain=True)

    def _write_alert(self, alert: Alert) -> None:
        self._discover(alert.watch)
        self._publish(self._topic("watches", alert.watch, "alert"), alert.to_json())
        if self.config.snapshots and alert.jpeg is not None:
            self._publish(self._topic("watches", alert.watch, "snapshot"), alert.jpeg, retain=True)
        if self.config.frigate_compat:
            self._publish(
                f"{self.config.frigate_prefix}/camera_monitoring",
                orjson.dumps(alert.frigate_notification()),
            )

    def _write_state(self, state: WatchState) -> None:
        self._discover(state.name)
        self._publish(self._topic("watches", state.name, "state"), state.to_json(), retain=True)

    def _write_camera_state(self, state: CameraState) -> None:
        self._publish(self._topic("cameras", state.camera, "state"), state.to_json(), retain=True)
