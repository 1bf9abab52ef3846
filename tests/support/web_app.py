"""A Lookout with the web page for tests: its config (the demo clip as camera) and answers.

Example::

    model_server.default = answer()
    app = App(load_config(path := write_config(tmp_path, model_server.base_url)), path)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.support.model_server import Reply

ROOT = Path(__file__).resolve().parents[2]  # tests/support -> the repository
TOKEN = "web-test-token-7d1f"
HTML_REASONING = '<script>alert("x")</script><b>bold</b> a grey heron by the pond'


def answer(reasoning: str = HTML_REASONING, met: bool = False, next_run_in: int = 1) -> Reply:
    """A model answer whose reasoning holds HTML (the page must show it as text)."""
    return Reply(json.dumps({"condition_met": met, "next_run_in": next_run_in,
                             "reasoning": reasoning, "notification_message": ""}))  # fmt: skip


def write_config(folder: Path, model_url: str, *, token: str | None = TOKEN,
                 extra: str = "") -> Path:  # fmt: skip
    """Write ``pipeline.toml`` in ``folder``: the demo clip, the model, the web page on."""
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
