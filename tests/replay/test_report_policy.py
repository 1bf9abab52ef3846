"""The replay shows the wake policy: why each look was woken, what was dropped, the budget,
every look's frame, the speed against a raw decode, and figures on the judged frame's time."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pytest

from pipeline.app.cli import main
from pipeline.app.replay.engine import replay_watch
from pipeline.app.replay.labels import Interval
from pipeline.app.replay.metrics import evaluate, look_agreement, mean_time_to_alert
from pipeline.app.replay.run import ReplayRun
from pipeline.core.config import WatchConfig
from pipeline.core.config_loader import load_config_text
from pipeline.core.events import LookRecord
from pipeline.core.verdict import Verdict
from tests.support.clips import Clip
from tests.support.yard import DETECTIONS_BACKEND, LABELS_CSV, watch_toml, yard_config

JPEG_MAGIC = b"\xff\xd8\xff"
NEWS_REASONS = {"entered", "more", "less", "left"}


def test_compare_news_and_detections_report(
    yard_clip: Clip, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    watches = watch_toml("news", "det", wake="news") + watch_toml("every_match", "det")
    cfg = tmp_path / "pipeline.toml"
    cfg.write_text(yard_config(yard_clip.path, DETECTIONS_BACKEND, watches), encoding="utf-8")
    labels = tmp_path / "LABELS.csv"
    labels.write_text(LABELS_CSV, encoding="utf-8")
    report = tmp_path / "report"
    argv = ["replay", str(yard_clip.path), "--watch", "news", "--compare", "every_match",
            "-c", str(cfg), "--labels", str(labels), "--report", str(report),
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    for row in ("looks woken", "woken by", "wakes dropped", "budget", "speed vs raw decode"):
        assert row in out

    data = orjson.loads((report / "report.json").read_bytes())
    news, every = (v["figures"] for v in data["variants"])
    # The news policy wakes for the shape's arrivals and goings, not for each motion box.
    assert news["looks_woken"] == news["looks_by_trigger"].get("wake", 0) >= 1
    assert set(news["wake_reasons"]) <= NEWS_REASONS
    assert sum(news["wake_reasons"].values()) == news["looks_woken"]
    assert news["wakes_dropped"].get("no news", 0) > 0
    assert news["looks_woken"] < every["looks_woken"]
    assert every["wake_reasons"] == {"wake": every["looks_woken"]}
    assert news["budget"] is None
    for fig in (news, every):
        assert fig["raw_decode_s"] > 0 and fig["speed_vs_raw_decode"] > 0
        assert fig["missed_intervals"] is not None and fig["mean_time_to_alert_s"] is not None

    page = (report / "index.html").read_text(encoding="utf-8")
    for variant in data["variants"]:
        assert variant["looks"]
        for look in variant["looks"]:
            # Every look's frame, met or not, is in the report and on the page.
            assert look["frame"] is not None
            assert (report / look["frame"]).read_bytes().startswith(JPEG_MAGIC)
            assert f'src="{look["frame"]}"' in page
            assert look["frame_time"] <= look["time"]
            if look["trigger"] == "wake" and variant["figures"]["watch"] == "news":
                assert look["wake_reason"] in NEWS_REASONS
        assert {why for _, why in variant["dropped_wakes"]} == set(
            variant["figures"]["wakes_dropped"]
        )


def test_a_budget_that_runs_dry_is_in_the_figures(yard_clip: Clip) -> None:
    watch = watch_toml("tight", "det").replace(
        "max_duration_minutes = 0",
        "max_duration_minutes = 0\nmax_looks_per_hour = 360\nlook_burst = 2",
    )
    cfg = load_config_text(yard_config(yard_clip.path, DETECTIONS_BACKEND, watch))
    run = replay_watch(cfg, "tight", yard_clip.path)
    fig = evaluate(run)
    assert fig.budget is not None
    assert fig.budget["per_hour"] == 360 and fig.budget["burst"] == 2
    assert fig.budget["ran_out_at"] and all(0 <= t <= 20 for t in fig.budget["ran_out_at"])
    assert fig.wakes_dropped.get("over budget", 0) >= 1
    # One look per 10 s once the burst is spent: never more than burst + 20 s / 10 s.
    assert fig.looks <= 2 + 2 + 1


def _look(t: float, frame_t: float, met: bool) -> LookRecord:
    return LookRecord(watch="w", job_id="j", time=t, trigger="timer",
                      verdict=Verdict.answered(met, 5), frame={"wall_time": frame_t})  # fmt: skip


def test_look_agreement_counts_the_time_of_the_frame_judged() -> None:
    """A look at 10.2 s judging a frame of 9.8 s agrees with an interval ending at 10 s."""
    run = ReplayRun(watch=WatchConfig(name="w", camera="c", condition="a cat"), clip=Path("c.mp4"))
    run.looks = [_look(10.2, 9.8, True), _look(12.0, 11.0, False)]
    fig = evaluate(run, [Interval(5, 10)])
    assert fig.look_agreement == 1.0
    on_look_time = [(lk.time, lk.verdict.condition_met) for lk in run.looks]
    assert look_agreement([Interval(5, 10)], on_look_time) == 0.5  # what it used to be


def test_mean_time_to_alert_counts_a_miss_as_its_length() -> None:
    ivs = [Interval(0, 4), Interval(10, 20), Interval(30, 31, kind="forming")]
    run = ReplayRun(watch=WatchConfig(name="w", camera="c", condition="a cat"), clip=Path("c.mp4"))
    assert mean_time_to_alert(ivs[:2], [1.0]) == (1.0 + 10.0) / 2
    fig = evaluate(dataclasses.replace(run), ivs)
    assert fig.mean_time_to_alert_s == 7.0  # no alert: (4 + 10) / 2; the forming span is no event
    assert fig.intervals is not None and len(fig.intervals) == 2
