"""Smoke tests of the real-service test infrastructure in ``tests/support``."""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.client import RemoteDisconnected
from pathlib import Path
from typing import Any

import av
import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.clips import Clip, make_clip
from tests.support.model_server import Drop, Hang, Reply, ScriptedModelServer, Status
from tests.support.mosquitto import Mosquitto
from tests.support.ports import free_port, port_open, wait_for_port
from tests.support.rtsp import AV_OPTIONS, RtspServer

ROOT = Path(__file__).resolve().parents[1]
# Probe only 0.5 s of stream on open (FFmpeg's default analyzeduration makes it ~2.7 s).
FAST_AV_OPTIONS = {**AV_OPTIONS, "analyzeduration": "500000"}

pytestmark = pytest.mark.timeout(60)


# -- helpers -----------------------------------------------------------------


@contextmanager
def mqtt_client(
    broker: Mosquitto, *, username: str | None = None, password: str | None = None
) -> Iterator[tuple[mqtt.Client, Any]]:
    """Connect a paho 2.x client (loop thread running); yield it and its CONNACK reason code."""
    connected = threading.Event()
    result: dict[str, Any] = {}

    def on_connect(
        client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        result["rc"] = reason_code
        connected.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.on_connect = on_connect
    if username is not None:
        client.username_pw_set(username, password)
    client.connect(broker.host, broker.port, keepalive=10)
    client.loop_start()
    try:
        assert connected.wait(5), "no CONNACK within 5 s"
        yield client, result["rc"]
    finally:
        client.disconnect()
        client.loop_stop()


def read_frames(url: str, count: int, timeout: float = 8.0) -> list[av.VideoFrame]:
    """Decode ``count`` frames from ``url`` over TCP within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    frames: list[av.VideoFrame] = []
    with av.open(url, options=FAST_AV_OPTIONS) as container:
        for frame in container.decode(video=0):
            frames.append(frame)
            if len(frames) >= count or time.monotonic() > deadline:
                break
    return frames


def http(
    method: str, url: str, body: Any = None, timeout: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    """Make one HTTP request with urllib; return status, headers, body (also for 4xx/5xx)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, dict(err.headers), err.read()


def chat(server: ScriptedModelServer, text: str = "hi", timeout: float = 5.0) -> Any:
    """POST a minimal chat request; return (status, headers, parsed-or-raw body)."""
    status, headers, raw = http(
        "POST",
        f"{server.base_url}/chat/completions",
        {"model": "m", "messages": [{"role": "user", "content": text}]},
        timeout=timeout,
    )
    try:
        return status, headers, json.loads(raw)
    except ValueError:
        return status, headers, raw


# -- ports -------------------------------------------------------------------


def test_free_port_is_bindable_and_wait_for_port_times_out() -> None:
    port = free_port()
    assert not port_open("127.0.0.1", port)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        wait_for_port("127.0.0.1", port, timeout=0.3)
    assert time.monotonic() - started < 2


# -- Mosquitto ---------------------------------------------------------------


def test_mosquitto_publish_and_receive(mosquitto: Mosquitto) -> None:
    received: list[tuple[str, bytes, int]] = []
    got = threading.Event()

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        received.append((message.topic, bytes(message.payload), message.qos))
        got.set()

    with mqtt_client(mosquitto) as (sub, rc), mqtt_client(mosquitto) as (pub, rc2):
        assert not rc.is_failure and not rc2.is_failure
        sub.on_message = on_message
        subscribed = threading.Event()
        sub.on_subscribe = lambda *args: subscribed.set()
        sub.subscribe("lookout/test/#", qos=1)
        assert subscribed.wait(5)
        info = pub.publish("lookout/test/a", b"hello", qos=1)
        info.wait_for_publish(timeout=5)
        assert got.wait(5)
    assert received == [("lookout/test/a", b"hello", 1)]
    assert mosquitto.host == "127.0.0.1"


def test_mosquitto_persistence_survives_restart_on_same_port(
    mosquitto_factory: Callable[..., Mosquitto],
) -> None:
    broker = mosquitto_factory(persistence=True)
    port = broker.port
    with mqtt_client(broker) as (pub, _):
        pub.publish("lookout/state", b"kept", qos=1, retain=True).wait_for_publish(timeout=5)
    broker.restart()  # SIGTERM saves the database
    assert broker.port == port and broker.running
    got = threading.Event()
    payloads: list[bytes] = []

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        payloads.append(bytes(message.payload))
        got.set()

    with mqtt_client(broker) as (sub, _):
        sub.on_message = on_message
        sub.subscribe("lookout/state", qos=1)
        assert got.wait(5)
    assert payloads == [b"kept"]
    assert (broker.workdir / "mosquitto.db").is_file()
    broker.kill()
    assert not broker.running and not port_open(broker.host, port)


def test_mosquitto_password_file(mosquitto_factory: Callable[..., Mosquitto]) -> None:
    broker = mosquitto_factory(users={"alice": "s3cret"})
    with mqtt_client(broker, username="alice", password="wrong") as (_, rc):
        assert rc.is_failure
    with mqtt_client(broker) as (_, rc):
        assert rc.is_failure  # anonymous is off when users are given
    with mqtt_client(broker, username="alice", password="s3cret") as (_, rc):
        assert not rc.is_failure


# -- clips -------------------------------------------------------------------


def test_make_clip_ground_truth_and_determinism(tmp_path: Path) -> None:
    kwargs: dict[str, Any] = {"seconds": 2.0, "fps": 10, "shapes": [(0.5, 1.0, (40, 40, 100, 100))]}
    clip = make_clip(tmp_path / "a.mp4", **kwargs)
    again = make_clip(tmp_path / "b.mp4", **kwargs)
    assert clip.path.read_bytes() == again.path.read_bytes()
    assert clip.frames_with_shape() == [5, 6, 7, 8, 9]
    assert clip.boxes[5] == ((40, 40, 100, 100),)
    with av.open(str(clip.path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = list(container.decode(stream))
    assert [f.key_frame for f in frames].count(True) == 2  # gop 10
    assert frames[0].format.name == "yuv420p" and (frames[0].width, frames[0].height) == (320, 240)
    bright = [int(np.asarray(f.to_ndarray(format="gray"))[70, 70] > 200) for f in frames]
    assert bright == [0] * 5 + [1] * 5 + [0] * 10


def test_clip_factory_and_session_clip(clip_factory: Callable[..., Clip], h264_clip: Clip) -> None:
    clip = clip_factory(seconds=1.0, width=160, height=120)
    assert clip.path.is_file() and clip.frame_count == 10
    assert h264_clip.frame_count == 40 and h264_clip.frames_with_shape()[0] == 10


# -- RTSP --------------------------------------------------------------------


def test_rtsp_serves_decodable_frames_over_tcp(rtsp_server: RtspServer) -> None:
    assert rtsp_server.url() == f"rtsp://127.0.0.1:{rtsp_server.port}/stream"
    frames = read_frames(rtsp_server.url("stream"), 5)
    assert len(frames) >= 5
    assert (frames[0].width, frames[0].height) == (320, 240)


def test_rtsp_auth_rejects_wrong_password(
    rtsp_server_factory: Callable[..., RtspServer], h264_clip: Clip
) -> None:
    server = rtsp_server_factory({"cam": h264_clip.path}, user="viewer", password="p@ss:word")
    for url in (server.url("cam"), server.url("cam", "viewer", "nope")):
        with pytest.raises(av.error.FFmpegError, match="401"):
            av.open(url, options=FAST_AV_OPTIONS)
    assert "p%40ss%3Aword@" in server.auth_url("cam")
    assert len(read_frames(server.auth_url("cam"), 5)) >= 5


def test_rtsp_mounts_shared_clients_and_restart(
    rtsp_server_factory: Callable[..., RtspServer], clip_factory: Callable[..., Clip]
) -> None:
    small = clip_factory("small.mp4", seconds=2.0, width=160, height=120)
    big = clip_factory("big.mp4", seconds=2.0, width=320, height=240)
    server = rtsp_server_factory({"a": small.path, "b": big.path}, key_int_max=5)
    results: dict[str, list[av.VideoFrame]] = {}

    def reader(key: str, mount: str) -> None:
        results[key] = read_frames(server.url(mount), 5)

    threads = [
        threading.Thread(target=reader, args=(key, mount))
        for key, mount in (("a1", "a"), ("a2", "a"), ("b1", "b"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert {k: len(v) >= 5 for k, v in results.items()} == {"a1": True, "a2": True, "b1": True}
    assert results["a1"][0].width == 160 and results["b1"][0].width == 320

    port = server.port
    server.kill()
    assert not port_open("127.0.0.1", port)  # type: ignore[arg-type]
    with pytest.raises(av.error.FFmpegError):
        av.open(server.url("a"), options=FAST_AV_OPTIONS)
    server.restart()
    assert server.port == port
    assert len(read_frames(server.url("b"), 5)) >= 5


# -- scripted model server ---------------------------------------------------


def test_model_server_metadata_endpoints(
    model_server_factory: Callable[..., ScriptedModelServer],
) -> None:
    server = model_server_factory(model_id="tiny-vlm", vision=False)
    assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
    status, _, body = http("GET", f"{server.base_url}/models")
    assert status == 200 and json.loads(body)["data"][0]["id"] == "tiny-vlm"
    status, _, body = http("GET", f"{server.root_url}/props")
    assert json.loads(body)["modalities"]["vision"] is False
    assert http("GET", f"{server.root_url}/health")[0] == 200
    server.healthy = False
    assert http("GET", f"{server.root_url}/health")[0] == 503
    assert http("GET", f"{server.root_url}/nope")[0] == 404
    assert [r.path for r in server.requests] == [
        "/v1/models",
        "/props",
        "/health",
        "/health",
        "/nope",
    ]


def test_model_server_scripted_steps_in_order(model_server: ScriptedModelServer) -> None:
    model_server.push(
        Reply('{"condition_met": true}'),
        Status(429, headers={"Retry-After": "2"}),
        Status(503, body="overloaded"),
        Reply("```json\n{}\n```"),
    )
    status, _, body = chat(model_server, "one")
    assert status == 200
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": '{"condition_met": true}',
    }
    status, headers, body = chat(model_server, "two")
    assert status == 429 and headers["Retry-After"] == "2" and "error" in body
    status, _, body = chat(model_server, "three")
    assert (status, body) == (503, b"overloaded")
    assert chat(model_server)[2]["choices"][0]["message"]["content"] == "```json\n{}\n```"
    default = json.loads(chat(model_server)[2]["choices"][0]["message"]["content"])
    assert default == {"condition_met": False, "next_run_in": 5, "reasoning": "nothing yet"}
    recorded = model_server.chat_requests()
    assert [r.messages[0]["content"] for r in recorded[:3]] == ["one", "two", "three"]
    assert recorded[0].headers["content-type"] == "application/json"
    assert model_server.max_concurrency == 1  # one request after another
    assert all(a.time <= b.time for a, b in itertools.pairwise(recorded))


def test_model_server_drop_and_hang(model_server: ScriptedModelServer) -> None:
    model_server.push(Drop(), Hang(3.0), Reply("after"))
    with pytest.raises((RemoteDisconnected, ConnectionError, urllib.error.URLError)):
        chat(model_server)
    started = time.monotonic()
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        chat(model_server, timeout=0.5)
    assert time.monotonic() - started < 2
    assert chat(model_server)[2]["choices"][0]["message"]["content"] == "after"
    assert len(model_server.wait_for_chat_requests(3, timeout=1)) == 3


def test_model_server_concurrency_and_responder(
    model_server_factory: Callable[..., ScriptedModelServer],
) -> None:
    def responder(request: Any) -> Reply:
        return Reply(f"echo {request['messages'][0]['content']}", delay=0.4)

    server = model_server_factory(responder=responder)
    answers: dict[int, str] = {}

    def call(i: int) -> None:
        answers[i] = chat(server, str(i))[2]["choices"][0]["message"]["content"]

    threads = [threading.Thread(target=call, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert answers == {0: "echo 0", 1: "echo 1", 2: "echo 2"}
    assert server.max_concurrency == 3
    assert server.in_flight == 0


def test_model_server_runs_as_a_subprocess(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"model": "sub", "steps": [{"reply": "scripted"}]}))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.model_server",
            "--port",
            "0",
            "--script",
            str(script),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # bounded by the test timeout
        assert line.startswith("READY ")
        port = int(line.split()[1])
        status, _, raw = http(
            "POST", f"http://127.0.0.1:{port}/v1/chat/completions", {"messages": []}
        )
        assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"] == "scripted"
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0
