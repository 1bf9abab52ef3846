"""SIGTERM with a look in flight ends within ``shutdown.grace_s + shutdown.flush_s``.

`python -m pipeline` runs one watch on a file camera against a model server that
never answers (and a read timeout far longer than the test), with a webhook sink
whose receiver is down, so watch states queue in the outbox. SIGTERM must
abandon the look after the grace period, keep the queued events in the outbox
(delivered on the next start), and exit 0 within the bound plus 3 s of slack for
a loaded machine.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.clips import Clip
from tests.support.model_server import Hang, ScriptedModelServer
from tests.support.ports import LOOPBACK, free_port
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
GRACE_S = 2.0
FLUSH_S = 1.0
SLACK_S = 3.0


def pending_events(outbox: Path) -> int:
    if not outbox.exists():
        return 0
    with sqlite3.connect(outbox) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM events WHERE status = 'pending'").fetchone()
    return int(count)


@pytest.fixture(params=["down", "silent"])
def hook_port(request: pytest.FixtureRequest) -> Iterator[int]:
    """A webhook port where nothing listens, or one that takes POSTs and never answers."""
    if request.param == "down":
        yield free_port()
        return
    with socket.socket() as sock:  # listens, never accepts: the POST waits for an answer
        sock.bind((LOOPBACK, 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def test_sigterm_with_a_look_in_flight_ends_within_grace_plus_flush(
    tmp_path: Path, h264_clip: Clip, model_server: ScriptedModelServer, hook_port: int
) -> None:
    model_server.default = Hang(600.0)  # the look never gets an answer
    outbox = tmp_path / "outbox.sqlite3"
    config = tmp_path / "pipeline.toml"
    config.write_text(
        f"""
[cameras.front]
url = "{h264_clip.path}"

[backends.vlm]
type = "openai"
base_url = "{model_server.base_url}"
read_timeout_s = 600
request_timeout_s = 600
retries = 0

[[watches]]
name = "porch"
camera = "front"
condition = "a package is on the porch"
backend = "vlm"

[sinks.hook]
type = "webhook"
url = "http://127.0.0.1:{hook_port}/hook"
states = true
read_timeout_s = 600
request_timeout_s = 600
outbox = "{outbox}"
backoff_initial_s = 60

[shutdown]
grace_s = {GRACE_S}
flush_s = {FLUSH_S}
"""
    )
    log_path = tmp_path / "lookout.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "-c", str(config)],
            cwd=ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            model_server.wait_for_chat_requests(1, timeout=60)  # the look is in flight
            wait_until(lambda: pending_events(outbox) > 0, 30, "a webhook event queued")
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=GRACE_S + FLUSH_S + SLACK_S)
            except subprocess.TimeoutExpired:
                raise AssertionError(
                    f"still running {GRACE_S + FLUSH_S + SLACK_S} s after SIGTERM"
                ) from None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    output = log_path.read_text()
    assert code == 0, output
    assert "looks still in flight are abandoned" in output
    assert pending_events(outbox) > 0  # kept for the next start
    assert "Traceback" not in output
