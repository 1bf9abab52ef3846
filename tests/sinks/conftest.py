"""Helpers for sink tests: a raw paho subscriber that records messages, alert factories."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from pipeline.core.config import MqttConfig, WebhookSinkConfig
from pipeline.core.events import Alert, WatchState
from pipeline.net.mqtt_connection import MqttConnection
from sinks.webhook import WebhookSink
from tests.support.mosquitto import Mosquitto
from tests.support.ports import free_port


def make_alert(n: int = 1, watch: str = "porch", camera: str = "front", **kw: Any) -> Alert:
    fields: dict[str, Any] = {
        "event_id": f"evt-{n}",
        "watch": watch,
        "job_id": "job-1",
        "camera": camera,
        "condition": "a package is on the porch",
        "message": f"Package #{n}",
        "reasoning": "A brown box by the door.",
        "time": 1_700_000_000.0 + n,
        "look_count": n,
        "frame": {"camera": camera, "seq": n},
    }
    fields.update(kw)
    return Alert(**fields)


def make_state(watch: str = "porch", **kw: Any) -> WatchState:
    return WatchState(id="job-1", name=watch, camera="front", condition="a package", **kw)


def wait_until(pred: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class Recorder:
    """A plain paho client subscribed to ``topic`` that records (topic, payload, retain)."""

    def __init__(
        self,
        host: str,
        port: int,
        topic: str = "#",
        *,
        client_id: str = "",
        clean: bool = True,
        qos: int = 1,
    ) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.topic = topic
        self.qos = qos
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean,
        )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.reconnect_delay_set(1, 1)
        self.client.connect(host, port, 30)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError("recorder did not subscribe")

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        client.subscribe(self.topic, self.qos)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def on(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t == topic]

    def last(self, topic: str) -> bytes | None:
        got = self.on(topic)
        return got[-1] if got else None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def recorder_factory() -> Iterator[Callable[..., Recorder]]:
    made: list[Recorder] = []

    def factory(broker: Mosquitto, topic: str = "#", **kw: Any) -> Recorder:
        rec = Recorder(broker.host, broker.port, topic, **kw)
        made.append(rec)
        return rec

    yield factory
    for rec in made:
        rec.close()


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


# ---------------------------------------------------------------- webhook receiver


@dataclass
class Reply:
    """One scripted answer: status, headers, a delay before answering.

    ``dribble_s``: send the headers at once, then a 64-byte body one byte every
    ``dribble_s`` seconds (each read gets a byte; only a total deadline ends it).
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    dribble_s: float = 0.0


@dataclass(frozen=True)
class Received:
    at: float
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


class WebhookReceiver:
    """A real HTTP/1.1 server on loopback that answers from a script and records requests.

    ``script`` answers are used in order, then ``default``. ``stop()`` and
    ``start()`` keep the port, so tests can take the receiver down and up.
    """

    def __init__(self, script: list[Reply] | None = None, port: int | None = None) -> None:
        self.script = list(script or [])
        self.default = Reply()
        self.requests: list[Received] = []
        self.port = port or free_port()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _next(self) -> Reply:
        with self._lock:
            return self.script.pop(0) if self.script else self.default

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with receiver._lock:
                    receiver._conns.add(self.connection)

            def finish(self) -> None:
                with receiver._lock:
                    receiver._conns.discard(self.connection)
                with contextlib.suppress(OSError):
                    super().finish()

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                reply = receiver._next()
                if reply.delay_s and receiver._release.wait(reply.delay_s):
                    return
                with receiver._lock:
                    receiver.requests.append(
                        Received(
                            time.monotonic(),
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            reply.status,
                        )
                    )
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                body = b"ok" if not reply.dribble_s else b"o" * 64
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                if not reply.dribble_s:
                    self.wfile.write(body)
                    return
                self.close_connection = True
                for i in range(len(body)):
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()
                    if receiver._release.wait(reply.dribble_s):
                        return

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._release.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._release.set()
        self._server.shutdown()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = None

    def ok(self) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def all(self) -> list[Received]:
        with self._lock:
            return list(self.requests)


@pytest.fixture
def receiver_factory() -> Iterator[Callable[..., WebhookReceiver]]:
    made: list[WebhookReceiver] = []

    def factory(
        script: list[Reply] | None = None, *, start: bool = True, **kw: Any
    ) -> WebhookReceiver:
        rec = WebhookReceiver(script, **kw)
        made.append(rec)
        return rec.start() if start else rec

    yield factory
    for rec in made:
        rec.stop()


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
