from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from pipeline.core.config import MqttConfig, MqttSinkConfig, MqttTlsConfig
from pipeline.net.mqtt_connection import MqttConnection, MqttTlsError
from sinks.mqtt import MqttSink
from tests.support.certs import Certs, make_certs
from tests.support.events import make_alert
from tests.support.mosquitto import Mosquitto, TlsListener
from tests.support.mqtt_recorder import MqttRecorder
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def test_broker_sigkill_mid_stream_loses_no_alert(
    mosquitto_factory: Callable[..., Mosquitto],
    recorder_factory: Callable[..., MqttRecorder],
    connection_factory: Callable[..., MqttConnection],
) -> None:
    broker = mosquitto_factory(persistence=True, extra_config=["autosave_on_changes true"])
    rec = recorder_factory(
        broker, "lookout/watches/+/alert", client_id="alert-sub", clean=False, qos=1
    )
    conn = connection_factory(broker, queue_size=10_000)
    conn.start(wait_s=10)
    sink = MqttSink("mqtt", MqttSinkConfig(), conn)
    total = 300
    killed = threading.Event()

    def kill_and_restart() -> None:
        broker.kill()
        killed.set()
        time.sleep(0.5)
        broker.start()

    with sink:
        for n in range(total):
            sink.send_alert(make_alert(n))
            if n == total // 2:
                threading.Thread(target=kill_and_restart, daemon=True).start()
            time.sleep(0.002)
    assert killed.wait(10)
    wait_until(lambda: conn.stats().connects >= 2, timeout=20, what="publisher reconnect")
    assert conn.flush(20)
    topic = "lookout/watches/porch/alert"
    wait_until(
        lambda: len({orjson.loads(p)["event_id"] for p in rec.payloads(topic)}) == total,
        timeout=20,
        what=f"all {total} alerts",
    )
    ids = [orjson.loads(p)["event_id"] for p in rec.payloads(topic)]
    assert set(ids) == {f"evt-{n}" for n in range(total)}
    assert conn.stats().dropped == 0


def test_outage_longer_than_queue_is_bounded_and_counted(
    mosquitto: Mosquitto,
    recorder_factory: Callable[..., MqttRecorder],
    connection_factory: Callable[..., MqttConnection],
) -> None:
    conn = connection_factory(mosquitto, queue_size=50)
    conn.start(wait_s=10)
    sink = MqttSink("mqtt", MqttSinkConfig(), conn)
    mosquitto.stop()
    wait_until(lambda: not conn.connected, what="disconnect")
    with sink:
        for n in range(500):
            sink.send_alert(make_alert(n))
    stats = conn.stats()
    assert stats.queued <= 50
    assert stats.dropped == 500 - stats.queued
    mosquitto.start()
    rec = recorder_factory(mosquitto, "lookout/watches/+/alert")
    wait_until(lambda: conn.connected, timeout=15, what="reconnect")
    assert conn.flush(10)
    assert conn.stats().sent >= stats.queued
    del rec


def test_kill_9_publishes_offline_by_last_will_and_restart_online(
    mosquitto: Mosquitto, recorder_factory: Callable[..., MqttRecorder]
) -> None:
    rec = recorder_factory(mosquitto, "lookout/available")

    def child() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.sinks.mqtt_child", mosquitto.host, str(mosquitto.port)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )

    for _ in range(2):
        proc = child()
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "connected"
            wait_until(lambda: rec.last("lookout/available") == b"online", what="online")
        finally:
            proc.kill()
            proc.wait(10)
            assert proc.stdout is not None
            proc.stdout.close()
        wait_until(lambda: rec.last("lookout/available") == b"offline", what="offline (will)")
    late = recorder_factory(mosquitto, "lookout/available")
    wait_until(lambda: late.messages != [], what="retained availability")
    assert late.messages[-1] == ("lookout/available", b"offline", True)


def _tls_broker(
    factory: Callable[..., Mosquitto], certs: Certs, require_certificate: bool
) -> Mosquitto:
    listener = TlsListener(
        cafile=certs.ca,
        certfile=certs.server_cert,
        keyfile=certs.server_key,
        require_certificate=require_certificate,
    )
    return factory(tls=listener)


def test_tls_with_client_certificate_works(
    mosquitto_factory: Callable[..., Mosquitto], certs: Certs
) -> None:
    broker = _tls_broker(mosquitto_factory, certs, require_certificate=True)
    assert broker.tls_port is not None
    tls = MqttTlsConfig(ca_file=certs.ca, cert_file=certs.client_cert, key_file=certs.client_key)
    conn = MqttConnection(MqttConfig(host=broker.host, port=broker.tls_port, tls=tls, protocol="5"))
    conn.start(wait_s=10)
    try:
        conn.publish("lookout/x", b"over tls")
        assert conn.flush(10)
        assert conn.stats().sent >= 1
    finally:
        conn.stop(timeout=5)


def test_tls_wrong_ca_fails_closed(
    mosquitto_factory: Callable[..., Mosquitto], certs: Certs
) -> None:
    broker = _tls_broker(mosquitto_factory, certs, require_certificate=False)
    assert broker.tls_port is not None
    conn = MqttConnection(
        MqttConfig(
            host=broker.host, port=broker.tls_port, tls=MqttTlsConfig(ca_file=certs.other_ca)
        )
    )
    started = time.monotonic()
    with pytest.raises(MqttTlsError, match=r"^mqtt\.tls\.ca_file: .*not trusted"):
        conn.start(wait_s=5)
    assert time.monotonic() - started < 6
    assert not conn.connected
    assert conn.stats().connects == 0


def test_tls_missing_client_certificate_fails_closed(
    mosquitto_factory: Callable[..., Mosquitto], certs: Certs
) -> None:
    broker = _tls_broker(mosquitto_factory, certs, require_certificate=True)
    assert broker.tls_port is not None
    conn = MqttConnection(
        MqttConfig(host=broker.host, port=broker.tls_port, tls=MqttTlsConfig(ca_file=certs.ca))
    )
    with pytest.raises(MqttTlsError, match=r"cert_file"):
        conn.start(wait_s=5)
    assert conn.stats().connects == 0


def test_tls_plain_port_is_not_a_fallback(mosquitto: Mosquitto, certs: Certs) -> None:
    conn = MqttConnection(
        MqttConfig(host=mosquitto.host, port=mosquitto.port, tls=MqttTlsConfig(ca_file=certs.ca))
    )
    with pytest.raises(MqttTlsError, match="TLS"):
        conn.start(wait_s=5)
    assert conn.stats().connects == 0


def test_tls_missing_file_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(MqttTlsError, match=r"mqtt\.tls\.ca_file: file .* does not exist"):
        MqttConnection(MqttConfig(tls=MqttTlsConfig(ca_file=tmp_path / "nope.pem")))
