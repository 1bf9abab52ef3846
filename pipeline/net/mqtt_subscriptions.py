"""The subscriptions of one MQTT connection: renewed on every connect, dispatched by topic.

:meth:`Subscriptions.connected` sends the whole list and marks the connection
live under one lock, so a subscription added while a connect is being handled
is either in that list or sends its own SUBSCRIBE: it is never left out until
the next reconnect. No lock is held while a callback runs.

Example:
    >>> import paho.mqtt.client as mqtt
    >>> from paho.mqtt.enums import CallbackAPIVersion
    >>> subs = Subscriptions(mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2))
    >>> subs.add("frigate/events", lambda topic, payload: None)
    >>> subs.topics()
    ['frigate/events']
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from pipeline.core.logs import log_unexpected
from pipeline.net.mqtt_types import MessageCallback, MessageHandler, MqttMessage

log = logging.getLogger("pipeline.net.mqtt_connection")


@dataclass(frozen=True, slots=True)
class Subscriber:
    """One callback on one topic filter."""

    callback: Callable[..., None]
    qos: int
    full: bool
    """Whether ``callback`` takes an :class:`MqttMessage` (else topic and payload)."""


class Subscriptions:
    """Topic filters and their callbacks, for one paho client.

    Args:
        client: the client that sends SUBSCRIBE and UNSUBSCRIBE.
    """

    def __init__(self, client: mqtt.Client) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._live = False
        self._subs: dict[str, list[Subscriber]] = {}
        self._wildcards: set[str] = set()

    def topics(self) -> list[str]:
        """The topic filters subscribed now."""
        with self._lock:
            return list(self._subs)

    def add(
        self,
        topic: str,
        callback: MessageCallback | MessageHandler,
        qos: int = 1,
        *,
        full: bool = False,
    ) -> None:
        """Add ``callback`` for ``topic``; while connected the SUBSCRIBE goes out at once.

        Raises:
            ValueError: the topic is empty or the QoS is not 0, 1 or 2.
        """
        if not topic:
            raise ValueError("The MQTT topic must not be empty.")
        if qos not in (0, 1, 2):
            raise ValueError(f"The MQTT QoS must be 0, 1 or 2, got {qos!r}.")
        with self._lock:
            subs = self._subs.setdefault(topic, [])
            subs.append(Subscriber(callback, qos, full))
            if "+" in topic or "#" in topic:
                self._wildcards.add(topic)
            if self._live:
                self._client.subscribe(topic, max(s.qos for s in subs))

    def remove(self, topic: str, callback: MessageCallback | MessageHandler | None = None) -> None:
        """Remove ``callback`` (or every callback) from ``topic``; the last one unsubscribes."""
        with self._lock:
            subs = [
                s
                for s in self._subs.get(topic, [])
                if callback is not None and s.callback is not callback
            ]
            if subs:
                self._subs[topic] = subs
                return
            self._subs.pop(topic, None)
            self._wildcards.discard(topic)
            if self._live:
                self._client.unsubscribe(topic)

    def connected(self, client: mqtt.Client) -> None:
        """Send every subscription (on the network thread, from ``on_connect``)."""
        with self._lock:
            for topic, subs in self._subs.items():
                client.subscribe(topic, max(s.qos for s in subs))
            self._live = True

    def disconnected(self) -> None:
        """No SUBSCRIBE can go out until the next connect."""
        with self._lock:
            self._live = False

    def dispatch(self, message: mqtt.MQTTMessage) -> None:
        """Call every callback whose filter matches; their errors are logged."""
        topic = message.topic
        with self._lock:
            # A received topic has no wildcards: exact subscriptions by lookup, the rest by match.
            targets = list(self._subs.get(topic, ()))
            for sub in self._wildcards:
                if mqtt.topic_matches_sub(sub, topic):
                    targets.extend(self._subs[sub])
        if not targets:
            return
        payload = bytes(message.payload)
        full = MqttMessage.from_paho(message) if any(s.full for s in targets) else None
        for s in targets:
            try:
                if full is not None and s.full:
                    s.callback(full)
                else:
                    s.callback(topic, payload)
            except Exception as exc:
                log_unexpected(log, f"MQTT subscriber for {topic} failed", exc)
