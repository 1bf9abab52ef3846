"""Real footage end to end: vtest.avi (a walkway seen from above) with motion and a walkway zone.

The footage is ``tests/footage/vtest.mp4``: the whole of OpenCV's ``vtest.avi``
(79.5 s, 795 frames, 768x576) transcoded to H.264 by ``scripts/make-footage``.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from PIL import Image

from pipeline.app.replay.engine import replay_watch
from pipeline.app.replay.labels import Interval
from pipeline.app.replay.metrics import evaluate
from pipeline.app.replay.report import ReportEntry, write_report
from pipeline.app.replay.timeline import HEIGHT, WIDTH
from pipeline.core.config_loader import load_config_text

ROOT = Path(__file__).resolve().parents[2]
VTEST = ROOT / "tests" / "footage" / "vtest.mp4"


def test_vtest_walkway_replays_end_to_end(tmp_path: Path) -> None:
    assert VTEST.is_file(), f"{VTEST} is missing (made by scripts/make-footage)"
    cfg = load_config_text(f"""
[cameras.walkway]
url = "{VTEST}"

[cameras.walkway.zones.path]
points = [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]

[cameras.walkway.detect]
type = "motion"
fps = 5

[backends.det]
type = "detections"

[[watches]]
name = "people"
camera = "walkway"
condition = "someone is walking on the path"
labels = ["motion"]
zones = ["path"]
backend = "det"
mode = "repeat"
quiet_period_s = 20
max_duration_minutes = 0
""")
    # The whole clip (79.5 s, 795 frames): about 2 s of work on 2 cores.
    run = replay_watch(cfg, "people", VTEST)
    assert run.duration_s == 79.5
    assert run.packets == 795
    assert run.detector == "motion"
    assert run.error is None
    assert run.final_state is not None and run.final_state.status.value == "running"
    assert len(run.detections) > 100  # people walk all the time
    assert 0 < len(run.zone_hits) <= len(run.detections)
    assert run.wakes and run.alerts
    assert any(lk.trigger == "wake" for lk in run.looks)
    times = [run.clip_time(lk.time) for lk in run.looks]
    assert times == sorted(times) and times[0] == 0.0 and times[-1] < 79.5

    intervals = [Interval(0.0, 79.5, "people on the path all along")]
    fig = evaluate(run, intervals)
    assert fig.false_alerts == [] and fig.recall == 1.0
    page = write_report(tmp_path, [ReportEntry(run, fig, intervals)], clip=VTEST)
    data = orjson.loads((tmp_path / "report.json").read_bytes())
    assert data["variants"][0]["figures"]["alerts"] == len(run.alerts)
    with Image.open(tmp_path / "timeline-people.png") as img:
        assert img.size == (WIDTH, HEIGHT)
    assert "timeline-people.png" in page.read_text(encoding="utf-8")
