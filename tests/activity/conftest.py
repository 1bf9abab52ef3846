"""A running Lookout with the web page: the demo clip as camera, the scripted model server."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.app.process import App
from pipeline.core.config_loader import load_config
from tests.support.model_server import Reply, ScriptedModelServer

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "web-test-token-7d1f"
HTML_REASONING = '<script>alert("x")</script><b>bold</b> a grey heron by the pond'


def answer(reasoning: str = HTML_REASONING, met: bool = False, next_run_in: int = 1) -> Reply:
    return Reply(json.dumps({"condition_met": met, "next_run_in": next_run_in,
                             "reasoning": reasoning, "notification_message": ""}))  # fmt: skip


def write_config(folder: Path, model_url: str, *, token: str | None = TOKEN,
                 extra: str = "") -> Path:  # fmt: skip
    shutil.copy(ROOT / "demo" / "walkway.mp4", folder / "walkway.mp4")
    token_line = f'token = "{token}"\n' if token else ""
    text = f"""
[cameras.walkway]
url = "walkway.mp4"
loop = true
realtime = true

[backends.vlm]
type = "openai"
base_url = "{model_url}"
retries = 0

[[watches]]
name = "heron"
camera = "walkway"
condition = "a heron is by the pond"
backend = "vlm"
mode = "repeat"
max_duration_minutes = 0

[sinks.console]
type = "console"
states = false

[reload]
watch_file = false

[web]
enabled = true
port = 0
poll_s = 0.5
reports = "reports"
{token_line}
{extra}
"""
    path = folder / "pipeline.toml"
    path.write_text(text)
    return path


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or check}")


@pytest.fixture
def app_factory(tmp_path: Path) -> Iterator[Callable[..., App]]:
    started: list[App] = []

    def factory(model: ScriptedModelServer, **kw: Any) -> App:
        path = write_config(tmp_path, model.base_url, **kw)
        app = App(load_config(path), path)
        started.append(app)
        app.start()
        return app

    yield factory
    for app in started:
        app.stop()
