"""``--model-latency``: the model's answer time on the virtual clock of a replay.

The yard clip and the ``det`` watch as in ``test_replay.py``: the shape's first
lawn motion is at 4.0 s and 13.0 s; a woken look never starts within 1 s of the
previous look's end; the detections backend answers in 0 s.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.app.cli import main
from pipeline.app.replay.engine import model_latency_name, parse_model_latency, replay_watch
from pipeline.core.config_loader import load_config_text
from pipeline.core.verdict import AnswerKind, Verdict
from tests.support.clips import Clip
from tests.support.model_server import Reply, ScriptedModelServer
from tests.support.yard import DETECTIONS_BACKEND, watch_toml, yard_config


def _variant(report: Path) -> dict[str, Any]:
    variant: dict[str, Any] = orjson.loads((report / "report.json").read_bytes())["variants"][0]
    return variant


def _looks(variant: dict[str, Any]) -> list[tuple[float, str, str]]:
    return [(lk["time"], lk["trigger"], lk["answer"]) for lk in variant["looks"]]


def test_fixed_latency_delays_looks_and_drops_wakes_while_held(
    yard_clip: Clip, tmp_path: Path
) -> None:
    cfg = tmp_path / "pipeline.toml"
    cfg.write_text(yard_config(yard_clip.path, DETECTIONS_BACKEND, watch_toml("visitor", "det")))
    base = ["replay", str(yard_clip.path), "--watch", "visitor", "-c", str(cfg), "--no-progress"]
    assert main([*base, "--model-latency", "none", "--report", str(tmp_path / "none")]) == 0
    assert main([*base, "--model-latency", "3", "--report", str(tmp_path / "held")]) == 0

    # none: today's figures exactly (see test_replay.py).
    none = _variant(tmp_path / "none")
    assert _looks(none) == [
        (0.0, "start", "not_met"),
        (4.0, "wake", "not_met"),
        (5.0, "wake", "met"),
        (11.0, "timer", "not_met"),
        (13.0, "wake", "not_met"),
        (14.0, "wake", "met"),
    ]
    assert none["figures"]["model_latency"] == "none"

    # 3 s: the first look's answer comes at 3.0, so the wake at 4.0 starts a look; its
    # answer (1 of 2) comes at 7.0 and the wakes of 4.2..6.8 are dropped; the wakes
    # from 7.0 wait for the 1 s gap: the next look is at 8.0, 3 s later than without
    # latency. Its alert's answer comes at 11.0: quiet until 17.0, so the visit at
    # 13.0 is not seen; the look at 17.0 is still waiting for its answer at the end.
    held = _variant(tmp_path / "held")
    assert _looks(held) == [
        (0.0, "start", "not_met"),
        (4.0, "wake", "not_met"),
        (8.0, "wake", "met"),
    ]
    fig = held["figures"]
    assert fig["model_latency"] == "3"
    assert fig["alert_times"] == [8.0]
    assert [w for w in held["wakes"] if 4.0 < w < 7.0]  # wakes came, and were dropped


def test_measured_latency_is_each_answers_own(
    yard_clip: Clip,
    tmp_path: Path,
    model_server_factory: Callable[..., ScriptedModelServer],
) -> None:
    answer = json.dumps({"condition_met": False, "next_run_in": 1, "reasoning": "empty"})
    server = model_server_factory([], default=Reply(answer, delay=0.2))
    backends = f"""
[backends.vlm]
type = "openai"
base_url = "{server.base_url}"
model = "{server.model_id}"
retries = 0
"""
    cfg = load_config_text(yard_config(yard_clip.path, backends, watch_toml("visitor", "vlm")))
    run = replay_watch(cfg, "visitor", yard_clip.path, until_s=3.5, model_latency="measured")
    assert run.model_latency == "measured"
    times = [run.clip_time(lk.time) for lk in run.looks]
    latencies = [lk.verdict.latency_s for lk in run.looks]
    assert len(times) >= 2 and all(lat >= 0.2 for lat in latencies)
    # Each timer look starts 1 s (next_run_in) after the previous answer arrived.
    for k in range(1, len(times)):
        assert times[k] == pytest.approx(times[k - 1] + latencies[k - 1] + 1.0, abs=1e-5)


def test_parse_model_latency() -> None:
    v = Verdict.failed(AnswerKind.ERROR, "x").with_latency(0.75)
    assert parse_model_latency("none") is None and parse_model_latency(None) is None
    measured = parse_model_latency("measured")
    assert measured is not None and measured(v) == 0.75
    fixed = parse_model_latency("2.5")
    assert fixed is not None and fixed(v) == 2.5
    assert [model_latency_name(x) for x in ("none", "measured", "3", 0.5, None)] == [
        "none", "measured", "3", "0.5", "none"
    ]  # fmt: skip


@pytest.mark.parametrize("bad", ["fast", "-1", "inf", "nan", ""])
def test_bad_model_latency_is_one_line(
    bad: str, yard_clip: Clip, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match="Model latency"):
        parse_model_latency(bad)
    cfg = tmp_path / "pipeline.toml"
    cfg.write_text(yard_config(yard_clip.path, DETECTIONS_BACKEND, watch_toml("visitor", "det")))
    argv = ["replay", str(yard_clip.path), "--watch", "visitor", "-c", str(cfg)]
    assert main([*argv, "--no-progress", "--model-latency", bad]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("replay: Model latency") and "\n" not in err
