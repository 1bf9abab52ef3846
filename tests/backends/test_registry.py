from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from operators.backends.registry import build_backend, resolve_auto
from pipeline.core.config import (
    AutoBackendConfig,
    DetectionsBackendConfig,
    NoneBackendConfig,
    OpenAIBackendConfig,
)
from tests.support.model_server import ScriptedModelServer
from tests.support.ports import free_port


def test_no_backends_configured_picks_detections() -> None:
    backend, why = resolve_auto({})
    assert backend.type == "detections"
    assert why.startswith("auto chose 'detections'")


def test_without_detection_sources_picks_none() -> None:
    backend, why = resolve_auto({}, has_detections=False)
    assert backend.type == "none" and "no detection source" in why


def test_reachable_openai_server_wins(model_server: ScriptedModelServer) -> None:
    configs = {
        "det": DetectionsBackendConfig(),
        "vlm": OpenAIBackendConfig(base_url=model_server.base_url),
    }
    backend, why = resolve_auto(configs)
    try:
        assert backend.name == "vlm" and backend.type == "openai"
        assert why == (
            f"auto chose 'vlm' (openai at {model_server.base_url}): "
            "reachable, model scripted-vlm takes images"
        )
    finally:
        backend.stop()


def test_unreachable_or_blind_servers_are_skipped_with_reasons(
    model_server_factory: Callable[..., ScriptedModelServer],
) -> None:
    blind = model_server_factory(vision=False, model_id="llm")
    configs = {
        "down": OpenAIBackendConfig(base_url=f"http://127.0.0.1:{free_port()}/v1"),
        "blind": OpenAIBackendConfig(base_url=blind.base_url),
        "det": DetectionsBackendConfig(consecutive_looks=3),
    }
    backend, why = resolve_auto(configs, AutoBackendConfig(probe_timeout_s=0.5))
    assert backend.name == "det"
    assert "'down'" in why and "unreachable" in why
    assert "'blind'" in why and "cannot take images" in why


def test_explicit_use_wins_and_unknown_use_is_a_plain_error() -> None:
    configs = {"quiet": NoneBackendConfig(), "det": DetectionsBackendConfig()}
    backend, why = resolve_auto(configs, AutoBackendConfig(use="quiet"))
    assert backend.name == "quiet" and "auto.use" in why
    with pytest.raises(ValueError, match="not configured"):
        resolve_auto(configs, AutoBackendConfig(use="missing"))


def test_build_backend_refuses_auto() -> None:
    with pytest.raises(ValueError, match="resolve_auto"):
        build_backend("a", AutoBackendConfig())


def test_api_key_in_url_is_not_in_the_reason() -> None:
    url = f"http://user:hunter22@127.0.0.1:{free_port()}/v1"
    _, why = resolve_auto(
        {"v": OpenAIBackendConfig(base_url=url)}, AutoBackendConfig(probe_timeout_s=0.3)
    )
    assert "hunter22" not in why


def test_hardware_tier_picks_a_runnable_onnx_model_before_detections(tmp_path: Path) -> None:
    from pipeline.core.config import ClipBackendConfig, OnnxBackendConfig
    from tests.support.tiny_models import colour_classifier

    model = colour_classifier(tmp_path / "c.onnx")
    configs = {
        "clip": ClipBackendConfig(
            image_encoder=tmp_path / "no.onnx",
            text_encoder=tmp_path / "no.onnx",
            tokenizer=tmp_path,
        ),
        "cls": OnnxBackendConfig(model=model, match_classes=["red"], ram_mb=64),
        "det": DetectionsBackendConfig(),
    }
    backend, why = resolve_auto(configs)
    assert backend.name == "cls" and why.startswith("auto chose 'cls' (onnx): c.onnx")
