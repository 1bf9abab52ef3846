"""Helpers for the backend tests: requests, JPEGs, frames, a stand-in llama-server."""

from __future__ import annotations

import io
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from operators.backends.base import LookRequest
from operators.backends.llama_server import LlamaServerBackend
from operators.backends.openai import OpenAIBackend
from pipeline.core.config import LlamaServerBackendConfig, OpenAIBackendConfig
from pipeline.core.frame import Frame


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


FAKE = Path(__file__).with_name("fake_llama_server.py")


@pytest.fixture
def fake_binary(tmp_path: Path) -> Path:
    exe = tmp_path / "bin" / "llama-server"
    exe.parent.mkdir()
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


@pytest.fixture
def model_files(tmp_path: Path) -> tuple[Path, Path]:
    model = tmp_path / "smolvlm.gguf"
    mmproj = tmp_path / "mmproj.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 1024)
    mmproj.write_bytes(b"GGUF" + b"\0" * 512)
    return model, mmproj


@pytest.fixture
def make_llama(fake_binary: Path, model_files: tuple[Path, Path], tmp_path: Path) -> Iterator[Any]:
    made: list[LlamaServerBackend] = []

    def factory(**kw: Any) -> LlamaServerBackend:
        kw.setdefault("binary", fake_binary)
        kw.setdefault("model", model_files[0])
        kw.setdefault("mmproj", model_files[1])
        kw.setdefault("log_file", tmp_path / "logs" / "llama-server.log")
        kw.setdefault("startup_timeout_s", 20.0)
        backend = LlamaServerBackend("local", LlamaServerBackendConfig(**kw))
        made.append(backend)
        backend.start()
        return backend

    yield factory
    for backend in made:
        backend.stop()


def frame(width: int = 1280, height: int = 720) -> Frame:
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[:, : width // 2] = (200, 30, 30)
    return Frame(
        camera="porch", seq=1, wall_time=0.0, stream_time=None, width=width, height=height, rgb=rgb
    )
