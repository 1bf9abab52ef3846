"""End to end: ``python -m pipeline`` on an RTSP camera, a watch judged by the real llama-server.

The chain: GStreamer RTSP server -> Lookout (a subprocess, as users run it) -> the ``openai``
backend -> llama-server with the tiny vision model -> an alert on Mosquitto.

The model's weights are random, so its answer decides nothing useful by itself. The backend's
``extra_body`` replaces Lookout's ``response_format`` with a JSON schema whose ``condition_met`` is
``{const = true}`` and whose ``notification_message`` is a constant: llama-server turns the schema
into a grammar, and the model can only answer "met, Package on the porch". This is the documented
way to steer a model's answer (README, "Run with a real local model"); the TOML below is what a
user would write.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson

from tests.support.llama import LlamaServer
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_recorder import MqttRecorder
from tests.support.rtsp import RtspServer

ROOT = Path(__file__).resolve().parents[2]

STEERED_BACKEND = """
[backends.vlm]
type = "openai"
base_url = "{base_url}"
read_timeout_s = 30
retries = 1

# Steer the answer: extra_body is merged into every request last, so this response_format
# replaces Lookout's own. condition_met can only be true; the message is fixed.
[backends.vlm.extra_body.response_format]
type = "json_schema"

[backends.vlm.extra_body.response_format.json_schema]
name = "watch_answer"
strict = true

[backends.vlm.extra_body.response_format.json_schema.schema]
type = "object"
required = ["condition_met", "next_run_in", "reasoning", "notification_message"]
additionalProperties = false

[backends.vlm.extra_body.response_format.json_schema.schema.properties]
condition_met = {{ const = true }}
next_run_in = {{ type = "integer", minimum = 1, maximum = 30 }}
reasoning = {{ type = "string", maxLength = 60 }}
notification_message = {{ const = "Package on the porch" }}
"""


def write_config(path: Path, camera_url: str, broker: Mosquitto, server: LlamaServer) -> None:
    path.write_text(
        f"""
[mqtt]
host = "{broker.host}"
port = {broker.port}
topic_prefix = "real"
client_id = "lookout-real-llama"

[cameras.front]
url = "{camera_url}"
open_timeout_s = 5
read_timeout_s = 5
"""
        + STEERED_BACKEND.format(base_url=server.openai_base_url)
        + """
[[watches]]
name = "package"
camera = "front"
condition = "a package is on the porch"
backend = "vlm"
max_duration_minutes = 2

[sinks.mqtt]
type = "mqtt"
"""
    )


def test_rtsp_camera_to_real_llama_server_to_mqtt_alert(
    tmp_path: Path,
    mosquitto: Mosquitto,
    rtsp_server: RtspServer,
    real_llama_server: LlamaServer,
    recorder_factory: Callable[..., MqttRecorder],
) -> None:
    config = tmp_path / "pipeline.toml"
    write_config(config, rtsp_server.url("stream"), mosquitto, real_llama_server)
    assert real_llama_server.api_key  # the server demands a key: it comes from the environment
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "LOOKOUT_BACKENDS__VLM__API_KEY": real_llama_server.api_key,
    }
    recorder = recorder_factory(mosquitto, "real/#")
    log_path = tmp_path / "lookout.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "-c", str(config)],
            cwd=ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            recorder.wait_for(
                lambda ms: any(t == "real/watches/package/alert" for t, _, _ in ms), 60
            )
            recorder.wait_for(
                lambda ms: any(
                    t == "real/watches/package/state" and b'"success"' in p for t, p, _ in ms
                ),
                15,
            )
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    output = log_path.read_text()

    alerts = [orjson.loads(p) for p in recorder.payloads("real/watches/package/alert")]
    assert len(alerts) == 1, output
    alert = alerts[0]
    assert alert["watch"] == "package" and alert["camera"] == "front"
    assert alert["message"] == "Package on the porch"  # the schema's constant, from the model
    assert isinstance(alert["reasoning"], str) and len(alert["reasoning"]) <= 60
    # One answered look; a first look before the RTSP session was up may have found no frame.
    assert alert["look_count"] in (1, 2), alert
    assert alert["frame"]["camera"] == "front"
    states = [orjson.loads(p) for p in recorder.payloads("real/watches/package/state")]
    assert states[-1]["status"] == "success"
    assert states[-1]["notification_message"] == "Package on the porch"

    # Lookout found the real server's model and its vision, and never logged the key.
    assert "takes images" in output, output
    assert real_llama_server.api_key not in output
    assert "Traceback" not in output
    # The real server answered the look (its own log shows the prompt evaluated).
    server_log = real_llama_server.log_path.read_text()
    assert "prompt eval time" in server_log
