"""The shipped pipeline.toml runs as shipped: demo camera, motion, auto backend, console."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_config_prints_an_alert_and_stops_cleanly(tmp_path: Path) -> None:
    out_path = tmp_path / "out.txt"
    with out_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:

            def alerted() -> bool:
                assert proc.poll() is None, out_path.read_text()
                return "ALERT" in out_path.read_text()

            wait_until(alerted, 45, lambda: f"an alert; got {out_path.read_text()}", interval=0.2)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    text = out_path.read_text()
    assert "ALERT people_on_walkway" in text, text
    # One clear line says which backend auto chose, and why.
    chose = [line for line in text.splitlines() if "auto chose" in line]
    assert len(chose) == 1 and "detections" in chose[0], text
    assert "Traceback" not in text
