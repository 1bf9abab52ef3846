"""The cluster benchmark's pure parts: its config is valid, looks on time are counted right."""

import os
from pathlib import Path

import av
import pytest

from benchmarks.cluster import Model, config, decoding_config, median_of, stream_config
from benchmarks.cluster_procs import Sample, kind_of, owner, usage
from benchmarks.cluster_streams import StreamClip, cache_folder, clip_name, make_stream_clip
from pipeline.app.cluster import cluster_problems
from pipeline.core.config_loader import load_config_text


def test_config_has_one_snapshot_camera_and_watch_each_and_runs_on_a_cluster() -> None:
    cfg = load_config_text(config(3, 5000, "http://127.0.0.1:9/v1"))
    assert sorted(cfg.cameras) == ["cam000", "cam001", "cam002"]
    assert all(c.url.startswith("frigate://127.0.0.1:5000/") for c in cfg.cameras.values())
    assert [w.camera for w in cfg.watches] == sorted(cfg.cameras)
    assert cluster_problems(cfg) == []


def test_decoding_config_plays_the_walkway_clip_with_motion_detection_on_each_camera() -> None:
    cfg = load_config_text(decoding_config(2, "http://127.0.0.1:9/v1"))
    assert sorted(cfg.cameras) == ["vid00", "vid01"]
    assert all(c.url.endswith("walkway.mp4") and c.loop for c in cfg.cameras.values())
    assert all(c.detect is not None and c.detect.type == "motion" for c in cfg.cameras.values())
    assert [w.camera for w in cfg.watches] == sorted(cfg.cameras)
    assert cluster_problems(cfg) == []


def test_stream_config_plays_one_low_rate_clip_as_live_on_demand_without_a_detector() -> None:
    cfg = load_config_text(stream_config(2, Path("/c/low.mp4"), "http://127.0.0.1:9/v1"))
    assert sorted(cfg.cameras) == ["str000", "str001"]
    cams = cfg.cameras.values()
    assert all(c.url == "/c/low.mp4" and c.loop and c.realtime for c in cams)
    assert all(c.decode == "on_demand" and c.detect is None for c in cams)
    assert [w.camera for w in cfg.watches] == sorted(cfg.cameras)
    assert cluster_problems(cfg) == []


def test_stream_clip_name_holds_every_setting_and_changes_with_any_or_pyav() -> None:
    base = StreamClip()
    name = clip_name(base, "1.0")
    assert name.startswith("lowrate-320x240-2fps-gop4-60s-noise-box-") and name.endswith(".mp4")
    assert clip_name(base, "1.0") == name
    others = [StreamClip(width=640), StreamClip(height=480), StreamClip(fps=5),
              StreamClip(gop=10), StreamClip(seconds=30)]  # fmt: skip
    names = {name, clip_name(base, "2.0"), *(clip_name(c, "1.0") for c in others)}
    assert len(names) == 2 + len(others)


def test_stream_clips_are_cached_under_lookout_bench(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "/x/cache")
    assert cache_folder() == Path("/x/cache/lookout/bench")


def test_the_stream_clip_is_low_rate_with_a_keyframe_every_gop(tmp_path: Path) -> None:
    clip = StreamClip(seconds=6)
    path = make_stream_clip(tmp_path / "low.mp4", clip)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (320, 240)
        packets = [p for p in container.demux(stream) if p.size]
    assert len(packets) == 12
    keys = [float(p.pts * p.time_base) for p in packets if p.is_keyframe and p.pts is not None]
    assert keys == [0.0, 2.0, 4.0]


def test_processes_are_sorted_into_lookouts_and_rays_and_counted_per_second() -> None:
    driver = "/venv/bin/python -m pipeline run --ray 127.0.0.1:6379 -c c.toml"
    monitor = "/venv/bin/python -u /venv/lib/ray/_private/log_monitor.py --session-dir=/tmp/x"
    assert [kind_of(c) for c in (driver, monitor, "ray::Hub.intake", "ray::IDLE")] == [
        "pipeline", "log_monitor", "Hub", "IDLE"
    ]  # fmt: skip
    assert [owner(k) for k in ("pipeline", "Hub", "CameraHost", "IDLE", "gcs_server")] == [
        "lookout", "lookout", "lookout", "ray", "ray"
    ]  # fmt: skip
    before = Sample({1: 10.0, 2: 5.0}, {1: 0, 2: 0}, {1: "raylet", 2: "Hub"})
    after = Sample({1: 12.0, 3: 1.0}, {1: 2**20, 3: 2**21}, {1: "raylet", 3: "Hub"})
    assert usage(before, after, 4.0) == {  # 2 gone, 3 new: counted from its start
        "Hub": {"cpu": 0.25, "rss_mb": 2.0}, "raylet": {"cpu": 0.5, "rss_mb": 1.0}
    }  # fmt: skip
    assert median_of([{"a": 1, "b": {"c": 3.0}}, {"a": 5, "b": {"c": 1.0}}, {"a": 2, "b": {"c": 2.0}}]) == {"a": 2, "b": {"c": 2.0}}  # fmt: skip


def test_looks_on_time_counts_intervals_past_the_period() -> None:
    m = Model(period=5.0)
    m.looks["cam000"] = [0.0, 5.2, 10.3, 17.0]  # late by 0.2, 0.1, then 1.7 s
    share, looks, p95 = m.on_time(0.0, 100.0, 5.0)
    assert looks == 3 and abs(share - 2 / 3) < 1e-9 and abs(p95 - 0.2) < 1e-9
    assert m.on_time(50.0, 60.0, 5.0) == (0.0, 0, 0.0)
    assert os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") == "0"
