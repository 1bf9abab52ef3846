"""The MQTT sink in a running App: discovery cleared for removed watches, per-sink metrics, health."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipeline.app.process import App
from pipeline.core.config_loader import load_config
from tests.support.clips import Clip
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_recorder import MqttRecorder
from tests.support.mqtt_requester import Requester
from tests.support.waiting import wait_until


def _config(clip: Clip, broker: Mosquitto, watches: list[str]) -> str:
    text = f"""
[mqtt]
host = "{broker.host}"
port = {broker.port}
topic_prefix = "ha"
reconnect_max_s = 1

[cameras.front]
url = "{clip.path}"
loop = true

[backends.vlm]
type = "none"

[sinks.mqtt]
type = "mqtt"
home_assistant = true

[metrics]
sink_failing_s = 0.5

[control]
enabled = true

[reload]
watch_file = false
"""
    for name in watches:
        text += f'\n[[watches]]\nname = "{name}"\ncamera = "front"\ncondition = "a {name}"\n'
    return text


def _config_topics(watch: str) -> list[str]:
    return [f"homeassistant/device/ha/watch_{watch}/config"]


def _metrics(app: App) -> dict[str, float]:
    out = {}
    for line in app.collect_metrics().splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def test_removed_watches_leave_home_assistant_and_metrics_count_per_sink(
    tmp_path: Path, mosquitto: Mosquitto, h264_clip: Clip, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pipeline.toml"
    path.write_text(_config(h264_clip, mosquitto, ["keep", "drop"]))
    discovery = MqttRecorder.under(mosquitto, "homeassistant")
    requester = Requester(mosquitto, "ha/watches/reply", v5=False)
    app = App(load_config(path), path)
    try:
        app.start()
        assert app.pipeline.mqtt is not None
        app.pipeline.mqtt.wait_connected(10)
        requester.wait_ready("ha")

        def cleared(watch: str) -> bool:
            got = {t: p for t, p, _ in discovery.messages if t in _config_topics(watch)}
            return len(got) == 1 and all(p == b"" for p in got.values())

        def discovered(watch: str) -> bool:
            got = {t for t, p, _ in discovery.messages if t in _config_topics(watch) and p}
            return len(got) == 1

        wait_until(
            lambda: discovered("keep") and discovered("drop"), 15, "config watches discovered"
        )

        # A run-time watch: discovered when it starts, cleared when cancelled.
        rt = {"name": "rt", "camera": "front", "condition": "a fox", "backend": "vlm"}
        assert requester.request("ha/watches/set", rt)["ok"]
        wait_until(lambda: discovered("rt"), 15, "run-time watch discovered")
        assert requester.request("ha/watches/rt/cancel", None)["ok"]
        wait_until(lambda: cleared("rt"), 10, "run-time watch discovery cleared")

        # A reload that removes a config watch clears its discovery; the kept one stays.
        path.write_text(_config(h264_clip, mosquitto, ["keep"]))
        assert app.reload("test")
        wait_until(lambda: cleared("drop"), 10, "removed watch discovery cleared")
        assert not cleared("keep")
        late = MqttRecorder.under(mosquitto, "homeassistant")
        try:
            wait_until(lambda: discovered_in(late, "keep"), 10, "retained discovery of keep")
            assert not any(t in _config_topics("drop") for t, _, _ in late.messages)
        finally:
            late.close()

        # Per-sink counters of the MQTT sink next to the connection's totals.
        assert app.pipeline.mqtt.flush(10)
        m = _metrics(app)
        assert m['lookout_sink_sent_total{sink="mqtt"}'] >= 10
        assert m['lookout_sink_dropped_total{sink="mqtt"}'] == 0
        assert m['lookout_sink_queue_depth{sink="mqtt"}'] == 0
        assert m['lookout_sink_sent_total{sink="mqtt"}'] <= m["lookout_mqtt_sent_total"]
        assert "lookout_mqtt_disconnected_since_timestamp_seconds" not in m
        assert app.health().ok

        # The broker away for longer than sink_failing_s: /healthz says so, then recovers.
        mosquitto.stop()
        wait_until(lambda: not app.health().ok, 10, "health to fail")
        assert any(p.startswith("mqtt: disconnected for") for p in app.health().problems)
        down = _metrics(app)["lookout_mqtt_disconnected_since_timestamp_seconds"]
        assert app.pipeline.started_at < down <= time.time()
        mosquitto.start()
        wait_until(lambda: app.health().ok, 20, "health to recover")
    finally:
        requester.close()
        discovery.close()
        app.stop()
    assert "Traceback" not in capsys.readouterr().err


def discovered_in(rec: MqttRecorder, watch: str) -> bool:
    got = {t for t, p, _ in rec.messages if t in _config_topics(watch) and p}
    return len(got) == 1
