"""The publish bookkeeping of one MQTT connection: acknowledgements, counters, retained payloads.

paho may acknowledge a message (``on_publish``) before ``publish()`` has
returned its id, so an early acknowledgement is kept until the publish is
recorded. Each message may carry an :class:`MqttTally` (one per sink) that
counts its outcome too. The latest retained payload of each topic is kept so
that it can be published again after a reconnect.

Example:
    >>> d = Deliveries()
    >>> d.published("t", b"x", qos=1, retain=False, mid=1, rc=MQTTErrorCode.MQTT_ERR_SUCCESS,
    ...             props=None, tally=None, queue_size=10)
    True
    >>> d.acknowledged(1, ok=True)
    >>> d.counts()
    (1, 1, 0, 0, 0)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties

from pipeline.net.mqtt_types import MqttTally

log = logging.getLogger("pipeline.net.mqtt_connection")

Retained = tuple[str, bytes, int, Properties | None]
"""A retained message to publish again: topic, payload, QoS, MQTT 5 properties."""


class Deliveries:
    """Thread-safe record of what was published and what the broker acknowledged."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flushed = threading.Condition(self._lock)
        self._pending: dict[int, MqttTally | None] = {}
        self._acked_early: dict[int, bool] = {}
        self._retained: dict[str, tuple[bytes, int, int, Properties | None]] = {}
        self._accepted = 0
        self._sent = 0
        self._dropped = 0
        self._rejected = 0
        self._last_drop_log = 0.0

    def published(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int,
        retain: bool,
        mid: int,
        rc: MQTTErrorCode,
        props: Properties | None,
        tally: MqttTally | None,
        queue_size: int,
    ) -> bool:
        """Record one ``publish()`` and return whether it was accepted (else dropped and logged).

        QoS 1/2 messages published while disconnected are accepted: they wait in
        paho's queue. The retained payload of ``topic`` is remembered (or
        forgotten when ``payload`` is empty).
        """
        ok = rc == MQTTErrorCode.MQTT_ERR_SUCCESS or (
            rc == MQTTErrorCode.MQTT_ERR_NO_CONN and qos > 0
        )
        early: bool | None = None
        with self._lock:
            if retain and payload:
                self._retained[topic] = (payload, qos, mid, props)
            elif retain:
                self._retained.pop(topic, None)
            if not ok:
                self._dropped += 1
                dropped = self._dropped
            else:
                self._accepted += 1
                early = self._acked_early.pop(mid, None)
                if early is None:
                    self._pending[mid] = tally
        if tally is not None:
            tally._count("accepted" if ok else "refused")
            if early is not None:
                tally._count("sent" if early else "rejected")
        if not ok:
            self._log_drop(topic, rc, dropped, queue_size)
        return ok

    def _log_drop(self, topic: str, rc: MQTTErrorCode, total: int, queue_size: int) -> None:
        now = time.monotonic()
        if now - self._last_drop_log >= 5.0 or total == 1:
            self._last_drop_log = now
            why = "queue full" if rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE else mqtt.error_string(rc)
            log.error(
                "MQTT message on %s dropped (%s; queue_size=%d); %d dropped in all",
                topic,
                why,
                queue_size,
                total,
            )

    def republished(
        self, topic: str, payload: bytes, qos: int, mid: int, props: Properties | None
    ) -> None:
        """Record a retained payload published again after a reconnect."""
        with self._lock:
            self._accepted += 1
            early = self._acked_early.pop(mid, None)
            if early is None:
                self._pending[mid] = None
            if topic in self._retained:
                self._retained[topic] = (payload, qos, mid, props)

    def acknowledged(self, mid: int, ok: bool) -> None:
        """The broker acknowledged (``ok``) or refused message ``mid``."""
        tally: MqttTally | None = None
        with self._flushed:
            if mid in self._pending:
                tally = self._pending.pop(mid)
            else:
                self._acked_early[mid] = ok
            if ok:
                self._sent += 1
            else:
                self._rejected += 1
            if not self._pending:
                self._flushed.notify_all()
        if tally is not None:
            tally._count("sent" if ok else "rejected")

    def to_restore(self, skip: str) -> list[Retained]:
        """Retained payloads to publish again after a reconnect (not those still in flight)."""
        with self._lock:
            return [
                (t, p, q, props)
                for t, (p, q, mid, props) in self._retained.items()
                if mid not in self._pending and t != skip
            ]

    def wake(self) -> None:
        """Wake :meth:`flush` (the connection was lost)."""
        with self._flushed:
            self._flushed.notify_all()

    def flush(self, timeout: float, connected: Callable[[], bool]) -> bool:
        """Wait until no message waits for an acknowledgement; return whether that happened."""
        deadline = time.monotonic() + timeout
        with self._flushed:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0 or not connected():
                    return not self._pending
                self._flushed.wait(min(left, 0.1))
            return True

    def lose_pending(self) -> int:
        """Count every unacknowledged message as dropped (the connection stopped)."""
        with self._lock:
            lost = list(self._pending.values())
            self._pending.clear()
            self._dropped += len(lost)
        for tally in lost:
            if tally is not None:
                tally._count("lost")
        return len(lost)

    def counts(self) -> tuple[int, int, int, int, int]:
        """``(accepted, sent, queued, dropped, rejected)`` now."""
        with self._lock:
            return (
                self._accepted,
                self._sent,
                len(self._pending),
                self._dropped,
                self._rejected,
            )
