"""A Lookout app with run-time control for tests: its config file and a model's answers.

Example::

    model = model_server_factory(responder=control_responder)
    app = app_factory(write_control_config(tmp_path, clip, broker, model, protocol="5"))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.clips import Clip
from tests.support.model_server import Reply, ScriptedModelServer
from tests.support.mosquitto import Mosquitto


def control_responder(request: Any) -> Reply | None:
    """A model that sees the gate open when the condition says so, and nothing else."""
    system = str(request["messages"][0]["content"])
    if "the gate is open" in system:
        return Reply(
            '{"condition_met": true, "next_run_in": 5, "reasoning": "The gate stands open.",'
            ' "notification_message": "Gate open"}'
        )
    return Reply('{"condition_met": false, "next_run_in": 2, "reasoning": "Nothing."}')


def write_control_config(
    folder: Path, clip: Clip, broker: Mosquitto, model: ScriptedModelServer, protocol: str
) -> Path:
    """Write ``pipeline.toml``: MQTT prefix ``ctl``, camera ``front`` looping ``clip``, the
    backend ``vlm`` on ``model``, watch ``fixed``, control enabled."""
    path = folder / "pipeline.toml"
    path.write_text(
        f"""
[mqtt]
host = "{broker.host}"
port = {broker.port}
topic_prefix = "ctl"
protocol = "{protocol}"

[cameras.front]
url = "{clip.path}"
loop = true

[cameras.front.zones.porch]
points = [[0, 0], [1, 0], [1, 1]]

[backends.vlm]
type = "openai"
base_url = "{model.base_url}"
retries = 0

[sinks.mqtt]
type = "mqtt"

[[watches]]
name = "fixed"
camera = "front"
condition = "a cat on the porch"
backend = "vlm"

[reload]
watch_file = false

[control]
enabled = true
"""
    )
    return path
