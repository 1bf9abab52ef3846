"""End to end: `python -m pipeline` on RTSP + scripted model + Mosquitto, checked over MQTT."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
from PIL import Image

from tests.support.model_server import Reply, ScriptedModelServer
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_recorder import MqttRecorder
from tests.support.rtsp import RtspServer

ROOT = Path(__file__).resolve().parents[2]


def write_config(
    path: Path, camera_url: str, broker: Mosquitto, model: ScriptedModelServer
) -> None:
    path.write_text(
        f"""
[mqtt]
host = "{broker.host}"
port = {broker.port}
topic_prefix = "e2e"
client_id = "lookout-e2e"

[cameras.front]
url = "{camera_url}"
open_timeout_s = 5
read_timeout_s = 5

[backends.vlm]
type = "openai"
base_url = "{model.base_url}"
read_timeout_s = 10
retries = 0

[[watches]]
name = "package"
camera = "front"
condition = "a package is on the porch"
labels = ["package"]
backend = "vlm"
max_duration_minutes = 2

[sinks.console]
type = "console"

[sinks.mqtt]
type = "mqtt"
"""
    )


def test_pipeline_alerts_over_mqtt_from_an_rtsp_camera(
    tmp_path: Path,
    mosquitto: Mosquitto,
    rtsp_server: RtspServer,
    model_server: ScriptedModelServer,
) -> None:
    model_server.push(
        Reply('{"condition_met": false, "next_run_in": 1, "reasoning": "The porch is empty."}'),
        Reply(
            'I think so.\n```json\n{"condition_met": false, "next_run_in": "1", "reasoning": "A courier walks up.",}\n```'
        ),
        Reply(
            '<think>box by the door</think>{"condition_met": true, "next_run_in": 5, '
            '"reasoning": "A brown box lies by the door.", "notification_message": "Package on the porch"}'
        ),
    )
    config = tmp_path / "pipeline.toml"
    write_config(config, rtsp_server.url("stream"), mosquitto, model_server)
    recorder = MqttRecorder.under(mosquitto, "e2e")
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
            recorder.wait_for(
                lambda ms: any(t == "e2e/watches/package/alert" for t, _, _ in ms), 60
            )
            recorder.wait_for(
                lambda ms: any(
                    t == "e2e/watches/package/state" and b'"success"' in p for t, p, _ in ms
                ),
                15,
            )
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            recorder.wait_for(
                lambda ms: any(t == "e2e/available" and p == b"offline" for t, p, _ in ms), 10
            )
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            recorder.close()
    output = log_path.read_text()

    # The alert carries the baseline's fields.
    alerts = [orjson.loads(p) for p in recorder.payloads("e2e/watches/package/alert")]
    assert len(alerts) == 1, output
    alert = alerts[0]
    assert alert["watch"] == "package"
    assert alert["camera"] == "front"
    assert alert["condition"] == "a package is on the porch"
    assert alert["message"] == "Package on the porch"
    assert alert["reasoning"] == "A brown box lies by the door."
    # Three answered looks; a first look before the RTSP session was up may have found no frame.
    assert alert["look_count"] in (3, 4)
    assert alert["event_id"] and alert["job_id"]
    assert alert["frame"]["camera"] == "front"

    # The state sequence: queued -> running (after each look) -> success.
    states = [orjson.loads(p) for p in recorder.payloads("e2e/watches/package/state")]
    statuses = [s["status"] for s in states]
    assert statuses[0] in ("queued", "running")
    assert statuses[-1] == "success", statuses
    assert "running" in statuses
    final = states[-1]
    assert final["iterations"] == alert["look_count"]
    assert final["notification_message"] == "Package on the porch"
    assert final["labels"] == ["package"]
    assert final["id"] == alert["job_id"]
    assert final["end_time"] is not None
    iterations = [s["iterations"] for s in states]
    assert iterations == sorted(iterations)

    # Availability: online while running, offline after SIGTERM (retained).
    available = recorder.payloads("e2e/available")
    assert available[0] == b"online"
    assert available[-1] == b"offline"

    # The model saw the baseline prompt and a real JPEG at most 480 px high, with history.
    chats = model_server.chat_requests()
    assert len(chats) == 3
    first, last = chats[0].messages, chats[-1].messages
    assert first[0]["role"] == "system"
    assert "a package is on the porch" in first[0]["content"]
    assert "next_run_in" in first[0]["content"]
    assert len(last) == 1 + 2 * 2 + 1, "system + two earlier pairs + the current turn"
    url = chats[0].image_urls()[0]
    assert url.startswith("data:image/jpeg;base64,")
    jpeg_path = tmp_path / "judged.jpg"
    jpeg_path.write_bytes(base64.b64decode(url.split(",", 1)[1]))
    with Image.open(jpeg_path) as image:
        assert image.format == "JPEG"
        assert image.height <= 480
    assert "Frame captured at" in str(first[-1]["content"])

    # The console sink printed the alert too.
    assert "Package on the porch" in output
    assert "Traceback" not in output
