"""Turn an MQTT topic into a cold observable of (topic, payload), for detection sources.

Takes the subscribe/unsubscribe callables of any MQTT connection (for example
``pipeline.net.mqtt_connection.MqttConnection.subscribe``), so sources never own a
network client.
"""

from __future__ import annotations

from collections.abc import Callable

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable

MessageCallback = Callable[[str, bytes], None]
Subscribe = Callable[[str, MessageCallback], object]
Unsubscribe = Callable[[str, MessageCallback], object]


def mqtt_messages(
    topic: str, subscribe: Subscribe, unsubscribe: Unsubscribe | None = None
) -> Observable[tuple[str, bytes]]:
    """Return an observable of ``(topic, payload)`` for every message on ``topic`` (wildcards ok).

    Example:
        >>> msgs = mqtt_messages("frigate/events", conn.subscribe, conn.unsubscribe)
        ... # doctest: +SKIP

    Messages arrive on the MQTT network thread. Subscribing calls
    ``subscribe(topic, callback)``; disposing calls ``unsubscribe(topic, callback)``.
    """
    if not topic:
        raise ValueError("The MQTT topic must not be empty.")

    def _subscribe(
        observer: abc.ObserverBase[tuple[str, bytes]], _: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        active = [True]

        def callback(t: str, payload: bytes) -> None:
            if active[0]:
                observer.on_next((t, payload))

        subscribe(topic, callback)

        def stop() -> None:
            active[0] = False
            if unsubscribe is not None:
                unsubscribe(topic, callback)

        return Disposable(stop)

    return reactivex.create(_subscribe)
