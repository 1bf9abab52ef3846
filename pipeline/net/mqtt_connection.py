"""The one MQTT connection of a process, shared by sinks, detection sources and control.

A thread-safe owner of one paho-mqtt 2.x client running its network loop in a
background thread:

- ``start()`` connects in the background and keeps reconnecting with backoff; the
  retained ``<prefix>/available`` says ``online`` after each connect and ``offline``
  through the last will (or ``stop()``).
- ``publish()`` never blocks: QoS 1/2 messages wait in a bounded queue
  (``queue_size``) while the broker is away; what does not fit is dropped, counted
  and logged. Delivery is counted per connection (``stats()``) and per caller that
  passes an :class:`MqttTally` (one per sink). The latest retained payload of each
  topic is published again after a reconnect.
- MQTT 5 properties both ways (``publish(..., response_topic=, correlation_data=,
  user_properties=, content_type=)`` and ``subscribe_messages()``, which hands over
  an :class:`MqttMessage`); ``subscribe()`` keeps the plain ``(topic, payload)`` callback.
- Subscriptions survive reconnects; ``add_connect_listener()`` calls back after
  each connect, once they are sent. ``disconnected_since`` serves ``/healthz``.

Its parts live beside it, and every public name is importable from here: the
values it hands out in :mod:`pipeline.net.mqtt_types`, the paho client and TLS in
:mod:`pipeline.net.mqtt_client`, the subscription list in
:mod:`pipeline.net.mqtt_subscriptions`, the publish bookkeeping in
:mod:`pipeline.net.mqtt_delivery`. What stays here (about 450 lines, most of them
docstrings) is the one class whose methods are the connection's API.

Example:
    >>> conn = MqttConnection(MqttConfig(host="127.0.0.1"))  # doctest: +SKIP
    >>> conn.start()  # doctest: +SKIP
    >>> conn.subscribe_messages("lookout/watches/list", lambda m: print(m.response_topic))
    ... # doctest: +SKIP
    >>> conn.publish("client/replies", b"{}", correlation_data=b"c1")  # doctest: +SKIP
    >>> conn.stop(timeout=5)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from pipeline.core.config import MqttConfig
from pipeline.core.logs import log_unexpected
from pipeline.net.mqtt_client import (
    build_ssl_context,
    check_tls,
    make_client,
    publish_properties,
)
from pipeline.net.mqtt_delivery import Deliveries
from pipeline.net.mqtt_subscriptions import Subscriptions
from pipeline.net.mqtt_types import (
    MessageCallback,
    MessageHandler,
    MqttError,
    MqttMessage,
    MqttStats,
    MqttTally,
    MqttTlsError,
    TallyStats,
)

__all__ = [
    "MessageCallback",
    "MessageHandler",
    "MqttConnection",
    "MqttError",
    "MqttMessage",
    "MqttStats",
    "MqttTally",
    "MqttTlsError",
    "TallyStats",
    "build_ssl_context",
    "check_tls",
    "default_client_id",
]

log = logging.getLogger(__name__)


def default_client_id() -> str:
    """Return ``lookout-<host>-<pid>``, the default client id."""
    return f"lookout-{socket.gethostname()}-{os.getpid()}"


class MqttConnection:
    """One paho-mqtt client for the whole process (see the module docstring).

    Args:
        config: the ``[mqtt]`` table.
        client_id: overrides ``config.client_id``.

    Example:
        >>> conn = MqttConnection(MqttConfig(topic_prefix="home"))
        >>> conn.topic("watches", "porch", "alert")
        'home/watches/porch/alert'
    """

    def __init__(self, config: MqttConfig, *, client_id: str | None = None) -> None:
        self.config = config
        self.client_id = client_id or config.client_id or default_client_id()
        self.availability_topic = self.topic("available")
        self._ssl_context = build_ssl_context(config.tls) if config.tls is not None else None
        self._v5 = config.protocol == "5"
        self._client = make_client(
            config, self.client_id, self.availability_topic, self._ssl_context
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message
        self._client.on_connect_fail = self._on_connect_fail

        # _lock: the lifecycle state and the connect count. The deliveries and the
        # subscriptions have their own locks; none is held while calling user code.
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._deliveries = Deliveries()
        self._subscriptions = Subscriptions(self._client)
        self._connect_listeners: list[Callable[[], None]] = []
        self._connects = 0
        self._state = "new"
        self._down_since: float | None = None
        self.last_error: str | None = None

    # -- topics ----------------------------------------------------------------

    def topic(self, *parts: str) -> str:
        """``<prefix>/<part>/<part>...``; parts must not contain ``/``, ``#`` or ``+``.

        Raises:
            ValueError: a part is empty or holds a separator or wildcard.
        """
        for part in parts:
            if not part or any(c in part for c in "/#+"):
                raise ValueError(f"Topic part {part!r} must be non-empty without '/', '#' or '+'.")
        return "/".join((self.config.topic_prefix, *parts))

    # -- lifecycle -------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the client is connected to the broker now."""
        return self._connected.is_set()

    @property
    def disconnected_since(self) -> float | None:
        """Epoch seconds since when the started connection has had no broker, else ``None``.

        Counts from ``start()`` until the first connect, and from each lost
        connection until the next connect. ``None`` while connected, before
        ``start()`` and after ``stop()`` (an intended disconnect is no outage).

        Example:
            >>> MqttConnection(MqttConfig()).disconnected_since is None
            True
        """
        return self._down_since

    def start(self, wait_s: float | None = None) -> None:
        """Connect in the background and start the network thread.

        Args:
            wait_s: when given, block until connected or raise after that many seconds.

        Raises:
            MqttTlsError: TLS cannot work (checked with one handshake first).
            MqttError: ``wait_s`` passed without a connection (the message says why),
                or the connection was stopped.
        """
        with self._lock:
            if self._state == "stopped":
                raise MqttError("This MQTT connection was stopped; create a new one.")
            if self._state == "started":
                return
            self._state = "started"
            self._down_since = time.time()
        if self._ssl_context is not None:
            try:
                check_tls(
                    self.config.host,
                    self.config.port,
                    self._ssl_context,
                    client_cert=self.config.tls is not None
                    and self.config.tls.cert_file is not None,
                )
            except MqttTlsError as exc:
                self.last_error = str(exc)
                with self._lock:
                    self._state = "stopped"
                    self._down_since = None
                raise
        self._client.connect_async(self.config.host, self.config.port, self.config.keepalive)
        self._client.loop_start()
        if wait_s is not None:
            self.wait_connected(wait_s)

    def wait_connected(self, timeout: float) -> None:
        """Block until connected.

        Raises:
            MqttError: not connected within ``timeout`` seconds (with the latest error).
        """
        if not self._connected.wait(timeout):
            why = self.last_error or "no answer"
            raise MqttError(
                f"Not connected to MQTT broker {self.config.host}:{self.config.port} "
                f"within {timeout:g} s: {why}"
            )

    def stop(self, timeout: float = 5.0) -> bool:
        """Publish ``offline``, wait up to ``timeout`` s for the queue to drain, disconnect.

        Returns:
            Whether every queued message was acknowledged before the disconnect.
            Messages still queued are lost (and counted as dropped, on their tally too).
        """
        with self._lock:
            if self._state != "started":
                self._state = "stopped"
                return True
            self._state = "stopping"
        if self.connected:
            self.publish(self.availability_topic, b"offline", qos=1, retain=True)
        flushed = self.flush(timeout)
        self._client.disconnect()
        self._client.loop_stop()
        with self._lock:
            self._state = "stopped"
            self._down_since = None
        lost = self._deliveries.lose_pending()
        if lost:
            log.warning("MQTT stopped with %d unacknowledged message(s); they are lost", lost)
        return flushed

    def flush(self, timeout: float) -> bool:
        """Wait until no message waits for an acknowledgement; return whether that happened."""
        return self._deliveries.flush(timeout, lambda: self.connected)

    def __enter__(self) -> MqttConnection:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- publish / subscribe -----------------------------------------------------

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int | None = None,
        retain: bool = False,
        *,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
        user_properties: tuple[tuple[str, str], ...] = (),
        content_type: str | None = None,
        tally: MqttTally | None = None,
    ) -> bool:
        """Queue ``payload`` for ``topic``; never blocks.

        Example:
            >>> conn.publish("me/replies", b'{"ok": true}', qos=1,
            ...              correlation_data=b"c1")  # doctest: +SKIP
            True

        Args:
            topic: full topic (see :meth:`topic`).
            payload: the bytes to send.
            qos: 0, 1 or 2; default ``config.qos``.
            retain: ask the broker to keep it as the topic's last value (an empty
                payload deletes the retained value).
            response_topic: MQTT 5 response topic.
            correlation_data: MQTT 5 correlation data.
            user_properties: MQTT 5 user properties, as (key, value) pairs.
            content_type: MQTT 5 content type.
            tally: counters of the caller (for example one sink), updated when the
                message is accepted, acknowledged, refused or lost.

        The MQTT 5 properties are left out under MQTT 3.1.1, which has none.

        Returns:
            ``True`` when sent or queued, ``False`` when dropped (counted and logged).

        Raises:
            MqttError: the connection was stopped.
            ValueError: ``qos`` is not 0, 1 or 2.
        """
        if self._state == "stopped":
            raise MqttError("This MQTT connection was stopped; create a new one.")
        q = self.config.qos if qos is None else qos
        if q not in (0, 1, 2):
            raise ValueError(f"The MQTT QoS must be 0, 1 or 2, got {q!r}.")
        props = publish_properties(
            self._v5, response_topic, correlation_data, user_properties, content_type
        )
        info = self._client.publish(topic, payload, qos=q, retain=retain, properties=props)
        return self._deliveries.published(
            topic,
            payload,
            qos=q,
            retain=retain,
            mid=info.mid,
            rc=info.rc,
            props=props,
            tally=tally,
            queue_size=self.config.queue_size,
        )

    def subscribe(self, topic: str, callback: MessageCallback, qos: int = 1) -> None:
        """Call ``callback(topic, payload)`` for every message matching ``topic`` (wildcards ok).

        Example:
            >>> conn.subscribe("frigate/events", lambda t, p: print(t, len(p)))  # doctest: +SKIP

        The subscription is renewed after every reconnect; while connected the
        SUBSCRIBE goes out at once (each call sends one, so the broker sends
        the topic's retained message again). Callbacks run on the network
        thread; their errors are logged.
        """
        self._subscriptions.add(topic, callback, qos)

    def subscribe_messages(self, topic: str, handler: MessageHandler, qos: int = 1) -> None:
        """Like :meth:`subscribe`, but ``handler`` gets an :class:`MqttMessage`.

        Use it for the retain flag or MQTT 5 properties (response topic,
        correlation data, user properties) of each message.

        Example:
            >>> conn.subscribe_messages(
            ...     "lookout/watches/list", lambda m: print(m.response_topic, m.retain)
            ... )  # doctest: +SKIP
        """
        self._subscriptions.add(topic, handler, qos, full=True)

    def unsubscribe(
        self, topic: str, callback: MessageCallback | MessageHandler | None = None
    ) -> None:
        """Remove ``callback`` (or every callback) from ``topic``; the last one unsubscribes."""
        self._subscriptions.remove(topic, callback)

    def add_connect_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after each connect, once every subscription has been sent.

        It runs on the network thread: keep it quick; its errors are logged.

        Example:
            >>> conn.add_connect_listener(lambda: print("connected"))  # doctest: +SKIP
        """
        with self._lock:
            self._connect_listeners.append(listener)

    def remove_connect_listener(self, listener: Callable[[], None]) -> None:
        """Stop calling ``listener`` (no error when it was not added)."""
        with self._lock:
            if listener in self._connect_listeners:
                self._connect_listeners.remove(listener)

    def stats(self) -> MqttStats:
        """Return a snapshot of the counters."""
        accepted, sent, queued, dropped, rejected = self._deliveries.counts()
        with self._lock:
            connects = self._connects
        return MqttStats(
            accepted=accepted,
            sent=sent,
            queued=queued,
            dropped=dropped,
            rejected=rejected,
            connects=connects,
            connected=self.connected,
        )

    # -- paho callbacks (network thread) ------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason_code: ReasonCode,
        properties: Any,
    ) -> None:
        if reason_code.is_failure:
            self.last_error = f"broker refused the connection: {reason_code}"
            log.error("MQTT %s:%s: %s", self.config.host, self.config.port, self.last_error)
            return
        with self._lock:
            self._connects += 1
            reconnect = self._connects > 1
            listeners = list(self._connect_listeners)
        retained = self._deliveries.to_restore(skip=self.availability_topic)
        self._subscriptions.connected(client)
        self.last_error = None
        log.info(
            "MQTT connected to %s:%s as %s", self.config.host, self.config.port, self.client_id
        )
        if self._state == "started":
            self.publish(self.availability_topic, b"online", qos=1, retain=True)
        self._down_since = None
        self._connected.set()
        if reconnect:
            for topic, payload, qos, props in retained:
                self._republish(topic, payload, qos, props)
        for listener in listeners:
            try:
                listener()
            except Exception as exc:
                log_unexpected(log, "MQTT connect listener failed", exc)

    def _republish(self, topic: str, payload: bytes, qos: int, props: Properties | None) -> None:
        info = self._client.publish(topic, payload, qos=qos, retain=True, properties=props)
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._deliveries.republished(topic, payload, qos, info.mid, props)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason_code: ReasonCode,
        properties: Any,
    ) -> None:
        self._subscriptions.disconnected()
        was = self._connected.is_set()
        self._connected.clear()
        self._deliveries.wake()
        if self._state == "started":
            if self._down_since is None:
                self._down_since = time.time()
            if was:
                self.last_error = f"connection lost: {reason_code}"
                log.warning(
                    "MQTT disconnected from %s:%s (%s); reconnecting",
                    self.config.host,
                    self.config.port,
                    reason_code,
                )

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self.last_error = "cannot connect (broker unreachable or TLS failed)"
        log.debug("MQTT connect to %s:%s failed", self.config.host, self.config.port)

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Any,
    ) -> None:
        ok = not reason_code.is_failure
        self._deliveries.acknowledged(mid, ok)
        if not ok:
            log.error("MQTT broker refused message %d: %s", mid, reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._subscriptions.dispatch(message)
