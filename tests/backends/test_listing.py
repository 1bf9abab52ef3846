from __future__ import annotations

import io
import json
from pathlib import Path

from operators.backends.listing import backends_command, list_backends
from pipeline.core.config import LlamaServerBackendConfig, OpenAIBackendConfig
from tests.support.model_server import ScriptedModelServer
from tests.support.ports import free_port


def test_listing_shows_every_type_with_live_probes(
    model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    down = f"http://user:pw-secret-1@127.0.0.1:{free_port()}/v1"
    configs = {
        "vlm": OpenAIBackendConfig(base_url=model_server.base_url),
        "down": OpenAIBackendConfig(base_url=down),
        "local": LlamaServerBackendConfig(
            model=tmp_path / "m.gguf", binary=tmp_path / "llama-server"
        ),
    }
    rows = {r.name: r for r in list_backends(configs, probe_timeout_s=0.5)}
    assert rows["vlm"].available and "takes images" in (rows["vlm"].probe or "")
    assert not rows["down"].available and "unreachable" in rows["down"].reason
    assert not rows["local"].available and "not found" in rows["local"].reason
    assert {"onnx", "clip", "detections", "none"} <= set(rows)
    assert rows["none"].available and not rows["onnx"].configured

    out = io.StringIO()
    assert backends_command(configs, as_json=True, out=out) == 0
    text = out.getvalue()
    assert "pw-secret-1" not in text
    doc = json.loads(text.strip().splitlines()[-1])
    assert doc["auto"].startswith("auto chose 'vlm'")
    assert {b["name"] for b in doc["backends"]} >= {"vlm", "down", "local"}

    out = io.StringIO()
    backends_command({}, out=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split()[:3] == ["NAME", "TYPE", "AVAILABLE"]
    assert lines[-1].startswith("auto chose 'detections'")
