"""What a model backend is handed in tests: look requests, JPEGs, frames, configs.

Example::

    backend = OpenAIBackend("vlm", openai_config(server.base_url))
    verdict = backend.look(look(jpeg=jpeg_bytes(320, 240)))
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from operators.backends.base import LookRequest
from pipeline.core.config import OpenAIBackendConfig
from pipeline.core.frame import Frame


def jpeg_bytes(
    width: int = 64, height: int = 48, color: tuple[int, int, int] = (40, 90, 200)
) -> bytes:
    """A small solid-colour JPEG."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def look(watch: str = "porch-package", jpeg: bytes | None = None, **kw: Any) -> LookRequest:
    """A look request of ``watch`` on camera ``porch``; ``kw`` sets the other fields."""
    kw.setdefault("camera", "porch")
    kw.setdefault("condition", "a package is on the porch")
    kw.setdefault("user_text", "Frame captured at 12:00:05.")
    return LookRequest(watch=watch, jpeg=jpeg if jpeg is not None else jpeg_bytes(), **kw)


def openai_config(base_url: str, **kw: Any) -> OpenAIBackendConfig:
    """An OpenAI backend config with fast test timings; ``kw`` overrides them."""
    kw.setdefault("connect_timeout_s", 1.0)
    kw.setdefault("read_timeout_s", 2.0)
    kw.setdefault("backoff_initial_s", 0.02)
    kw.setdefault("backoff_max_s", 0.2)
    return OpenAIBackendConfig(base_url=base_url, **kw)


def frame(width: int = 1280, height: int = 720) -> Frame:
    """A camera frame, left half red."""
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[:, : width // 2] = (200, 30, 30)
    return Frame(
        camera="porch", seq=1, wall_time=0.0, stream_time=None, width=width, height=height, rgb=rgb
    )
