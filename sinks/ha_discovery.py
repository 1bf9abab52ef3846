"""Home Assistant MQTT discovery: the configs of a watch's entities, and the sweep of stale ones.

The MQTT sink now publishes device-based discovery (:mod:`sinks.ha_devices`: one
config per watch, camera and Lookout itself); the per-entity configs below are
what earlier versions published, which the sink clears (``discovery_topics``),
and the :class:`DiscoverySweep` serves both.

Each watch has two entities under Lookout's node id (the topic prefix): a binary
sensor (condition met) and a sensor (last reasoning). Their configs follow the
discovery schema of Home Assistant 2025.10 and later: ``default_entity_id``
(``object_id`` is deprecated and removed in 2026.4), an ``origin`` block and the
device's ``sw_version`` (and ``configuration_url`` when Lookout's address is known).

A watch that disappeared while Lookout was down (removed from the config, or a
run-time watch that was not persistent) would keep its retained configs, and
so its entities, forever. Once the process runs its watches, the MQTT sink starts
a :class:`DiscoverySweep`: it lists the retained configs under the node id and
clears the configs of every watch that does not run.

Example:
    >>> [t for t, _ in discovery_messages("porch", "lookout", "homeassistant")]
    ... # doctest: +NORMALIZE_WHITESPACE
    ['homeassistant/binary_sensor/lookout/porch_met/config',
     'homeassistant/sensor/lookout/porch_reasoning/config']
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from pipeline import __version__
from pipeline.net.mqtt_connection import MqttConnection, MqttMessage

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")
_ENTITIES = (("binary_sensor", "met"), ("sensor", "reasoning"))


def safe(part: str) -> str:
    """``part`` with every character a topic level or entity id cannot hold replaced by ``_``."""
    return _UNSAFE.sub("_", part)


@functools.cache
def support_url() -> str | None:
    """The project's home page from the installed package's metadata, if it names one."""
    try:
        urls = importlib.metadata.metadata("lookout").get_all("Project-URL") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip().lower() in ("homepage", "home", "source", "repository"):
            return str(url).strip()
    return None


def discovery_topics(watch: str, node: str, discovery_prefix: str) -> list[str]:
    """The config topics of one watch's entities.

    Example:
        >>> discovery_topics("porch", "lookout", "ha")
        ['ha/binary_sensor/lookout/porch_met/config', 'ha/sensor/lookout/porch_reasoning/config']
    """
    return [
        f"{discovery_prefix}/{kind}/{node}/{safe(watch)}_{leaf}/config" for kind, leaf in _ENTITIES
    ]


def discovery_messages(
    watch: str,
    topic_prefix: str,
    discovery_prefix: str,
    *,
    configuration_url: str | None = None,
) -> list[tuple[str, bytes]]:
    """Home Assistant discovery configs of one watch: a binary sensor and a reasoning sensor.

    Example:
        >>> topic, payload = discovery_messages("porch", "lookout", "homeassistant")[0]
        >>> orjson.loads(payload)["default_entity_id"]
        'binary_sensor.lookout_porch_met'
    """
    node = safe(topic_prefix)
    state_topic = f"{topic_prefix}/watches/{watch}/state"
    device: dict[str, Any] = {
        "identifiers": [f"lookout_{node}"],
        "name": f"Lookout ({topic_prefix})",
        "manufacturer": "Lookout",
        "model": "camera watches",
        "sw_version": __version__,
    }
    if configuration_url:
        device["configuration_url"] = configuration_url
    origin = {"name": "Lookout", "sw_version": __version__}
    if support_url():
        origin["support_url"] = str(support_url())
    common: dict[str, Any] = {
        "state_topic": state_topic,
        "availability_topic": f"{topic_prefix}/available",
        "payload_available": "online",
        "payload_not_available": "offline",
        "json_attributes_topic": state_topic,
        "device": device,
        "origin": origin,
    }
    binary = {
        **common,
        "name": f"{watch} condition met",
        "unique_id": f"lookout_{node}_{safe(watch)}_met",
        "default_entity_id": f"binary_sensor.lookout_{safe(watch)}_met",
        "value_template": "{{ 'ON' if value_json.condition_met else 'OFF' }}",
        "payload_on": "ON",
        "payload_off": "OFF",
    }
    sensor = {
        **common,
        "name": f"{watch} last reasoning",
        "unique_id": f"lookout_{node}_{safe(watch)}_reasoning",
        "default_entity_id": f"sensor.lookout_{safe(watch)}_reasoning",
        "value_template": "{{ (value_json.last_reasoning or '')[:250] }}",
        "icon": "mdi:eye",
    }
    topics = discovery_topics(watch, node, discovery_prefix)
    return [(topics[0], orjson.dumps(binary)), (topics[1], orjson.dumps(sensor))]


class DiscoverySweep:
    """Clear the retained discovery configs of watches that no longer exist.

    :meth:`start` subscribes to ``<discovery_prefix>/+/<node>/+/config`` and, once
    the SUBSCRIBE is out (at once when connected, else after the next connect),
    publishes a marker message to a topic of its own. The broker sends a
    subscription's retained messages before it handles the client's next packet,
    so when the marker comes back every retained config has arrived. When both
    the inventory is complete and :meth:`running` has said the watches run,
    each listed topic that belongs to none of ``alive()`` is cleared (an empty
    retained payload, which removes the entity), and the subscriptions end.

    Args:
        connection: the shared connection (started by its owner).
        discovery_prefix: Home Assistant's discovery prefix.
        alive: the watches whose configs must stay, asked at sweep time.
        clear: publishes an empty retained payload to a topic (the sink's, so its
            tally counts it).
        keep: the config topics that must stay, asked at sweep time; when given it
            replaces the per-entity topics of ``alive`` (device-based discovery:
            watch, camera and Lookout devices, :mod:`sinks.ha_devices`).

    Example:
        >>> sweep = DiscoverySweep(conn, "homeassistant", lambda: {"porch"}, clear)
        ... # doctest: +SKIP
        >>> sweep.start(); sweep.running()  # doctest: +SKIP
    """

    def __init__(
        self,
        connection: MqttConnection,
        discovery_prefix: str,
        alive: Callable[[], set[str]],
        clear: Callable[[str], None],
        keep: Callable[[], set[str]] | None = None,
    ) -> None:
        self.connection = connection
        self.discovery_prefix = discovery_prefix
        self.node = safe(connection.config.topic_prefix)
        self.filter = f"{discovery_prefix}/+/{self.node}/+/config"
        self.marker_topic = connection.topic("discovery_sweep", uuid.uuid4().hex)
        self._alive = alive
        self._clear = clear
        self._keep = keep
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self._marker = ""
        self._started = False
        self._listed = False
        self._running = False
        self._done = False
        self.removed: list[str] = []
        """The topics this sweep cleared (for tests and logs)."""

    def start(self) -> None:
        """List the retained configs under the node id (in the background)."""
        with self._lock:
            if self._started or self._done:
                return
            self._started = True
        self.connection.subscribe_messages(self.filter, self._on_config)
        self.connection.subscribe_messages(self.marker_topic, self._on_marker)
        self.connection.add_connect_listener(self._send_marker)
        if self.connection.connected:
            self._send_marker()

    def running(self) -> None:
        """The watches of the process have started; sweep as soon as the list is complete."""
        with self._lock:
            self._running = True
        self._sweep()

    def stop(self) -> None:
        """End the subscriptions (nothing is cleared after this)."""
        with self._lock:
            self._done = True
            started = self._started
        if started:
            self._unsubscribe()

    @property
    def started(self) -> bool:
        """Whether :meth:`start` was called."""
        with self._lock:
            return self._started

    @property
    def done(self) -> bool:
        """Whether the sweep has run (or was stopped)."""
        with self._lock:
            return self._done

    def _send_marker(self) -> None:
        # A fresh marker after each connect: one sent before a disconnect may come
        # back before the retained messages of the renewed subscription.
        with self._lock:
            if self._listed or self._done:
                return
            self._marker = uuid.uuid4().hex
            marker = self._marker
        self.connection.publish(self.marker_topic, marker.encode(), qos=1)

    def _on_config(self, message: MqttMessage) -> None:
        if message.retain and message.payload:
            with self._lock:
                self._seen.add(message.topic)

    def _on_marker(self, message: MqttMessage) -> None:
        with self._lock:
            if message.payload.decode(errors="replace") != self._marker:
                return
            self._listed = True
        self._sweep()

    def _sweep(self) -> None:
        with self._lock:
            if self._done or not (self._listed and self._running):
                return
            self._done = True
            seen = set(self._seen)
        keep = (
            self._keep()
            if self._keep is not None
            else {
                topic
                for watch in self._alive()
                for topic in discovery_topics(watch, self.node, self.discovery_prefix)
            }
        )
        stale = sorted(seen - keep)
        for topic in stale:
            self._clear(topic)
        self.removed = stale
        self._unsubscribe()
        if stale:
            log.info(
                "Home Assistant discovery: removed %d retained config(s) of watches that are "
                "gone: %s",
                len(stale),
                ", ".join(stale),
            )

    def _unsubscribe(self) -> None:
        self.connection.remove_connect_listener(self._send_marker)
        self.connection.unsubscribe(self.filter, self._on_config)
        self.connection.unsubscribe(self.marker_topic, self._on_marker)
