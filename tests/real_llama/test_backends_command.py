"""``python -m pipeline backends`` against the real llama-server: what each backend can do here.

Three configured backends: an ``openai`` one at a llama-server with the vision projector, one at
a llama-server without it, and a managed ``llama_server`` one on the real binary and the tiny
model files. The command probes the servers live and prints what it found.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson

from tests.support.llama import TINY_MMPROJ, TINY_MODEL, LlamaServer

ROOT = Path(__file__).resolve().parents[2]


def write_config(path: Path, vision: LlamaServer, text_only: LlamaServer, binary: Path) -> None:
    path.write_text(
        f"""
[cameras.front]
url = "rtsp://127.0.0.1:9/never-opened"

[backends.vlm]
type = "openai"
base_url = "{vision.openai_base_url}"

[backends.text]
type = "openai"
base_url = "{text_only.openai_base_url}"

[backends.local]
type = "llama_server"
binary = "{binary}"
model = "{TINY_MODEL}"
mmproj = "{TINY_MMPROJ}"
log_file = "{path.parent / "llama-server.log"}"

[[watches]]
name = "package"
camera = "front"
condition = "a package is on the porch"
backend = "vlm"
"""
    )


def run_backends(config: Path, key: str, *extra: str) -> str:
    env = {**os.environ, "LOOKOUT_BACKENDS__VLM__API_KEY": key}
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "backends", "-c", str(config), *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert key not in result.stdout + result.stderr
    return result.stdout


def test_backends_lists_the_real_servers_capabilities(
    llama_server_binary: Path,
    llama_server_factory: Callable[..., LlamaServer],
    tmp_path: Path,
) -> None:
    vision = llama_server_factory(api_key="lookout-backends-key")
    text_only = llama_server_factory(mmproj=None)
    config = tmp_path / "pipeline.toml"
    write_config(config, vision, text_only, llama_server_binary)

    doc = orjson.loads(run_backends(config, "lookout-backends-key", "--json"))
    rows = {row["name"]: row for row in doc["backends"]}
    vlm = rows["vlm"]
    assert vlm["available"] is True, vlm
    assert vlm["reason"] == f"reachable, model {TINY_MODEL} takes images"
    assert vlm["probe"].startswith(vlm["reason"] + " (") and vlm["probe"].endswith(" ms)")
    text = rows["text"]
    assert text["available"] is False, text
    assert text["reason"] == f"reachable, but model {TINY_MODEL} cannot take images"
    local = rows["local"]
    assert local["type"] == "llama_server" and local["available"] is True, local
    assert local["reason"] == f"{llama_server_binary} and model files present ({TINY_MODEL.name})"
    assert local["ram_mb"] > 0 and local["needs_gpu"] is False
    assert not (tmp_path / "llama-server.log").exists()  # listing does not start a server

    table = run_backends(config, "lookout-backends-key")
    line = next(row for row in table.splitlines() if row.startswith("vlm "))
    assert "openai" in line and " yes " in line and "takes images" in line
