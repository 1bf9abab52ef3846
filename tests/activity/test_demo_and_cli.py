"""A fresh start on the shipped demo config fills the timeline; the CLI lists, searches, exports."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _looks(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return int(
                conn.execute("SELECT count(*) FROM events WHERE kind = 'look'").fetchone()[0]
            )
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", "activity", "-c", str(config), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip


def test_the_shipped_demo_fills_the_timeline_and_the_cli_reads_it(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pipeline.toml", tmp_path / "pipeline.toml")
    shutil.copytree(ROOT / "demo", tmp_path / "demo")
    config = tmp_path / "pipeline.toml"
    db = tmp_path / "lookout-data" / "activity.sqlite3"  # next to the config, by default
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LOOKOUT_WEB__PORT": "0"}
    with (tmp_path / "out.txt").open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline", "-c", str(config)], cwd=tmp_path,
                                stdout=out, stderr=subprocess.STDOUT, env=env)  # fmt: skip
        try:

            def looked() -> bool:
                assert proc.poll() is None, (tmp_path / "out.txt").read_text()
                return _looks(db) >= 3

            wait_until(looked, 60, "three looks in the store", interval=0.3)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert _looks(db) >= 3, (tmp_path / "out.txt").read_text()

    listed = _cli(config, "--json", "--limit", "500")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    kinds = {r["kind"] for r in rows}
    assert {"look", "state", "camera"} <= kinds
    assert any(r["kind"] == "look" and r["picture"] for r in rows)  # a thumbnail per look

    found = _cli(config, "search", "motion", "--camera", "walkway", "--since", "1h")
    assert found.returncode == 0 and "motion" in found.stdout.lower()
    assert _cli(config, "search", "zebra").stdout.strip() == ""
    bad = _cli(config, "--since", "yesterday-ish")
    assert bad.returncode == 2 and "neither an age" in bad.stderr

    out = tmp_path / "share"
    exported = _cli(config, "export", "--since", "1h", "--until", "0s", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    data = json.loads((out / "activity.json").read_text())
    assert data and all((out / d["picture"]).is_file() for d in data if d["picture"])
