"""[frigate]: cameras and zones from Frigate's /api/config (a real local HTTP server), and a watch
that names only Frigate's camera and zones, woken by Frigate's review and event messages."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from pipeline.app.frigate_setup import FrigateUnavailable, frigate_cameras, resolve_frigate
from pipeline.core.config import FrigateConfig, FrigateDetectConfig
from pipeline.core.config_loader import ConfigError, load_config_text
from tests.support import frigate_payloads as fp
from tests.support.frigate_api import FrigateApi, sample_config
from tests.support.model_server import Reply, ScriptedModelServer
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_recorder import MqttRecorder, publish
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def frigate() -> Iterator[FrigateApi]:
    with FrigateApi(sample_config(prefix="nvr")) as api:
        yield api


def config_text(frigate_url: str, zones: str = '["front_yard"]', mqtt_port: int = 1883) -> str:
    return f"""
[frigate]
url = "{frigate_url}"

[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
topic_prefix = "lookout"

[cameras.porch]
url = "rtsp://127.0.0.1:9/porch"

[[watches]]
name = "visitor"
camera = "front_cam"
condition = "someone is at the front door"
labels = ["person"]
zones = {zones}
"""


def test_cameras_zones_and_detect_size_come_from_frigate() -> None:
    cams = frigate_cameras(sample_config(prefix="nvr"), FrigateConfig(url="https://nvr.lan:8971"))
    assert sorted(cams) == ["front_cam", "garage"]  # the disabled camera is left out
    front = cams["front_cam"]
    assert front.url == "frigate://nvr.lan:8971/front_cam?tls=1"
    assert sorted(front.zones) == ["front_yard", "street"]
    assert front.zones["street"].points[0] == (0.0, 0.2)
    assert front.zones["front_yard"].inertia == 1
    assert isinstance(front.detect, FrigateDetectConfig)
    assert (front.detect.topic_prefix, front.detect.camera) == ("nvr", "front_cam")
    assert (front.detect.detect_width, front.detect.detect_height) == (1280, 720)
    only = FrigateConfig(url="http://nvr.lan:5000", cameras=["garage"], snapshot_height=360)
    assert list(frigate_cameras(sample_config(), only)) == ["garage"]
    assert frigate_cameras(sample_config(), only)["garage"].url.endswith("/garage?h=360")


def test_a_watch_naming_only_frigate_camera_and_zones_is_resolved(frigate: FrigateApi) -> None:
    cfg = load_config_text(config_text(frigate.url))
    assert "front_cam" not in cfg.cameras  # not known before Frigate is asked
    resolved = resolve_frigate(cfg, wait=False)
    assert sorted(resolved.cameras) == ["front_cam", "garage", "porch"]
    assert resolved.cameras["porch"].url == "rtsp://127.0.0.1:9/porch"  # declared wins
    assert "/api/config" in frigate.requests


def test_an_unknown_zone_names_the_key_and_frigate_cameras(frigate: FrigateApi) -> None:
    cfg = load_config_text(config_text(frigate.url, zones='["backyard"]'))
    with pytest.raises(ConfigError) as err:
        resolve_frigate(cfg, wait=False)
    (problem,) = err.value.problems
    assert problem.path == "watches[0].zones"
    assert "backyard" in problem.message and "Frigate cameras: front_cam, garage" in problem.message


def test_frigate_needs_mqtt() -> None:
    with pytest.raises(ConfigError, match="frigate: needs an \\[mqtt\\] table"):
        load_config_text('[frigate]\nurl = "http://127.0.0.1:5000"\n[cameras.a]\nurl = "a.mp4"\n')


def test_frigate_down(frigate: FrigateApi) -> None:
    frigate.status = 503
    cfg = load_config_text(config_text(frigate.url))
    with pytest.raises(FrigateUnavailable, match=r"frigate\.url: /api/config answered HTTP 503"):
        resolve_frigate(cfg, wait=False)
    declared = load_config_text(
        config_text(frigate.url)
        .replace('camera = "front_cam"', 'camera = "porch"')
        .replace('zones = ["front_yard"]', "zones = []")
    )
    assert resolve_frigate(declared, wait=False) is declared  # nothing needs Frigate's cameras


def test_check_command_asks_frigate(frigate: FrigateApi, tmp_path: Path) -> None:
    config = tmp_path / "pipeline.toml"
    config.write_text(config_text(frigate.url))
    ok = subprocess.run(
        [sys.executable, "-m", "pipeline", "check", "-c", str(config)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "3 cameras, 1 watches" in ok.stdout
    frigate.status = 500
    bad = subprocess.run(
        [sys.executable, "-m", "pipeline", "check", "-c", str(config)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip().endswith("frigate.url: /api/config answered HTTP 500")
    assert len(bad.stderr.strip().splitlines()) == 1


def wait_for_looks(
    model: ScriptedModelServer, n: int, poke: bytes, topic: str, broker: Mosquitto
) -> None:
    """Publish ``poke`` every half second until the model has had ``n`` looks (30 s at most)."""

    def looked() -> bool:
        if len(model.chat_requests()) >= n:
            return True
        if poke:
            publish(broker, {topic: poke})
        return False

    wait_until(looked, 30, lambda: f"{n} looks; got {len(model.chat_requests())}", interval=0.5)


def test_frigate_watch_woken_by_a_review_and_an_event(
    frigate: FrigateApi, mosquitto: Mosquitto, model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    quiet = '{"condition_met": false, "next_run_in": 300, "reasoning": "Nobody there."}'
    model_server.push(
        Reply(quiet),
        Reply(quiet),
        Reply(
            '{"condition_met": true, "next_run_in": 5, "reasoning": "A man at the door.", '
            '"notification_message": "Someone at the front door"}'
        ),
    )
    config = tmp_path / "pipeline.toml"
    config.write_text(
        config_text(frigate.url, mqtt_port=mosquitto.port)
        + f"""
[backends.vlm]
type = "openai"
base_url = "{model_server.base_url}"
retries = 0

[sinks.mqtt]
type = "mqtt"
"""
    )
    recorder = MqttRecorder.under(mosquitto, "lookout")
    log_path = tmp_path / "lookout.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "-c", str(config)],
            cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        try:
            wait_for_looks(model_server, 1, b"", "", mosquitto)  # the first look, on start
            review = fp.dumps(fp.review(objects=["person"], sub_labels=[], zones=["front_yard"]))
            wait_for_looks(model_server, 2, review, "nvr/reviews", mosquitto)
            event = fp.dumps(fp.event(camera="front_cam", current_zones=["front_yard"]))
            wait_for_looks(model_server, 3, event, "nvr/events", mosquitto)
            alert = recorder.wait_topic("lookout/watches/visitor/alert", 30)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            recorder.close()
    output = log_path.read_text()
    assert orjson.loads(alert)["message"] == "Someone at the front door", output
    assert orjson.loads(alert)["camera"] == "front_cam"
    assert any(p.startswith("/api/front_cam/latest.jpg") for p in frigate.requests), output
    assert len(model_server.chat_requests()) == 3, output
