"""`python -m pipeline` with three RTSP cameras and six watches, controlled and reloaded at run time.

One process, real services: Mosquitto, a GStreamer RTSP server with three mounts,
the scripted model server. Checks: every alert arrives; a watch started over MQTT
runs and alerts; an invalid one is refused on the reply topic; a reload that adds
and removes watches keeps every camera's TCP connection (same sockets, no
reconnect); metrics over HTTP carry real values; SIGTERM during a look lets the
look finish, publishes ``offline`` and exits 0.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.clips import Clip
from tests.support.model_server import Reply, ScriptedModelServer
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_recorder import MqttRecorder
from tests.support.mqtt_requester import Requester
from tests.support.ports import free_port
from tests.support.rtsp import RtspServer
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
CAMERAS = ("a", "b", "c")
SLOW = "a slow answer"


class Model:
    """Answers per condition: not met, then met; the SLOW condition answers after 4 s."""

    def __init__(self) -> None:
        self.looks: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, request: Any) -> Reply:
        system = str(request["messages"][0]["content"])
        condition = next((c for c in self.conditions if c in system), "?")
        with self.lock:
            self.looks[condition] += 1
            n = self.looks[condition]
        if condition == SLOW:
            return Reply(
                '{"condition_met": false, "next_run_in": 1, "reasoning": "Slow."}', delay=4
            )
        if n == 2:
            return Reply(
                '{"condition_met": true, "next_run_in": 5, "reasoning": "Seen.",'
                f' "notification_message": "{condition} now"}}'
            )
        return Reply('{"condition_met": false, "next_run_in": 1, "reasoning": "Not yet."}')

    conditions = (
        *(f"{x} on camera {c}" for c in CAMERAS for x in ("cat", "dog")),
        "an open gate",
        SLOW,
    )


def watch(name: str, camera: str, condition: str) -> str:
    return f"""
[[watches]]
name = "{name}"
camera = "{camera}"
condition = "{condition}"
backend = "vlm"
mode = "repeat"
quiet_period_s = 120
max_duration_minutes = 2
"""


def config_text(
    rtsp: RtspServer, broker: Mosquitto, model: ScriptedModelServer, metrics_port: int, watches: str
) -> str:
    cameras = "".join(
        f"""
[cameras.{c}]
url = "{rtsp.url(c)}"
open_timeout_s = 5
read_timeout_s = 5
"""
        for c in CAMERAS
    )
    return f"""
[mqtt]
host = "{broker.host}"
port = {broker.port}
topic_prefix = "big"
client_id = "lookout-big"
{cameras}
[backends.vlm]
type = "openai"
base_url = "{model.base_url}"
read_timeout_s = 20
retries = 0
max_concurrency = 8

[sinks.mqtt]
type = "mqtt"

[metrics]
enabled = true
port = {metrics_port}

[reload]
poll_interval_s = 0.2

[control]
enabled = true

[shutdown]
grace_s = 15
{watches}
"""


SIX = "".join(watch(f"{x}_{c}", c, f"{x} on camera {c}") for c in CAMERAS for x in ("cat", "dog"))


def rtsp_sockets(port: int) -> set[tuple[int, int]]:
    """Established TCP connections to ``port`` as (local port, remote port) of the client side."""
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port:
                out.add((int(local.rsplit(":", 1)[1], 16), port))
    return out


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            values[key] = float(value)
    return values


@pytest.mark.slow
def test_three_cameras_six_watches_control_reload_and_sigterm(
    tmp_path: Path,
    mosquitto: Mosquitto,
    rtsp_server_factory: Any,
    model_server_factory: Any,
    h264_clip: Clip,
) -> None:
    rtsp = rtsp_server_factory({c: h264_clip.path for c in CAMERAS})
    model = model_server_factory(responder=Model())
    metrics_port = free_port()
    config = tmp_path / "pipeline.toml"
    config.write_text(config_text(rtsp, mosquitto, model, metrics_port, SIX))
    recorder = MqttRecorder.under(mosquitto, "big")
    requester = Requester(mosquitto, "big/watches/reply", v5=False)
    log_path = tmp_path / "lookout.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "-c", str(config)],
            cwd=ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            # Every one of the six watches alerts.
            alert_topics = {f"big/watches/{x}_{c}/alert" for c in CAMERAS for x in ("cat", "dog")}
            recorder.wait_for(lambda ms: alert_topics <= {t for t, _, _ in ms}, 40)

            # A watch set over MQTT runs and alerts; an invalid one is refused with reasons.
            requester.wait_ready("big")
            gate = {"name": "gate", "camera": "b", "condition": "an open gate", "backend": "vlm"}
            assert requester.request("big/watches/set", gate)["ok"] is True
            bad = requester.request(
                "big/watches/set", {"name": "ghost", "camera": "z", "condition": "x"}
            )
            assert bad["ok"] is False
            assert any(p.startswith("watch.camera: unknown camera 'z'") for p in bad["problems"]), (
                bad
            )
            recorder.wait_topic("big/watches/gate/alert", 20)

            # Reload: remove a watch on c, add one on a. Every camera keeps its connection.
            wait_until(lambda: len(rtsp_sockets(rtsp.port)) == 3, 10, "three RTSP connections")
            sockets = rtsp_sockets(rtsp.port)
            before = scrape(metrics_port)
            reloaded = SIX.replace(watch("cat_c", "c", "cat on camera c"), "") + watch(
                "late", "a", SLOW
            )
            config.write_text(config_text(rtsp, mosquitto, model, metrics_port, reloaded))
            wait_until(lambda: b"reloaded:" in log_path.read_bytes(), 15, "the reload")
            recorder.wait_topic("big/watches/cat_c/state", 10, b'"cancelled"')
            wait_until(
                lambda: any(SLOW in str(r.messages[0]["content"]) for r in model.chat_requests()),
                15,
                "a look of the new watch",
            )
            after = scrape(metrics_port)
            assert rtsp_sockets(rtsp.port) == sockets, "a camera connection was replaced"
            for c in CAMERAS:
                key = f'lookout_camera_connects_total{{camera="{c}"}}'
                assert before[key] == after[key] == 1, (c, before[key], after[key])
                assert after[f'lookout_camera_reconnects_total{{camera="{c}"}}'] == 0
                assert after[f'lookout_camera_connected{{camera="{c}"}}'] == 1
                assert after[f'lookout_camera_frames_decoded_total{{camera="{c}"}}'] > 0
                # The stream kept flowing through the reload (same connection, more packets;
                # a quick reload can finish within one frame interval, so wait for the next).
                packets = f'lookout_camera_packets_total{{camera="{c}"}}'
                assert before[packets] > 0, (c, before[packets])
                wait_until(
                    lambda p=packets: scrape(metrics_port)[p] > before[p],
                    10,
                    f"more packets from camera {c} after the reload",
                )
            assert rtsp_sockets(rtsp.port) == sockets, "a camera connection was replaced"
            # The gate watch (run time) was not disturbed by the reload.
            assert after['lookout_watch_runs_total{watch="gate"}'] == 1
            assert after['lookout_watch_runs_total{watch="dog_c"}'] == 1
            for name in ("cat_a", "dog_b", "gate"):
                assert after[f'lookout_watch_alerts_total{{watch="{name}"}}'] == 1
                assert after[f'lookout_watch_looks_total{{watch="{name}",kind="met"}}'] == 1
                assert after[f'lookout_watch_look_seconds_count{{watch="{name}"}}'] >= 2
            assert after['lookout_backend_requests_total{backend="vlm"}'] >= 14
            assert after["lookout_mqtt_connected"] == 1
            assert after['lookout_control_requests_total{action="set",result="refused"}'] == 1

            # SIGTERM while the slow look is in flight: it finishes, then offline, exit 0.
            wait_until(lambda: model.in_flight >= 1, 10, "a look in flight")
            proc.send_signal(signal.SIGTERM)
            answered_before = len(recorder.payloads("big/watches/late/state"))
            assert proc.wait(timeout=30) == 0
            recorder.wait_for(
                lambda ms: any(t == "big/available" and p == b"offline" for t, p, _ in ms), 10
            )
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            requester.close()
            recorder.close()
    output = log_path.read_text()
    assert "Traceback" not in output, output
    late = [orjson.loads(p) for p in recorder.payloads("big/watches/late/state")]
    assert late[-1]["status"] == "cancelled"
    after_term = late[answered_before:]
    assert any(s["last_answer"] == "not_met" and s["status"] == "running" for s in after_term), (
        "the look in flight was dropped"
    )
    for c in CAMERAS:
        for x in ("cat", "dog"):
            alerts = recorder.payloads(f"big/watches/{x}_{c}/alert")
            assert len(alerts) == 1
            assert orjson.loads(alerts[0])["message"] == f"{x} on camera {c} now"
