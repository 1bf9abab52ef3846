"""The values the MQTT connection hands out: messages, delivery counters and errors.

Example:
    >>> MqttTally().stats()
    TallyStats(accepted=0, sent=0, queued=0, dropped=0, rejected=0)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt

MessageCallback = Callable[[str, bytes], None]
"""A subscriber: called with (topic, payload) on the MQTT network thread; keep it quick."""


@dataclass(frozen=True, slots=True)
class MqttMessage:
    """One received message, with its MQTT 5 properties (empty under MQTT 3.1.1).

    Example:
        >>> m = MqttMessage("lookout/watches/list", b"", response_topic="me/replies")
        >>> m.response_topic, m.correlation_data, m.retain
        ('me/replies', None, False)

    Attributes:
        topic: the topic it was published on.
        payload: its bytes.
        qos: the QoS it was delivered with.
        retain: whether the broker delivered it as a retained message.
        response_topic: MQTT 5 response topic (where a request wants its reply).
        correlation_data: MQTT 5 correlation data (to echo in the reply).
        user_properties: MQTT 5 user properties, in order, as (key, value).
        content_type: MQTT 5 content type.
    """

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    response_topic: str | None = None
    correlation_data: bytes | None = None
    user_properties: tuple[tuple[str, str], ...] = ()
    content_type: str | None = None

    @classmethod
    def from_paho(cls, message: mqtt.MQTTMessage) -> MqttMessage:
        """Copy a paho message (its properties, when it has any) into a plain value."""
        props = getattr(message, "properties", None)
        response = getattr(props, "ResponseTopic", None)
        correlation = getattr(props, "CorrelationData", None)
        content_type = getattr(props, "ContentType", None)
        user = getattr(props, "UserProperty", None) or ()
        return cls(
            topic=message.topic,
            payload=bytes(message.payload),
            qos=int(message.qos),
            retain=bool(message.retain),
            response_topic=str(response) if response else None,
            correlation_data=bytes(correlation) if correlation is not None else None,
            user_properties=tuple((str(k), str(v)) for k, v in user),
            content_type=str(content_type) if content_type else None,
        )


MessageHandler = Callable[[MqttMessage], None]
"""A subscriber that wants the whole :class:`MqttMessage` (see ``subscribe_messages``)."""


@dataclass(frozen=True, slots=True)
class TallyStats:
    """Counters of one :class:`MqttTally` (one user of the connection, such as a sink).

    Attributes:
        accepted: messages handed to the client (queued or sent).
        sent: messages the broker acknowledged (QoS 1/2) or that were written (QoS 0).
        queued: accepted messages still waiting for their acknowledgement.
        dropped: messages lost: the queue was full, QoS 0 while disconnected, or
            still unacknowledged when the connection stopped.
        rejected: messages the broker refused (MQTT 5 negative PUBACK).
    """

    accepted: int
    sent: int
    queued: int
    dropped: int
    rejected: int


class MqttTally:
    """Thread-safe delivery counters of one publisher; pass it to ``publish(..., tally=)``.

    Example:
        >>> tally = MqttTally()
        >>> tally.stats()
        TallyStats(accepted=0, sent=0, queued=0, dropped=0, rejected=0)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(("accepted", "sent", "rejected", "refused", "lost"), 0)

    def _count(self, outcome: str) -> None:
        """Count one outcome: accepted, sent, rejected, refused (not queued) or lost."""
        with self._lock:
            self._counts[outcome] += 1

    def stats(self) -> TallyStats:
        """A snapshot of the counters (``queued`` = accepted and not yet settled)."""
        with self._lock:
            c = dict(self._counts)
        settled = c["sent"] + c["rejected"] + c["lost"]
        return TallyStats(
            accepted=c["accepted"],
            sent=c["sent"],
            queued=max(0, c["accepted"] - settled),
            dropped=c["refused"] + c["lost"],
            rejected=c["rejected"],
        )


class MqttError(RuntimeError):
    """The MQTT connection cannot work as configured (bad TLS files, refused credentials...)."""


class MqttTlsError(MqttError):
    """TLS failed (unknown CA, wrong host, missing client certificate); no plain fallback."""


@dataclass(frozen=True, slots=True)
class MqttStats:
    """Counters of one connection.

    Attributes:
        accepted: messages handed to the client (queued or sent).
        sent: messages the broker acknowledged (QoS 1/2) or that were written (QoS 0).
        queued: messages waiting for an acknowledgement right now.
        dropped: messages lost because the queue was full or QoS 0 while disconnected.
        rejected: messages the broker refused (MQTT 5 negative PUBACK).
        connects: successful connections so far.
        connected: whether the client is connected now.
    """

    accepted: int
    sent: int
    queued: int
    dropped: int
    rejected: int
    connects: int
    connected: bool
