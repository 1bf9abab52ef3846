"""Fixtures of the backend tests: OpenAI backends with fast timings, a stand-in llama-server."""

from __future__ import annotations

import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from operators.backends.llama_server import LlamaServerBackend
from operators.backends.openai import OpenAIBackend
from pipeline.core.config import LlamaServerBackendConfig
from tests.support.look_requests import openai_config


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
