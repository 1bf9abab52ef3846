"""Sink throughput: MQTT sink vs raw paho (QoS 1, local Mosquitto); webhook outbox events/s.

Run: .venv/bin/python -m benchmarks.sinks [--quick]
The last printed line is one JSON object.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from pipeline.core.config import MqttConfig, MqttSinkConfig, WebhookSinkConfig
from pipeline.core.events import Alert
from pipeline.net.mqtt_connection import MqttConnection
from sinks.mqtt import MqttSink
from sinks.webhook import WebhookSink
from tests.support.mosquitto import Mosquitto


def alerts(n: int) -> list[Alert]:
    return [
        Alert(
            event_id=f"evt-{i}",
            watch="porch",
            job_id="job-1",
            camera="front",
            condition="a package is on the porch",
            message=f"Package #{i}",
            reasoning="A brown box by the door.",
            time=1_700_000_000.0 + i,
            look_count=i,
            frame={"camera": "front", "seq": i},
        )
        for i in range(n)
    ]


def raw_paho(host: str, port: int, payloads: list[bytes]) -> float:
    done = threading.Event()
    acked = 0
    lock = threading.Lock()

    def on_publish(*args: Any) -> None:
        nonlocal acked
        with lock:
            acked += 1
            if acked == len(payloads):
                done.set()

    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-raw")
    client.max_queued_messages_set(len(payloads) + 10)
    client.on_publish = on_publish
    client.connect(host, port, 60)
    client.loop_start()
    start = time.perf_counter()
    for p in payloads:
        client.publish("bench/watches/porch/alert", p, qos=1)
    if not done.wait(120):
        raise RuntimeError("raw paho: not every message was acknowledged")
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    return len(payloads) / elapsed


def mqtt_sink(host: str, port: int, items: list[Alert]) -> float:
    cfg = MqttConfig(host=host, port=port, topic_prefix="bench", queue_size=len(items) + 10)
    conn = MqttConnection(cfg, client_id="bench-sink")
    conn.start(wait_s=10)
    assert conn.flush(10)
    base = conn.stats().sent
    sink = MqttSink("mqtt", MqttSinkConfig(), conn)
    sink.open()
    start = time.perf_counter()
    for a in items:
        sink.send_alert(a)
    if not conn.flush(120):
        raise RuntimeError("MQTT sink: not every message was acknowledged")
    elapsed = time.perf_counter() - start
    stats = conn.stats()
    assert stats.sent - base == len(items) and stats.dropped == 0, stats
    sink.close()
    conn.stop(timeout=5)
    return len(items) / elapsed


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    count = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        with _Handler.lock:
            _Handler.count += 1
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def raw_http(port: int, bodies: list[bytes]) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    start = time.perf_counter()
    for b in bodies:
        conn.request("POST", "/hook", body=b, headers={"content-type": "application/json"})
        conn.getresponse().read()
    elapsed = time.perf_counter() - start
    conn.close()
    return len(bodies) / elapsed


def outbox(port: int, items: list[Alert], folder: Path, round_no: int) -> float:
    cfg = WebhookSinkConfig(
        url=f"http://127.0.0.1:{port}/hook",
        secret="whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        outbox=folder / f"outbox-{round_no}.sqlite3",
    )
    sink = WebhookSink("hook", cfg, poll_s=0.05)
    sink.open()
    start = time.perf_counter()
    for a in items:
        sink.send_alert(a)
    deadline = time.monotonic() + 120
    while sink.stats().delivered < len(items):
        if time.monotonic() > deadline:
            raise RuntimeError("outbox: not every event was delivered")
        time.sleep(0.002)
    elapsed = time.perf_counter() - start
    sink.close()
    return len(items) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer messages and rounds")
    args = parser.parse_args()
    n_mqtt, n_hook, rounds = (2000, 500, 3) if args.quick else (20000, 3000, 5)
    items = alerts(n_mqtt)
    payloads = [a.to_json() for a in items]
    raw_rates: list[float] = []
    sink_rates: list[float] = []
    with Mosquitto() as broker:
        for _ in range(rounds):
            raw_rates.append(raw_paho(broker.host, broker.port, payloads))
            sink_rates.append(mqtt_sink(broker.host, broker.port, items))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    http_rates: list[float] = []
    box_rates: list[float] = []
    hook_items = items[:n_hook]
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            http_rates.append(raw_http(port, [a.to_json() for a in hook_items]))
            box_rates.append(outbox(port, hook_items, Path(tmp), r))
    server.shutdown()
    server.server_close()
    result = {
        "benchmark": "sinks",
        "quick": args.quick,
        "rounds": rounds,
        "mqtt_messages": n_mqtt,
        "raw_paho_msgs_per_s": round(statistics.median(raw_rates)),
        "mqtt_sink_msgs_per_s": round(statistics.median(sink_rates)),
        "mqtt_sink_vs_raw": round(statistics.median(sink_rates) / statistics.median(raw_rates), 3),
        "webhook_events": n_hook,
        "raw_http_posts_per_s": round(statistics.median(http_rates)),
        "outbox_events_per_s": round(statistics.median(box_rates)),
        "outbox_vs_raw_http": round(
            statistics.median(box_rates) / statistics.median(http_rates), 3
        ),
        "targets": {"mqtt_sink_vs_raw": 0.8, "outbox_events_per_s": 500},
    }
    print(
        f"raw paho QoS1: {result['raw_paho_msgs_per_s']} msg/s; "
        f"MQTT sink: {result['mqtt_sink_msgs_per_s']} msg/s ({result['mqtt_sink_vs_raw']}x)"
    )
    print(
        f"raw HTTP POST: {result['raw_http_posts_per_s']}/s; "
        f"outbox: {result['outbox_events_per_s']} events/s"
    )
    print(orjson.dumps(result).decode())
    sys.stdout.flush()


if __name__ == "__main__":
    main()
