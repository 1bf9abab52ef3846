"""The cluster benchmark's pure parts: its config is valid, looks on time are counted right."""

import os

from benchmarks.cluster import Model, config
from pipeline.app.cluster import cluster_problems
from pipeline.core.config_loader import load_config_text


def test_config_has_one_snapshot_camera_and_watch_each_and_runs_on_a_cluster() -> None:
    cfg = load_config_text(config(3, 5000, "http://127.0.0.1:9/v1"))
    assert sorted(cfg.cameras) == ["cam000", "cam001", "cam002"]
    assert all(c.url.startswith("frigate://127.0.0.1:5000/") for c in cfg.cameras.values())
    assert [w.camera for w in cfg.watches] == sorted(cfg.cameras)
    assert cluster_problems(cfg) == []


def test_looks_on_time_counts_intervals_past_the_period() -> None:
    m = Model(period=5.0)
    m.looks["cam000"] = [0.0, 5.2, 10.3, 17.0]  # late by 0.2, 0.1, then 1.7 s
    share, looks, p95 = m.on_time(0.0, 100.0, 5.0)
    assert looks == 3 and abs(share - 2 / 3) < 1e-9 and abs(p95 - 0.2) < 1e-9
    assert m.on_time(50.0, 60.0, 5.0) == (0.0, 0, 0.0)
    assert os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") == "0"
