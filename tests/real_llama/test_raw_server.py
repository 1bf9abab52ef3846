"""Smoke tests of the real llama-server with the tiny vision model, over plain http.client.

These check the server itself (what Lookout's backends rely on), not Lookout's code: health,
``/props`` reporting vision, ``/v1/models``, an image chat whose ``response_format`` JSON schema
yields schema-valid JSON, and two requests answered concurrently with ``--parallel 2``.

The model's weights are random, so only the shape of the answers is checked. The schema bounds
every string and number: unbounded strings would run to ``max_tokens`` and come back cut off.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from tests.support.llama import TINY_MMPROJ, TINY_MODEL, LlamaServer

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "condition_met": {"type": "boolean"},
        "next_run_in": {"type": "integer", "minimum": 1, "maximum": 300},
        "reasoning": {"type": "string", "maxLength": 200},
        "notification_message": {"type": "string", "maxLength": 100},
    },
    "required": ["condition_met", "next_run_in", "reasoning", "notification_message"],
    "additionalProperties": False,
}


def jpeg_data_url(width: int = 160, height: int = 120, seed: int = 0) -> str:
    image = Image.new("RGB", (width, height), (30 + seed * 40, 90, 160))
    draw = ImageDraw.Draw(image)
    draw.rectangle((20 + seed * 10, 30, 70 + seed * 10, 90), fill=(220, 200, 40))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def chat_body(seed: int = 0) -> dict[str, Any]:
    return {
        "model": "tiny-vlm",
        "messages": [
            {"role": "system", "content": "Decide whether this condition is met: a package is "
                                          "on the porch. Answer with JSON only."},
            {"role": "user", "content": [
                {"type": "text", "text": "Frame captured at 12:00:05."},
                {"type": "image_url", "image_url": {"url": jpeg_data_url(seed=seed)}},
            ]},
        ],
        "max_tokens": 600,
        "temperature": 0,
        "seed": 1 + seed,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "watch_answer", "schema": SCHEMA, "strict": True},
        },
    }  # fmt: skip


def assert_schema_valid(answer: Any) -> None:
    """Check an answer against SCHEMA (every rule the schema states)."""
    assert isinstance(answer, dict), answer
    assert sorted(answer) == sorted(SCHEMA["required"]), answer
    assert isinstance(answer["condition_met"], bool), answer
    run_in = answer["next_run_in"]
    assert isinstance(run_in, int) and not isinstance(run_in, bool), answer
    assert 1 <= run_in <= 300, answer
    assert isinstance(answer["reasoning"], str) and len(answer["reasoning"]) <= 200, answer
    message = answer["notification_message"]
    assert isinstance(message, str) and len(message) <= 100, answer


def chat_answer(server: LlamaServer, body: dict[str, Any]) -> dict[str, Any]:
    status, data = server.post("/v1/chat/completions", body, timeout=60.0)
    assert status == 200, data
    choice = data["choices"][0]
    assert choice["finish_reason"] == "stop", choice  # not cut off at max_tokens
    content = choice["message"]["content"]
    answer = json.loads(content)
    assert_schema_valid(answer)
    assert data["usage"]["prompt_tokens"] > 0
    return data


def test_health_is_public_and_ok(real_llama_server: LlamaServer) -> None:
    status, body = real_llama_server.get("/health", auth=False)
    assert (status, body) == (200, {"status": "ok"})


def test_props_report_vision_and_need_the_key(real_llama_server: LlamaServer) -> None:
    status, props = real_llama_server.get("/props")
    assert status == 200, props
    assert props["modalities"]["vision"] is True
    assert props["total_slots"] == 1
    status, _ = real_llama_server.get("/props", auth=False)
    assert status == 401


def test_models_lists_the_model_as_multimodal(real_llama_server: LlamaServer) -> None:
    status, listing = real_llama_server.get("/v1/models")
    assert status == 200, listing
    ids = [item["id"] for item in listing["data"]]
    assert len(ids) == 1 and TINY_MODEL.name in ids[0], listing
    capabilities = {cap for item in listing.get("models", []) for cap in item["capabilities"]}
    assert "multimodal" in capabilities, listing


def test_image_chat_with_json_schema_gives_schema_valid_json(
    real_llama_server: LlamaServer,
) -> None:
    data = chat_answer(real_llama_server, chat_body())
    # The image went through the projector: far more prompt tokens than the text alone.
    text_only = chat_body()
    text_only["messages"][1]["content"] = text_only["messages"][1]["content"][:1]
    text_data = chat_answer(real_llama_server, text_only)
    assert data["usage"]["prompt_tokens"] > text_data["usage"]["prompt_tokens"]


def test_two_parallel_slots_answer_two_concurrent_requests(
    llama_server_factory: Callable[..., LlamaServer],
) -> None:
    server = llama_server_factory(parallel=2)
    status, props = server.get("/props")
    assert status == 200 and props["total_slots"] == 2, props

    results: dict[int, Any] = {}
    start = threading.Barrier(2, timeout=10)

    def ask(seed: int) -> None:
        try:
            start.wait()
            results[seed] = chat_answer(server, chat_body(seed))
        except BaseException as exc:  # reported by the main thread
            results[seed] = exc

    threads = [threading.Thread(target=ask, args=(seed,)) for seed in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not any(thread.is_alive() for thread in threads)
    for seed in (0, 1):
        assert not isinstance(results.get(seed), BaseException), results.get(seed)
        assert seed in results


def test_committed_fixture_is_what_make_tiny_vlm_writes(
    llama_server_binary: Path, tmp_path: Path
) -> None:
    # The binary's cache folder holds llama.cpp's gguf-py, which the script falls back to.
    script = TINY_MODEL.parents[3] / "scripts" / "make-tiny-vlm"
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "GGUF_PY": str(llama_server_binary.parent / "gguf-py")},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for fixture in (TINY_MODEL, TINY_MMPROJ):
        assert (tmp_path / fixture.name).read_bytes() == fixture.read_bytes(), fixture.name
