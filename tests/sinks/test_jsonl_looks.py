"""The JSONL sink's look log (``looks = true``): each look with its frame kind and lateness."""

from __future__ import annotations

from pathlib import Path

import orjson

from pipeline.core.config import JsonlSinkConfig
from pipeline.core.events import LookRecord
from pipeline.core.verdict import AnswerKind, Verdict
from sinks.jsonl import JsonlSink
from sinks.registry import SinkHub


def _look(trigger: str, kind: str, lateness: float) -> LookRecord:
    return LookRecord(watch="porch", job_id="j1", time=100.0, trigger=trigger,
                      verdict=Verdict.failed(AnswerKind.NO_FRAME, "none"), frame={"seq": 3},
                      frame_kind=kind, lateness_s=lateness, frame_age_s=1.25)  # fmt: skip


def test_looks_are_written_only_when_asked_for(tmp_path: Path) -> None:
    logged = JsonlSink("log", JsonlSinkConfig(path=tmp_path / "looks.jsonl", looks=True))
    quiet = JsonlSink("quiet", JsonlSinkConfig(path=tmp_path / "quiet.jsonl"))
    hub = SinkHub({"log": logged, "quiet": quiet})
    hub.open()
    hub.send_look(_look("timer", "keyframe", 0.02))
    hub.send_look(_look("wake", "inter", 0.0))
    hub.close()
    lines = [orjson.loads(x) for x in (tmp_path / "looks.jsonl").read_bytes().splitlines()]
    assert [(x["kind"], x["trigger"], x["frame_kind"], x["lateness_s"]) for x in lines] == [
        ("look", "timer", "keyframe", 0.02),
        ("look", "wake", "inter", 0.0),
    ]
    assert lines[0]["frame_age_s"] == 1.25 and lines[0]["watch"] == "porch"
    assert not (tmp_path / "quiet.jsonl").exists() or not (tmp_path / "quiet.jsonl").read_bytes()
