"""Helpers for the backend tests."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from operators.backends.base import LookRequest
from operators.backends.openai import OpenAIBackend
from pipeline.config import OpenAIBackendConfig


def jpeg_bytes(
    width: int = 64, height: int = 48, color: tuple[int, int, int] = (40, 90, 200)
) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def look(watch: str = "porch-package", jpeg: bytes | None = None, **kw: Any) -> LookRequest:
    kw.setdefault("camera", "porch")
    kw.setdefault("condition", "a package is on the porch")
    kw.setdefault("user_text", "Frame captured at 12:00:05.")
    return LookRequest(watch=watch, jpeg=jpeg if jpeg is not None else jpeg_bytes(), **kw)


def openai_config(base_url: str, **kw: Any) -> OpenAIBackendConfig:
    kw.setdefault("connect_timeout_s", 1.0)
    kw.setdefault("read_timeout_s", 2.0)
    kw.setdefault("backoff_initial_s", 0.02)
    kw.setdefault("backoff_max_s", 0.2)
    return OpenAIBackendConfig(base_url=base_url, **kw)


@pytest.fixture
def make_backend() -> Any:
    """Build OpenAIBackends that are stopped after the test."""
    made: list[OpenAIBackend] = []

    def factory(base_url: str, **kw: Any) -> OpenAIBackend:
        backend = OpenAIBackend("vlm", openai_config(base_url, **kw))
        made.append(backend)
        return backend

    yield factory
    for backend in made:
        backend.stop()
