"""``check`` verifies every file the config names; files ``auto`` may skip are notes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.core.config_files import check_files
from pipeline.core.config_loader import load_config_text

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clip_file(tmp_path: Path) -> Path:
    path = tmp_path / "porch.mp4"
    path.write_bytes(b"\0" * 16)
    return path


def camera(url: Path | str, extra: str = "") -> str:
    return f'[cameras.porch]\nurl = "{url}"\n{extra}\n'


def watch(backend: str = "auto") -> str:
    return (
        f'[[watches]]\nname = "w"\ncamera = "porch"\ncondition = "a cat"\nbackend = "{backend}"\n'
    )


def llama(tmp_path: Path, binary: str = "llama-server-that-is-not-there") -> str:
    return (
        f'[backends.local]\ntype = "llama_server"\nbinary = "{binary}"\n'
        f'model = "{tmp_path / "missing.gguf"}"\nmmproj = "{tmp_path / "missing-mmproj.gguf"}"\n'
    )


def keys(problems: list[object]) -> list[str]:
    return [str(p).split(": ")[0] for p in problems]


def test_missing_camera_file_is_an_error_and_a_missing_device_a_note(tmp_path: Path) -> None:
    cfg = load_config_text(
        camera(tmp_path / "gone.mp4") + '[cameras.usb]\nurl = "/dev/video-lookout-test"\n'
    )
    report = check_files(cfg)
    assert [str(p) for p in report.errors] == [
        f"cameras.porch.url: file '{tmp_path / 'gone.mp4'}' does not exist"
    ]
    assert keys(report.notes) == ["cameras.usb.url"]


def test_files_of_a_backend_a_watch_names_are_errors(tmp_path: Path, clip_file: Path) -> None:
    cfg = load_config_text(camera(clip_file) + llama(tmp_path) + watch("local"))
    report = check_files(cfg)
    assert keys(report.errors) == [
        "backends.local.binary",
        "backends.local.model",
        "backends.local.mmproj",
    ]
    assert "not found or not executable" in str(report.errors[0])
    assert report.notes == []


def test_files_of_a_backend_auto_may_skip_are_notes(tmp_path: Path, clip_file: Path) -> None:
    cfg = load_config_text(camera(clip_file) + llama(tmp_path) + watch("auto"))
    report = check_files(cfg)
    assert report.errors == []
    assert keys(report.notes) == [
        "backends.local.binary",
        "backends.local.model",
        "backends.local.mmproj",
    ]
    assert all("auto skips it" in str(note) for note in report.notes)


def test_a_backend_auto_use_names_is_needed(tmp_path: Path, clip_file: Path) -> None:
    auto = '[backends.pick]\ntype = "auto"\nuse = "local"\n'
    cfg = load_config_text(camera(clip_file) + llama(tmp_path) + auto + watch("auto"))
    assert keys(check_files(cfg).errors) == [
        "backends.local.binary",
        "backends.local.model",
        "backends.local.mmproj",
    ]


def test_clip_tokenizer_folder_and_onnx_detector(tmp_path: Path, clip_file: Path) -> None:
    encoder = tmp_path / "encoder.onnx"
    encoder.write_bytes(b"onnx")
    tokenizer = tmp_path / "tokenizer"
    tokenizer.mkdir()
    (tokenizer / "vocab.json").write_text("{}")
    detect = f'[cameras.porch.detect]\ntype = "onnx"\nmodel = "{tmp_path / "yolo.onnx"}"\n'
    clip = (
        f'[backends.clip]\ntype = "clip"\nimage_encoder = "{encoder}"\n'
        f'text_encoder = "{tmp_path}"\ntokenizer = "{tokenizer}"\n'
    )
    cfg = load_config_text(camera(clip_file) + detect + clip + watch("clip"))
    errors = {str(p).split(": ")[0]: str(p) for p in check_files(cfg).errors}
    assert set(errors) == {
        "cameras.porch.detect.model",
        "backends.clip.text_encoder",
        "backends.clip.tokenizer",
    }
    assert "is a folder, not a file" in errors["backends.clip.text_encoder"]
    assert "merges.txt" in errors["backends.clip.tokenizer"]


def test_a_program_with_a_folder_must_be_executable(tmp_path: Path, clip_file: Path) -> None:
    program = tmp_path / "llama-server"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o644)
    cfg = load_config_text(camera(clip_file) + llama(tmp_path, str(program)) + watch("local"))
    assert "backends.local.binary" in keys(check_files(cfg).errors)
    program.chmod(0o755)
    assert "backends.local.binary" not in keys(check_files(cfg).errors)


def run_check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "check", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_check_command_prints_notes_and_refuses_errors(tmp_path: Path, clip_file: Path) -> None:
    config = tmp_path / "pipeline.toml"
    config.write_text(camera(clip_file) + llama(tmp_path) + watch("auto"))
    result = run_check(config)
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stdout.splitlines() if line.startswith("note: ")]
    assert len(notes) == 3 and "backends.local.model" in notes[1], result.stdout
    assert ": ok (" in result.stdout

    config.write_text(camera(clip_file) + llama(tmp_path) + watch("local"))
    result = run_check(config)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    problems = [line.strip() for line in result.stderr.splitlines()[1:]]
    assert [p.split(": ")[0] for p in problems] == [
        "backends.local.binary",
        "backends.local.model",
        "backends.local.mmproj",
    ]
