"""A config file that is not UTF-8: one clear line and exit 2; a reload keeps the running config."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.app.process import App
from pipeline.core.config_loader import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]

VALID = b'[cameras.porch]\nurl = "rtsp://127.0.0.1:9/x"\n\n[reload]\nwatch_file = false\n'
LATIN1 = b'[cameras.porch]\nurl = "rtsp://127.0.0.1:9/caf\xe9"\n'


def lookout(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.mark.parametrize("command", ["check", "run"])
def test_not_utf8_is_one_line_and_exit_2(tmp_path: Path, command: str) -> None:
    path = tmp_path / "pipeline.toml"
    path.write_bytes(LATIN1)
    result = lookout(command, "-c", str(path))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert str(path) in lines[0]
    assert "not UTF-8" in lines[0] and "byte 0xe9 on line 2" in lines[0], lines[0]


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.toml"
    path.write_bytes(b"\xef\xbb\xbf" + VALID)
    assert list(load_config(path).cameras) == ["porch"]


def test_a_secret_file_that_is_not_utf8_names_its_key(tmp_path: Path) -> None:
    secret = tmp_path / "mqtt-password"
    secret.write_bytes(b"p\xe4ss\n")
    path = tmp_path / "pipeline.toml"
    path.write_bytes(VALID + f'[mqtt]\nusername = "u"\npassword_file = "{secret}"\n'.encode())
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = [str(p) for p in info.value.problems]
    assert len(problems) == 1 and problems[0].startswith("mqtt.password_file: "), problems
    assert "not UTF-8" in problems[0]


def test_reload_of_a_file_that_is_not_utf8_warns_and_keeps_the_config(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "pipeline.toml"
    path.write_bytes(VALID)
    app = App(load_config(path), path)
    app.start()
    try:
        running = app.config
        path.write_bytes(LATIN1)
        with caplog.at_level(logging.WARNING):
            assert app.reload("test") is False
        assert app.config is running
        assert app.reload_results == {"invalid": 1}
        warnings = [r for r in caplog.records if "not UTF-8" in r.getMessage()]
        assert [r.levelno for r in warnings] == [logging.WARNING], caplog.text
        assert "running config stays" in warnings[0].getMessage()
    finally:
        app.stop()
