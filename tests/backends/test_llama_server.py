"""The managed llama-server backend, with a stand-in executable (no model weights here)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from operators.backends.llama_server import LlamaServerBackend
from pipeline.core.config import LlamaServerBackendConfig
from pipeline.core.verdict import AnswerKind
from tests.support.look_requests import frame, look
from tests.support.waiting import wait_until


def test_missing_files_are_unavailable_with_reasons(tmp_path: Path, fake_binary: Path) -> None:
    cfg = LlamaServerBackendConfig(binary=fake_binary, model=tmp_path / "nope.gguf")
    assert (
        LlamaServerBackend("x", cfg).availability().reason
        == f"model file {tmp_path / 'nope.gguf'} not found"
    )
    cfg = LlamaServerBackendConfig(binary=tmp_path / "missing", model=tmp_path / "nope.gguf")
    assert "binary" in LlamaServerBackend("x", cfg).availability().reason
    (tmp_path / "m.gguf").write_bytes(b"x")
    cfg = LlamaServerBackendConfig(binary=fake_binary, model=tmp_path / "m.gguf")
    avail = LlamaServerBackend("x", cfg).availability()
    assert not avail.available and "cannot take images" in avail.reason


def test_lazy_start_health_wait_shrunk_frame_and_log(make_llama: Any, tmp_path: Path) -> None:
    backend = make_llama(extra_args=["--no-webui"])
    assert backend.availability().available
    assert not backend.running  # lazy
    verdict = backend.judge(look(frame=frame()))
    assert verdict.kind is AnswerKind.NOT_MET and verdict.next_run_in == 9.0
    assert backend.running and backend.starts == 1
    log_text = (tmp_path / "logs" / "llama-server.log").read_text()
    assert "==== lookout session" in log_text and "--mmproj" in log_text
    assert "loading model" in log_text and "healthy on port" in log_text
    backend.stop()
    assert not backend.running
    assert "stopped (shutdown)" in (tmp_path / "logs" / "llama-server.log").read_text()


def test_frames_are_shrunk_for_speed(make_llama: Any) -> None:
    import io

    from operators.backends.image_fit import shrink_jpeg

    data = shrink_jpeg(frame(1920, 1080), 512, 288, 40)
    assert Image.open(io.BytesIO(data)).size == (512, 288)
    tall = shrink_jpeg(frame(480, 640), 512, 288, 40)
    assert Image.open(io.BytesIO(tall)).size == (216, 288)
    small = shrink_jpeg(frame(320, 180), 512, 288, 40)
    assert Image.open(io.BytesIO(small)).size == (320, 180)


def test_idle_stop_then_restart_on_next_look(make_llama: Any) -> None:
    backend = make_llama(idle_unload_s=0.5)
    assert backend.judge(look()).kind is AnswerKind.NOT_MET
    pid = backend.pid
    wait_until(lambda: not backend.running, 10, "the idle server to stop")
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert backend.judge(look()).kind is AnswerKind.NOT_MET
    assert backend.starts == 2


def test_crash_restarts_with_backoff_and_keeps_the_log(
    make_llama: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import operators.backends.llama_server as mod

    monkeypatch.setattr(mod, "RESTART_BACKOFF_INITIAL_S", 0.3)
    monkeypatch.setenv("FAKE_LLAMA_CRASH_ON", "2")
    backend = make_llama()
    assert backend.judge(look()).kind is AnswerKind.NOT_MET
    crashed = backend.judge(look())  # the server dies on this request
    assert crashed.kind is AnswerKind.UNAVAILABLE
    waiting = backend.judge(look())  # crash noticed: backoff, no restart yet
    assert waiting.kind is AnswerKind.UNAVAILABLE and "restarting in" in (waiting.error or "")
    time.sleep(0.4)
    assert backend.judge(look()).kind is AnswerKind.NOT_MET
    assert backend.starts == 2
    text = (tmp_path / "logs" / "llama-server.log").read_text()
    assert text.count("==== lookout session") == 2
    assert "GGML_ASSERT: fake crash" in text and "exited with code 3" in text


def test_startup_failure_is_unavailable_not_an_exception(make_llama: Any, tmp_path: Path) -> None:
    backend = make_llama(extra_args=[], mmproj=tmp_path / "mmproj.gguf")
    (tmp_path / "mmproj.gguf").unlink()
    verdict = backend.judge(look())
    assert verdict.kind is AnswerKind.UNAVAILABLE and "mmproj" in (verdict.error or "")
