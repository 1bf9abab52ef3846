"""The MQTT sink: alerts, retained watch and camera state, snapshots, Frigate and Home Assistant.

Topics (``<p>`` is ``[mqtt] topic_prefix``):

- ``<p>/watches/<watch>/alert``: alert JSON (QoS from ``[mqtt] qos``, 1 by default).
- ``<p>/watches/<watch>/snapshot``: the judged frame as JPEG, retained (``snapshots = true``).
- ``<p>/watches/<watch>/state``: the watch state JSON, retained.
- ``<p>/cameras/<camera>/state``: the camera state JSON, retained.
- ``<p>/cameras/<camera>/caption``: the camera's latest caption JSON
  (``[cameras.NAME.captions]``), retained.
- ``<frigate_prefix>/camera_monitoring``: the baseline's notification JSON (``frigate_compat``).
- ``<discovery_prefix>/binary_sensor|sensor/<p>/<watch>_.../config``: Home Assistant
  discovery (``home_assistant``, see :mod:`sinks.ha_discovery`), published once per
  watch and cleared (an empty retained payload, which removes the entities) when
  the watch is removed for good: cancelled at run time, dropped from the config by
  a reload, or gone while Lookout was down (swept at start, see :meth:`MqttSink.started`).

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

import threading
from collections.abc import Collection

import orjson

from pipeline.core.config import MqttSinkConfig
from pipeline.core.events import Alert, CameraState, Caption, WatchState
from pipeline.net.mqtt_connection import MqttConnection, MqttTally, TallyStats
from sinks.base import Sink
from sinks.ha_discovery import DiscoverySweep, discovery_messages, discovery_topics, safe

__all__ = ["MqttSink", "discovery_messages", "discovery_topics"]


class MqttSink(Sink):
    """Publish alerts and state through the shared :class:`MqttConnection`.

    Args:
        name: the sink's name (its key under ``[sinks]``).
        config: the sink's table.
        connection: the process's MQTT connection (started by its owner).
    """

    wants_captions = True

    def __init__(self, name: str, config: MqttSinkConfig, connection: MqttConnection) -> None:
        super().__init__(name)
        self.config = config
        self.connection = connection
        self.tally = MqttTally()
        self._discovered: set[str] = set()
        self._alive: set[str] = set()
        self._alive_lock = threading.Lock()
        self._topics: dict[tuple[str, str, str], str] = {}
        self.sweep: DiscoverySweep | None = None
        """The sweep of stale discovery configs (``home_assistant`` only), once opened."""

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

    def _messages(self, watch: str) -> list[tuple[str, bytes]]:
        return discovery_messages(
            watch,
            self.connection.config.topic_prefix,
            self.config.discovery_prefix,
            configuration_url=self.config.configuration_url,
        )

    def _discover(self, watch: str) -> None:
        if not self.config.home_assistant or watch in self._discovered:
            return
        self._discovered.add(watch)
        with self._alive_lock:
            self._alive.add(watch)
        for topic, payload in self._messages(watch):
            self._publish(topic, payload, retain=True)

    def _open(self) -> None:
        if self.config.home_assistant:
            self.sweep = DiscoverySweep(
                self.connection, self.config.discovery_prefix, self._alive_now, self._clear
            )

    def _alive_now(self) -> set[str]:
        with self._alive_lock:
            return set(self._alive)

    def _clear(self, topic: str) -> None:
        self._publish(topic, b"", retain=True)

    def _started(self, watches: Collection[str]) -> None:
        # The watches the process runs now keep their entities; the retained configs of
        # every other watch under this node id go (see sinks.ha_discovery.DiscoverySweep).
        with self._alive_lock:
            self._alive.update(watches)
        if self.sweep is not None and not self.sweep.started:
            self.sweep.start()
            self.sweep.running()

    def _forget_watch(self, name: str) -> None:
        # Cleared even when not discovered in this process: a previous run may have.
        self._discovered.discard(name)
        with self._alive_lock:
            self._alive.discard(name)
        for key in [k for k in self._topics if k[:2] == ("watches", name)]:
            del self._topics[key]
        if not self.config.home_assistant:
            return
        node = safe(self.connection.config.topic_prefix)
        for topic in discovery_topics(name, node, self.config.discovery_prefix):
            self._clear(topic)

    def _close(self) -> None:
        if self.sweep is not None:
            self.sweep.stop()

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

    def _write_caption(self, caption: Caption) -> None:
        topic = self._topic("cameras", caption.camera, "caption")
        self._publish(topic, caption.to_json(), retain=True)

    def _write_caption(self, caption: Caption) -> None:
        topic = self._topic("cameras", caption.camera, "caption")
        self._publish(topic, caption.to_json(), retain=True)
