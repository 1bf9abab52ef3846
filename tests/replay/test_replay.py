"""Replays of a clip with known visits: the report's figures are the known times, exactly.

The yard clip (see ``conftest.py``) shows a shape on the lawn in 4..8 s and
13..16 s and in the sky (outside the lawn zone) in 17..19 s. The motion
detector analyses 5 frames a second (t = 0.0, 0.2, ...), so the shape's first
motion on the lawn is at 4.0 s and 13.0 s, and the watch's zone wakes it at
once. A woken look never starts within 1 s of the previous look's end.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from PIL import Image

from pipeline.app.cli import main
from pipeline.app.replay.engine import replay_watch
from pipeline.app.replay.labels import parse_labels
from pipeline.app.replay.metrics import evaluate
from pipeline.app.replay.report import ReportEntry, write_report
from pipeline.app.replay.timeline import HEIGHT, WIDTH
from pipeline.core.config_loader import load_config_text
from tests.support.clips import Clip
from tests.support.model_server import Reply, ScriptedModelServer
from tests.support.yard import (
    DETECTIONS_BACKEND,
    LABELS_CSV,
    watch_toml,
    yard_config,
)

JPEG_MAGIC = b"\xff\xd8\xff"


def _write(tmp_path: Path, toml: str) -> tuple[Path, Path]:
    cfg = tmp_path / "pipeline.toml"
    cfg.write_text(toml, encoding="utf-8")
    labels = tmp_path / "LABELS.csv"
    labels.write_text(LABELS_CSV, encoding="utf-8")
    return cfg, labels


def _check_report_files(report: Path, data: dict[str, Any]) -> None:
    page = (report / "index.html").read_text(encoding="utf-8")
    for variant in data["variants"]:
        png = report / variant["timeline"]
        with Image.open(png) as img:
            assert img.format == "PNG"
            assert img.size == (WIDTH, HEIGHT)
            img.verify()
        assert f'src="{variant["timeline"]}"' in page
        for alert in variant["alerts"]:
            assert alert["frame"] is not None
            assert (report / alert["frame"]).read_bytes().startswith(JPEG_MAGIC)
            assert f'src="{alert["frame"]}"' in page


def test_detections_backend_figures_match_known_times(
    yard_clip: Clip, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # det: met after 2 looks in a row with a lawn detection at most 2 s old; 5 s between looks.
    # t=0 first look: nothing (next in 5 s). 4.0: the shape wakes the watch, look 1 of 2
    # (next in 2 s); the wakes at 4.2..4.8 wait for the 1 s gap: look at 5.0 is 2 of 2,
    # alert. Quiet for 6 s: look at 11.0 (last lawn motion at 8.0, too old). 13.0: woken,
    # 1 of 2; 14.0: alert; quiet until 20.0, the end. The sky crossing never wakes it.
    cfg, labels = _write(
        tmp_path, yard_config(yard_clip.path, DETECTIONS_BACKEND, watch_toml("visitor", "det"))
    )
    report = tmp_path / "report"
    argv = ["replay", str(yard_clip.path), "--watch", "visitor", "-c", str(cfg)]
    argv += ["--labels", str(labels), "--report", str(report), "--no-progress"]
    assert main(argv) == 0

    data = orjson.loads((report / "report.json").read_bytes())
    variant = data["variants"][0]
    fig = variant["figures"]
    assert [(lk["time"], lk["trigger"], lk["answer"]) for lk in variant["looks"]] == [
        (0.0, "start", "not_met"),
        (4.0, "wake", "not_met"),
        (5.0, "wake", "met"),
        (11.0, "timer", "not_met"),
        (13.0, "wake", "not_met"),
        (14.0, "wake", "met"),
    ]
    assert fig["alert_times"] == [5.0, 14.0]
    assert fig["time_to_first_alert_s"] == [1.0, 1.0, None]
    assert fig["mean_time_to_first_alert_s"] == 1.0
    assert fig["false_alerts"] == []
    assert fig["missed_intervals"] == [
        {
            "start": 17.0,
            "end": 19.0,
            "note": "in the sky (outside the zone: the watch cannot see it)",
            "kind": "event",
        }
    ]
    assert fig["not_reached"] == []
    assert fig["looks"] == 6
    assert fig["looks_by_trigger"] == {"start": 1, "timer": 1, "wake": 4}
    assert fig["looks_per_minute"] == 18.0
    assert fig["model_time_s"] == 0.0
    assert fig["precision"] == 1.0
    assert fig["recall"] == 2 / 3
    assert fig["look_agreement"] == round(4 / 6, 6)
    assert fig["duration_s"] == 20.0
    assert fig["status"] == "running"
    assert variant["wakes"][0] == 4.0
    assert min(variant["zone_hits"]) == 4.0
    assert max(variant["zone_hits"]) == 16.0  # the shape leaving the lawn is motion too
    assert [a["message"] for a in variant["alerts"]] == ["motion seen on yard in lawn"] * 2
    _check_report_files(report, data)

    out = capsys.readouterr().out
    assert "time to first alert  1 s, 1 s, missed" in out
    assert f"report: {report / 'index.html'}" in out


def _answer(met: bool, next_run_in: int, reasoning: str, message: str | None = None) -> Reply:
    body: dict[str, Any] = {
        "condition_met": met,
        "next_run_in": next_run_in,
        "reasoning": reasoning,
    }
    if message is not None:
        body["notification_message"] = message
    return Reply(json.dumps(body))


def test_scripted_model_figures_match_known_times(
    yard_clip: Clip,
    tmp_path: Path,
    model_server_factory: Callable[..., ScriptedModelServer],
) -> None:
    # The model's answers, in the order of the looks, and when each look happens:
    steps = [
        _answer(
            True, 5, "A person on the lawn.", "Someone on the lawn"
        ),  # 0.0 first look: false alert
        Reply("I am not sure what I see."),  # 6.0 timer (quiet ended): unparseable, retry in 30
        _answer(True, 5, "A shape crosses the lawn.", "Visitor"),  # 7.0: woken at 6.2 + 1 s gap
        _answer(False, 10, "The lawn is empty."),  # 13.0 timer (quiet ended)
        Reply(""),  # 14.0: woken at 13.2; an empty answer, retry in 30
        _answer(True, 5, "Someone walks over the lawn.", "Visitor again"),  # 15.0: woken
    ]  # quiet from 15.0 until 21.0, after the clip's end at 20.0
    server = model_server_factory(
        steps, default=Reply(json.dumps({"condition_met": False, "next_run_in": 300}))
    )
    backends = f"""
[backends.vlm]
type = "openai"
base_url = "{server.base_url}"
model = "{server.model_id}"
retries = 0
"""
    cfg = load_config_text(yard_config(yard_clip.path, backends, watch_toml("visitor", "vlm")))
    run = replay_watch(cfg, "visitor", yard_clip.path)

    assert len(server.chat_requests()) == 6
    looks = [(run.clip_time(lk.time), lk.trigger, lk.verdict.kind.value) for lk in run.looks]
    assert looks == [
        (0.0, "start", "met"),
        (6.0, "timer", "unparseable"),
        (7.0, "wake", "met"),
        (13.0, "timer", "not_met"),
        (14.0, "wake", "empty"),
        (15.0, "wake", "met"),
    ]
    intervals = parse_labels(LABELS_CSV)
    fig = evaluate(run, intervals)
    assert fig.alert_times == [0.0, 7.0, 15.0]
    assert fig.time_to_first_alert_s == [3.0, 2.0, None]
    assert fig.false_alerts == [0.0]
    assert [(m["start"], m["end"]) for m in fig.missed_intervals or []] == [(17.0, 19.0)]
    assert fig.precision == 2 / 3
    assert fig.recall == 2 / 3
    assert fig.answers == {"met": 3, "unparseable": 1, "not_met": 1, "empty": 1}
    assert fig.looks_per_minute == 18.0
    assert fig.model_time_s > 0  # real HTTP calls, measured; the virtual clock stood still
    assert [a.message for a in run.alerts] == ["Someone on the lawn", "Visitor", "Visitor again"]
    # Every look sent the frame of its own clip time (a JPEG data URL).
    assert all(len(r.image_urls()) >= 1 for r in server.chat_requests())

    report = tmp_path / "report"
    write_report(report, [ReportEntry(run, fig, intervals)], clip=yard_clip.path)
    data = orjson.loads((report / "report.json").read_bytes())
    assert [a["time"] for a in data["variants"][0]["alerts"]] == [0.0, 7.0, 15.0]
    _check_report_files(report, data)


def test_compare_puts_variants_side_by_side(
    yard_clip: Clip, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The once variant alerts at 5.0 (as above) and ends: the later intervals are not reached.
    watches = watch_toml("visitor", "det") + watch_toml("visitor_once", "det", mode="once")
    cfg, labels = _write(tmp_path, yard_config(yard_clip.path, DETECTIONS_BACKEND, watches))
    report = tmp_path / "report"
    argv = ["replay", str(yard_clip.path), "--watch", "visitor", "--compare", "visitor_once"]
    argv += ["-c", str(cfg), "--labels", str(labels), "--report", str(report), "--no-progress"]
    argv += ["--json"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [v["watch"] for v in printed["variants"]] == ["visitor", "visitor_once"]

    data = orjson.loads((report / "report.json").read_bytes())
    once = data["variants"][1]["figures"]
    assert once["status"] == "success"
    assert once["ended_at_s"] == 5.0
    assert once["replayed_s"] == 5.0
    assert once["looks"] == 3
    assert once["looks_per_minute"] == 36.0
    assert once["alert_times"] == [5.0]
    assert once["time_to_first_alert_s"] == [1.0, None, None]
    assert once["missed_intervals"] == []
    assert [(i["start"], i["end"]) for i in once["not_reached"]] == [(13.0, 16.0), (17.0, 19.0)]
    assert once["precision"] is None and once["recall"] is None
    rows = {row["figure"]: row["values"] for row in data["comparison"]}
    assert rows["alerts"] == ["2", "1"]
    assert rows["looks"] == ["6", "3"]
    assert rows["status"] == ["running", "success"]
    page = (report / "index.html").read_text(encoding="utf-8")
    assert "<h2>Comparison</h2>" in page
    _check_report_files(report, data)


def test_paced_replay_gives_the_same_looks(yard_clip: Clip) -> None:
    cfg = load_config_text(
        yard_config(yard_clip.path, DETECTIONS_BACKEND, watch_toml("visitor", "det"))
    )
    fast = replay_watch(cfg, "visitor", yard_clip.path, until_s=6.0)
    paced = replay_watch(cfg, "visitor", yard_clip.path, until_s=6.0, speed="6x")
    times = [(fast.clip_time(lk.time), lk.trigger) for lk in fast.looks]
    assert times == [(0.0, "start"), (4.0, "wake"), (5.0, "wake")]
    assert [(paced.clip_time(lk.time), lk.trigger) for lk in paced.looks] == times
    assert fast.duration_s == paced.duration_s == 6.0


def test_cli_reports_bad_input_in_one_line(
    yard_clip: Clip, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, labels = _write(
        tmp_path, yard_config(yard_clip.path, DETECTIONS_BACKEND, watch_toml("visitor", "det"))
    )
    base = ["replay", str(yard_clip.path), "-c", str(cfg), "--no-progress"]
    assert main([*base, "--watch", "nobody"]) == 1
    assert (
        "replay: No watch named 'nobody' in the config; watches: visitor."
        in capsys.readouterr().err
    )

    labels.write_text("start,end\n4,8\n6,9\n", encoding="utf-8")
    assert main([*base, "--watch", "visitor", "--labels", str(labels)]) == 1
    err = capsys.readouterr().err
    assert "line 3: interval 6-9 s overlaps 4-8 s on line 2." in err

    assert main([*base, "--watch", "visitor", "--speed", "fast"]) == 1
    assert "Speed must be 'max'" in capsys.readouterr().err

    missing = ["replay", str(tmp_path / "none.mp4"), "-c", str(cfg), "--watch", "visitor"]
    assert main(missing) == 1
    assert "is not a file" in capsys.readouterr().err
