"""CLI commands beyond check: backends listing and the webhook outbox."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import orjson

from sinks.outbox import Outbox

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_backends_json_lists_every_backend_and_the_auto_choice() -> None:
    result = run_cli("backends", "--json")
    assert result.returncode == 0, result.stderr
    doc = orjson.loads(result.stdout.strip().splitlines()[-1])
    rows = {row["name"]: row for row in doc["backends"]}
    assert {"openai", "llama_server", "onnx", "clip", "detections", "none"} <= {
        row["type"] for row in doc["backends"]
    }
    assert rows["detections"]["available"] is True
    assert "detections" in doc["auto"]


def test_outbox_list_and_replay_dead_letters(tmp_path: Path) -> None:
    outbox_path = tmp_path / "outbox.sqlite3"
    config = tmp_path / "pipeline.toml"
    config.write_text(
        f"""
[cameras.porch]
url = "rtsp://127.0.0.1:9/x"

[sinks.hook]
type = "webhook"
url = "http://127.0.0.1:9/hook"
outbox = "{outbox_path}"
"""
    )
    with Outbox(outbox_path) as box:
        event = box.add(
            "hook", "http://127.0.0.1:9/hook", b"{}", "application/json", now=time.time()
        )
        box.mark_dead(event.id, time.time(), "gave up", 500, attempted=True)

    listed = run_cli("outbox", "list", "-c", str(config))
    assert listed.returncode == 0, listed.stderr
    events = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert [e["id"] for e in events] == [event.id]
    assert events[0]["status"] == "dead"

    replayed = run_cli("outbox", "replay", "-c", str(config))
    assert replayed.returncode == 0, replayed.stderr
    assert "1 event(s) queued again" in replayed.stdout
    assert run_cli("outbox", "list", "-c", str(config)).stdout.strip() == ""
    pending = run_cli("outbox", "list", "--status", "pending", "-c", str(config))
    assert event.id in pending.stdout

    unknown = run_cli("outbox", "list", "--sink", "nope", "-c", str(config))
    assert unknown.returncode == 2
    assert "sinks.nope" in unknown.stderr
