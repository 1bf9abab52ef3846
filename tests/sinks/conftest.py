"""Fixtures of the sink tests: MQTT connections and webhook sinks with fast test timings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.core.config import MqttConfig, WebhookSinkConfig
from pipeline.net.mqtt_connection import MqttConnection
from sinks.webhook import WebhookSink
from tests.support.mosquitto import Mosquitto


@pytest.fixture
def connection_factory() -> Iterator[Callable[..., MqttConnection]]:
    made: list[MqttConnection] = []

    def factory(broker: Mosquitto, **kw: Any) -> MqttConnection:
        kw.setdefault("reconnect_max_s", 1)
        cfg = MqttConfig(host=broker.host, port=broker.port, **kw)
        conn = MqttConnection(cfg)
        made.append(conn)
        return conn

    yield factory
    for conn in made:
        conn.stop(timeout=2)


@pytest.fixture
def sink_factory(tmp_path: Path) -> Iterator[Callable[..., WebhookSink]]:
    """Open webhook sinks named ``hook`` with fast test timings; all are closed afterwards."""
    made: list[WebhookSink] = []

    def factory(url: str, **kw: Any) -> WebhookSink:
        kw.setdefault("outbox", tmp_path / "outbox.sqlite3")
        kw.setdefault("backoff_initial_s", 0.05)
        kw.setdefault("backoff_max_s", 1.0)
        kw.setdefault("connect_timeout_s", 1.0)
        kw.setdefault("read_timeout_s", 2.0)
        sink = WebhookSink("hook", WebhookSinkConfig(url=url, **kw), poll_s=0.1)
        made.append(sink)
        sink.open()
        return sink

    yield factory
    for sink in made:
        sink.close()
