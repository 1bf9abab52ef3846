"""Prometheus text, the metrics HTTP server, and real values scraped from a running pipeline."""

from __future__ import annotations

import http.client
import platform
import re
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline import __version__
from pipeline.app import prometheus
from pipeline.app.process import App
from pipeline.app.prometheus import Health, Histogram, MetricsServer, MetricsText, format_labels
from pipeline.core.config_loader import load_config
from tests.support.clips import Clip
from tests.support.model_server import Reply
from tests.support.waiting import wait_until


def test_text_format_families_and_escaping() -> None:
    t = MetricsText()
    t.add("a_total", "counter", "A.", [({"x": 'q"\\\n'}, 2), ({}, 0.5)])
    t.add("b", "gauge", "B.", [])
    h = Histogram((0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 3.0):
        h.observe(v)
    t.add_histograms("lat_seconds", "L.", [({"watch": "w"}, h)])
    assert t.render().splitlines() == [
        "# HELP a_total A.",
        "# TYPE a_total counter",
        'a_total{x="q\\"\\\\\\n"} 2',
        "a_total 0.5",
        "# HELP b B.",
        "# TYPE b gauge",
        "# HELP lat_seconds L.",
        "# TYPE lat_seconds histogram",
        'lat_seconds_bucket{watch="w",le="0.1"} 2',
        'lat_seconds_bucket{watch="w",le="1"} 3',
        'lat_seconds_bucket{watch="w",le="+Inf"} 4',
        'lat_seconds_sum{watch="w"} 3.65',
        'lat_seconds_count{watch="w"} 4',
    ]
    with pytest.raises(ValueError, match="twice"):
        t.add("b", "gauge", "B.", [])
    with pytest.raises(ValueError, match="kind"):
        t.add("c", "summary", "C.", [])
    with pytest.raises(ValueError, match="increasing"):
        Histogram((2.0, 1.0))


def test_label_values_are_redacted() -> None:
    assert "hunter2" not in format_labels({"url": "rtsp://u:hunter2@cam/x"})


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read()


def test_server_serves_metrics_health_and_404() -> None:
    healthy = [True]
    srv = MetricsServer(
        lambda: "up 1\n",
        lambda: Health(healthy[0], () if healthy[0] else ("camera x: offline",)),
        port=0,
    ).start()
    try:
        base = f"http://127.0.0.1:{srv.port}"
        assert _get(base + "/metrics") == (200, b"up 1\n")
        assert _get(base + "/healthz") == (200, b'{"status":"ok","problems":[]}')
        healthy[0] = False
        code, body = _get(base + "/healthz")
        assert code == 503 and orjson.loads(body)["problems"] == ["camera x: offline"]
        assert _get(base + "/nope")[0] == 404
    finally:
        srv.close()
        srv.close()


def _parse(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def _readme_metrics() -> set[str]:
    """Metric names in the first column of the README's metrics table."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Metrics", 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"^\| `(lookout_[a-z_]+)` \|", section, re.MULTILINE))


def test_metrics_and_health_of_a_running_pipeline(
    tmp_path: Path, h264_clip: Clip, model_server_factory: Any
) -> None:
    model = model_server_factory(
        [
            Reply('{"condition_met": false, "next_run_in": 1, "reasoning": "Empty."}'),
            Reply(
                '```json\n{"condition_met": false, "next_run_in": "1", "reasoning": "Still."}\n```'
            ),
            Reply('{"condition_met": true, "next_run_in": 1, "reasoning": "A box."}'),
        ]
    )
    path = tmp_path / "pipeline.toml"
    path.write_text(
        f"""
[cameras.front]
url = "{h264_clip.path}"
loop = true
[cameras.dead]
url = "rtsp://127.0.0.1:9/none"
open_timeout_s = 1
reconnect_max_s = 1
[backends.vlm]
type = "openai"
base_url = "{model.base_url}"
retries = 0
[backends.idle]
type = "none"
[sinks.log]
type = "jsonl"
path = "{tmp_path / "out.jsonl"}"
[[watches]]
name = "package"
camera = "front"
condition = "a package"
backend = "vlm"
mode = "repeat"
quiet_period_s = 60
max_looks_per_hour = 1800
look_burst = 2
[[watches]]
name = "blind"
camera = "dead"
condition = "anything"
backend = "idle"
[metrics]
enabled = true
port = 0
camera_offline_s = 1
[reload]
watch_file = false
"""
    )
    app = App(load_config(path), path)
    app.start()
    try:
        base = f"http://127.0.0.1:{app.metrics.port}"

        def alerted() -> tuple[int, bytes] | None:
            code, body = _get(base + "/metrics")
            one = _parse(body.decode()).get('lookout_watch_alerts_total{watch="package"}') == 1
            return (code, body) if one else None

        code, body = wait_until(
            alerted, 30, lambda: _get(base + "/metrics")[1].decode(), interval=0.2
        )
        m = _parse(body.decode())
        assert code == 200
        assert m['lookout_watch_looks_total{watch="package",kind="not_met"}'] == 2
        # Times are epoch timestamps, present only while they apply.
        assert 'lookout_camera_offline_since_timestamp_seconds{camera="front"}' not in m
        dead_since = m['lookout_camera_offline_since_timestamp_seconds{camera="dead"}']
        assert app.pipeline.started_at <= dead_since <= time.time()
        assert not any(k.endswith("_age_seconds") or "offline_seconds" in k for k in m)
        assert m['lookout_camera_reconnects_total{camera="dead"}'] >= 1
        assert m['lookout_watch_looks_total{watch="package",kind="met"}'] == 1
        assert m['lookout_watch_look_seconds_count{watch="package"}'] == 3
        assert m['lookout_watch_look_seconds_sum{watch="package"}'] > 0
        assert m['lookout_watch_state{watch="package",camera="front",status="running"}'] == 1
        # The refilling budget: 2 looks at once, then one per 2 s; it ran dry on the way.
        assert 0 <= m['lookout_watch_budget_tokens{watch="package"}'] < 1
        ran_dry = m['lookout_watch_budget_exhausted_timestamp_seconds{watch="package"}']
        assert app.pipeline.started_at <= ran_dry <= time.time()
        assert m['lookout_watch_budget_deferred_looks{watch="package"}'] >= 0
        assert 'lookout_watch_budget_tokens{watch="blind"}' not in m
        assert m['lookout_camera_connected{camera="front"}'] == 1
        assert m['lookout_camera_connected{camera="dead"}'] == 0
        assert m['lookout_camera_frames_decoded_total{camera="front"}'] >= 3
        assert m['lookout_camera_connects_total{camera="front"}'] == 1
        last_frame = m['lookout_camera_last_frame_timestamp_seconds{camera="front"}']
        assert app.pipeline.started_at <= last_frame <= time.time()
        build = [k for k in m if k.startswith("lookout_build_info{")]
        assert build == [
            f'lookout_build_info{{version="{__version__}",python="{platform.python_version()}"}}'
        ]
        assert m[build[0]] == 1
        # Every family served is listed in the README's metrics table.
        families = {ln.split()[2] for ln in body.decode().splitlines() if ln.startswith("# TYPE")}
        assert "lookout_watch_look_seconds" in families
        assert families <= _readme_metrics(), families - _readme_metrics()
        # From the camera's own stats: decode time and packets, no age before any video.
        assert m['lookout_camera_decode_seconds_total{camera="front"}'] > 0
        assert m['lookout_camera_decode_seconds_total{camera="dead"}'] == 0
        assert (
            m['lookout_camera_packets_total{camera="front"}']
            >= m['lookout_camera_frames_decoded_total{camera="front"}']
        )
        assert 'lookout_camera_last_frame_timestamp_seconds{camera="dead"}' not in m
        assert m['lookout_backend_looks_total{backend="vlm"}'] == 3
        assert m['lookout_backend_requests_total{backend="vlm"}'] == 3
        assert m['lookout_backend_errors_total{backend="vlm"}'] == 0
        assert m['lookout_backend_circuit_state{backend="vlm",state="closed"}'] == 1
        assert m['lookout_sink_delivered_total{sink="log"}'] >= 4
        assert m['lookout_sink_failures_total{sink="log"}'] == 0

        # The dead camera has been offline past camera_offline_s: /healthz fails and says why.
        def unhealthy() -> bytes | None:
            code, body = _get(base + "/healthz")
            return body if code == 503 else None

        problems = orjson.loads(wait_until(unhealthy, 30, "/healthz to fail", interval=0.2))[
            "problems"
        ]

        def blind_looked() -> bool:
            m = _parse(_get(base + "/metrics")[1].decode())
            return m.get('lookout_watch_looks_total{watch="blind",kind="no_frame"}', 0) >= 1

        wait_until(blind_looked, 30, "the blind watch to look", interval=0.2)
        assert len(problems) == 1 and problems[0].startswith("camera dead: offline for"), problems
    finally:
        app.stop()
    assert app.metrics._httpd is None


def test_a_client_that_stalls_mid_request_is_dropped_and_others_are_served(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The read timeout holds against a peer that sends half a request line and then nothing."""
    monkeypatch.setattr(prometheus._Handler, "timeout", 0.5)
    srv = MetricsServer(lambda: "up 1\n", lambda: Health(True), port=0).start()
    try:
        stalled = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        stalled.sendall(b"GET /met")  # ...and never the rest
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        conn.request("GET", "/metrics")
        assert conn.getresponse().read() == b"up 1\n"  # served while the other stalls
        conn.close()
        stalled.settimeout(10)  # socket.timeout here means the server kept it open
        rest = b""
        while chunk := stalled.recv(1024):
            rest += chunk
        assert b"200 OK" not in rest  # never served: it was cut off, within the 10 s wait
        stalled.close()
    finally:
        srv.close()
