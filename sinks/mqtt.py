"""The MQTT sink: alerts, retained watch and camera state, snapshots, Frigate and Home Assistant.

Topics (``<p>`` is ``[mqtt] topic_prefix``):

- ``<p>/watches/<watch>/alert``: alert JSON (QoS from ``[mqtt] qos``, 1 by default).
- ``<p>/watches/<watch>/snapshot``: the judged frame as JPEG, retained (``snapshots = true``).
- ``<p>/watches/<watch>/state``: the watch state JSON, retained.
- ``<p>/cameras/<camera>/state``: the camera state JSON, retained.
- ``<p>/cameras/<camera>/caption``: the camera's latest caption JSON
  (``[cameras.NAME.captions]``), retained.
- ``<frigate_prefix>/camera_monitoring``: the baseline's notification JSON (``frigate_compat``).
- ``<p>/cameras/<camera>/stats``: the camera's last frame time, retained, every
  30 s (``home_assistant``; see :meth:`MqttSink.publish_camera_stats`).
- ``<discovery_prefix>/device/<p>/watch_<watch>|camera_<camera>|lookout/config``: Home
  Assistant device-based discovery (``home_assistant``, see :mod:`sinks.ha_devices`),
  published once per watch and camera and cleared (an empty retained payload, which
  removes the device and its entities) when the watch or camera is removed for good:
  cancelled at run time, dropped from the config by a reload, or gone while Lookout
  was down (swept at start, see :meth:`MqttSink.started`). The per-entity configs of
  earlier versions (:mod:`sinks.ha_discovery`) are cleared when their watch is
  discovered again, and by the sweep.
- ``<p>/watches/<watch>/snapshot`` is also published with ``home_assistant`` (the
  watch's image entity shows it).

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
from pipeline.core.events import Alert, CameraState, Caption, WatchState, iso_time
from pipeline.core.frame import CameraStats
from pipeline.net.mqtt_connection import MqttConnection, MqttTally, TallyStats
from sinks.base import Sink
from sinks.ha_devices import (
    HaSetup,
    camera_device,
    camera_device_topic,
    hub_device,
    hub_device_topic,
    watch_device,
    watch_device_topic,
)
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
        self.ha = HaSetup(
            connection.config.topic_prefix, config.discovery_prefix, config.configuration_url
        )
        self._cameras: set[str] = set()
        self._cameras_discovered: set[str] = set()

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
        with self._alive_lock:
            self._alive.add(watch)
        for topic in self._legacy_topics(watch):  # per-entity configs of earlier versions
            self._clear(topic)
        self._publish(*watch_device(watch, self.ha), retain=True)

    def _legacy_topics(self, watch: str) -> list[str]:
        node = safe(self.connection.config.topic_prefix)
        return discovery_topics(watch, node, self.config.discovery_prefix)

    def _open(self) -> None:
        if self.config.home_assistant:
            self.sweep = DiscoverySweep(
                self.connection,
                self.config.discovery_prefix,
                self._alive_now,
                self._clear,
                keep=self._keep_topics,
            )
            self._publish(*hub_device(self.ha), retain=True)

    def _keep_topics(self) -> set[str]:
        with self._alive_lock:
            watches, cameras = set(self._alive), set(self._cameras)
        return (
            {hub_device_topic(self.ha)}
            | {watch_device_topic(w, self.ha) for w in watches}
            | {camera_device_topic(c, self.ha) for c in cameras}
        )

    def home_assistant_setup(self, cameras: Collection[str], control: bool) -> None:
        """The process runs ``cameras``, with ``[control]`` on or off (called at start and reload).

        Publishes the devices of new cameras, clears those of cameras that went
        away (their retained state and stats too), and publishes the watch and
        camera devices again when ``control`` changed (their cancel buttons and
        new-watch texts exist only with control). Does nothing without
        ``home_assistant``.
        """
        if not self.config.home_assistant or self.closed:
            return
        changed = control != self.ha.control
        self.ha = HaSetup(self.ha.topic_prefix, self.ha.discovery_prefix,
                          self.ha.configuration_url, control)  # fmt: skip
        with self._alive_lock:
            gone = self._cameras - set(cameras)
            self._cameras = set(cameras)
        for camera in sorted(gone):
            self._cameras_discovered.discard(camera)
            self._clear(camera_device_topic(camera, self.ha))
            self._clear(self._topic("cameras", camera, "stats"))
            self._clear(self._topic("cameras", camera, "state"))
        redo = self._cameras_discovered if changed else set()
        for camera in sorted(set(cameras) - (self._cameras_discovered - redo)):
            self._discover_camera(camera)
        if changed:
            for watch in sorted(self._discovered):
                self._publish(*watch_device(watch, self.ha), retain=True)

    def _discover_camera(self, camera: str) -> None:
        self._cameras_discovered.add(camera)
        self._publish(*camera_device(camera, self.ha), retain=True)

    def publish_camera_stats(self, camera: str, stats: CameraStats) -> None:
        """Publish ``<p>/cameras/<camera>/stats`` (retained): last frame time, online, counters.

        Example:
            >>> sink.publish_camera_stats("porch", source.stats())  # doctest: +SKIP
        """
        if not self.config.home_assistant or self.closed:
            return
        last = stats.last_video_time
        body = {
            "camera": camera,
            "online": stats.online,
            "last_frame": iso_time(last),
            "last_frame_timestamp": last,
            "reconnects": stats.reconnects,
            "frames_decoded": stats.frames_decoded,
        }
        self._publish(self._topic("cameras", camera, "stats"), orjson.dumps(body), retain=True)

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
        self._clear(watch_device_topic(name, self.ha))
        for topic in self._legacy_topics(name):
            self._clear(topic)

    def _close(self) -> None:
        if self.sweep is not None:
            self.sweep.stop()

    def _write_alert(self, alert: Alert) -> None:
        self._discover(alert.watch)
        self._publish(self._topic("watches", alert.watch, "alert"), alert.to_json())
        snapshots = self.config.snapshots or self.config.home_assistant
        if snapshots and alert.jpeg is not None:
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
        if self.config.home_assistant and state.camera not in self._cameras_discovered:
            with self._alive_lock:
                self._cameras.add(state.camera)
            self._discover_camera(state.camera)

    def _write_caption(self, caption: Caption) -> None:
        topic = self._topic("cameras", caption.camera, "caption")
        self._publish(topic, caption.to_json(), retain=True)
