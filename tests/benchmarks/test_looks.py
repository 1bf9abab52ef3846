"""benchmarks.looks: its quick path on a short labelled clip (structure and behaviour, no timing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.labelled_model import parse_labels
from benchmarks.looks import POLICIES, ROWS, Clip, config_text, discover, main, time_to_alert
from pipeline.core.config_loader import load_config_text


def test_quick_run_on_the_walkway_clip(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--clips", "walkway"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert figures["benchmark"] == "looks" and figures["quick"] is True
    per = figures["clips"]["walkway"]
    assert set(per) == {*ROWS, "looks_oracle", "lookout_over_oracle", "polling_over_oracle"}
    for row in (per[name] for name in ROWS):
        assert {"looks", "mean_time_to_alert_s", "misses", "false_alerts", "alerts"} <= set(row)
        assert len(row["time_to_alert_s"]) == 1  # the clip has one event
    # Polling looks every 5 s; Lookout looks when there is news, and still catches the event.
    assert per["lookout"]["looks"] < per["polling"]["looks"]
    assert per["lookout"]["misses"] == 0
    assert per["polling"]["looks_by_trigger"].get("wake", 0) == 0
    assert figures["looks"]["polling"] == per["polling"]["looks"]
    assert {"looks_polling_over_lookout", "looks_baseline_over_lookout",
            "looks_lookout_over_oracle"} <= set(figures["ratios"])  # fmt: skip
    # The floor: no miss, every alert at once, never more looks than a policy that alerts at once.
    floor = per["oracle"]
    assert floor["misses"] == 0 and floor["time_to_alert_s"] == [0.0]
    assert per["looks_oracle"] == floor["looks"] <= per["lookout"]["looks"]
    assert per["lookout_over_oracle"] == round(per["lookout"]["looks"] / floor["looks"], 2)
    # The table has one row per policy and the oracle, then the clip's summary, then the JSON.
    assert [ln.split()[1] for ln in lines[1 : 1 + len(ROWS)]] == list(ROWS)
    assert lines[1 + len(ROWS)].startswith("walkway: Lookout")


def test_every_policy_gets_a_valid_config_and_the_same_watch() -> None:
    clip = next(c for c in discover() if c.name == "walkway")
    configs = {p: load_config_text(config_text(clip, p)) for p in POLICIES}
    watches = {p: c.watches[0] for p, c in configs.items()}
    assert {w.condition for w in watches.values()} == {clip.condition}
    assert watches["lookout"].wake == "news" and watches["baseline"].wake == "detections"
    assert configs["polling"].cameras["cam"].detect is None
    assert configs["baseline"].cameras["cam"].detect == configs["lookout"].cameras["cam"].detect
    assert watches["baseline"].zones == watches["lookout"].zones == list(clip.zones)


def test_time_to_alert_counts_each_event_once() -> None:
    labels = parse_labels("start,end,kind,note\n1,2,forming,\n2,6,event,a\n10,12,event,b\n")
    clip = Clip("c", Path("c.mp4"), labels, "x", {}, 12.0)
    assert time_to_alert(clip, [1.5, 3.0, 4.0, 13.0]) == [1.0, None]
