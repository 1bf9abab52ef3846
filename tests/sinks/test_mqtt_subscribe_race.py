"""Subscriptions made while the connection comes up are never lost (connect race)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial

from pipeline.net.mqtt_connection import MqttConnection
from tests.support.mosquitto import Mosquitto
from tests.support.waiting import wait_until

EARLY = 2000
"""Subscriptions made before the connect: the connect handler sends them all (a wide window)."""
RACERS = 2
AFTER = 20
"""Subscriptions each racing thread still makes once it has seen the connection up."""
CAP = 3000


def test_subscribes_racing_a_connect_all_reach_the_broker(
    mosquitto: Mosquitto,
    connection_factory: Callable[..., MqttConnection],
) -> None:
    # Racing threads keep subscribing to new topics from before the connect until a
    # little after it, so some subscribe() calls land while the connect is handled.
    # Every subscription must reach the broker: a message published afterwards on
    # the same connection (the broker handles one client's packets in order, so
    # after any SUBSCRIBE that was sent) must come back on every topic.
    conn = connection_factory(mosquitto, topic_prefix="race", queue_size=10_000)
    got: set[str] = set()
    lock = threading.Lock()

    def record(topic: str, _payload: bytes) -> None:
        with lock:
            got.add(topic)

    early = [f"race/early/{i}" for i in range(EARLY)]
    for topic in early:
        conn.subscribe(topic, record)
    raced: list[list[str]] = [[] for _ in range(RACERS)]
    go = threading.Barrier(RACERS + 1)

    def racer(n: int) -> None:
        go.wait()
        after = 0
        for i in range(CAP):
            topic = f"race/r{n}/{i}"
            conn.subscribe(topic, record)
            raced[n].append(topic)
            if conn.connected:
                after += 1
                if after >= AFTER:
                    return
            time.sleep(0.0005)  # pace: a few hundred subscriptions across the connect

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(RACERS)]
    for t in threads:
        t.start()
    go.wait()
    conn.start()
    for t in threads:
        t.join(30)
    conn.wait_connected(10)
    topics = [t for per_racer in raced for t in per_racer] + early[:: EARLY // 50]
    assert len(topics) > 2 * AFTER

    def missing(batch: list[str]) -> list[str]:
        with lock:
            return [t for t in batch if t not in got]

    def arrived(batch: list[str]) -> bool:
        return not missing(batch)

    # In batches, so the broker's per-client queue never overflows.
    for start in range(0, len(topics), 100):
        batch = topics[start : start + 100]
        for topic in batch:
            assert conn.publish(topic, b"x", qos=1)
        try:
            wait_until(partial(arrived, batch), timeout=10, what="messages")
        except AssertionError:
            lost = missing(batch)
            raise AssertionError(
                f"{len(lost)} subscription(s) never reached the broker, e.g. {lost[:5]}"
            ) from None
