"""Each script in examples/ runs as a user would run it and prints what it promises."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_zones_and_cooldown() -> None:
    lines = run_example("zones_and_cooldown.py").splitlines()
    assert lines == [
        "t=  5.0s  with zone   wake: person seen at 5s zones=porch",
        "t= 10.0s  no zones    wake: person seen at 7s zones=-",
        "t= 20.0s  no zones    wake: person seen at 15s zones=-",
        "done",
    ]


def test_parse_model_answers() -> None:
    kinds = [line.split()[1] for line in run_example("parse_model_answers.py").splitlines()]
    assert kinds == ["not_met", "met", "not_met", "not_met", "unparseable", "unparseable",
                     "empty", "empty"]  # fmt: skip


def test_motion_on_a_clip() -> None:
    out = run_example("motion_on_a_clip.py")
    m = re.search(r"^(\d+) motion detections \((\d+) seconds with motion\); (\d+) in zone", out,
                  re.MULTILINE)  # fmt: skip
    assert m, out
    total, seconds, in_zone = (int(g) for g in m.groups())
    assert total > 20 and seconds >= 10 and 0 < in_zone <= total
    assert "motion box" in out


def test_watch_a_live_camera() -> None:
    """The whole watch embedded on the demo clip played live: looks, an alert, a clean end."""
    lines = run_example("watch_a_live_camera.py", "8").splitlines()
    assert lines[:2] == ["STATE  queued", "STATE  running"]
    looks = [line for line in lines if line.startswith("LOOK")]
    assert looks and looks[0].split()[1] == "start"
    assert any(line.startswith("ALERT  The path is busy.") for line in lines), lines
    assert lines[-2:] == ["STATE  cancelled", "done after 8 s"]
