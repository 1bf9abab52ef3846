"""pipeline.toml validation: key paths in every message, never a secret."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.core.config import CameraConfig, OpenAIBackendConfig
from pipeline.core.config_loader import ConfigError, load_config, load_config_text

ROOT = Path(__file__).resolve().parents[2]
SECRET = "S3cr3tPw!"

MINIMAL = """
[cameras.porch]
url = "rtsp://10.0.0.5/stream"

[[watches]]
name = "package"
camera = "porch"
condition = "a package is on the porch"
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config_text(text)
    return [str(p) for p in info.value.problems]


def test_minimal_document_is_valid_with_defaults() -> None:
    cfg = load_config_text(MINIMAL)
    watch = cfg.watches[0]
    assert watch.camera == "porch"
    assert watch.backend == "auto"
    assert watch.max_duration_minutes == 60
    assert cfg.cameras["porch"].decode == "on_demand"
    assert list(cfg.sinks) == ["console"]
    assert cfg.mqtt is None


def test_shipped_config_is_valid() -> None:
    cfg = load_config(ROOT / "pipeline.toml")
    camera = cfg.cameras["walkway"]
    assert Path(camera.url).is_file(), "the demo clip must ship with the repo"
    assert cfg.watches


@pytest.mark.parametrize(
    ("text", "path", "words"),
    [
        (MINIMAL + "colour = 'red'\n", "watches[0].colour", "unknown key"),
        (
            MINIMAL.replace(
                'url = "rtsp://10.0.0.5/stream"', 'url = "rtsp://10.0.0.5/s"\nloop = "often"'
            ),
            "cameras.porch.loop",
            "boolean",
        ),
        (
            MINIMAL.replace('camera = "porch"', 'camera = "gate"'),
            "watches[0].camera",
            "unknown camera 'gate'",
        ),
        (
            MINIMAL + "zones = ['door']\n",
            "watches[0].zones",
            "no zone 'door'",
        ),
        (
            MINIMAL + "[cameras.porch.zones.mat]\npoints = [[0, 0], [1, 1]]\n",
            "cameras.porch.zones.mat.points",
            "at least 3 points",
        ),
        (
            MINIMAL.replace("rtsp://10.0.0.5/stream", "ftp://10.0.0.5/x"),
            "cameras.porch.url",
            "unsupported scheme",
        ),
        (
            MINIMAL.replace("rtsp://10.0.0.5/stream", "rtsp:///nohost"),
            "cameras.porch.url",
            "no host",
        ),
        (MINIMAL + "backend = 'vlm'\n", "watches[0].backend", "unknown backend 'vlm'"),
        (MINIMAL + "sinks = ['phone']\n", "watches[0].sinks[0]", "unknown sink 'phone'"),
        (MINIMAL + "[sinks.m]\ntype = 'mqtt'\n", "sinks.m", "needs an [mqtt] table"),
        (MINIMAL + "[backends.v]\ntype = 'gpt'\n", "backends.v", "unknown type"),
        (
            MINIMAL + "[backends.v]\ntype = 'openai'\nbase_url = 'http://h/v1'\nmodle = 'x'\n",
            "backends.v.modle",
            "unknown key",
        ),
        (
            MINIMAL + "max_duration_minutes = -1\n",
            "watches[0].max_duration_minutes",
            "greater than or equal",
        ),
    ],
)
def test_bad_documents_name_the_key_path(text: str, path: str, words: str) -> None:
    found = problems(text)
    assert any(p.startswith(f"{path}:") and words in p for p in found), found


def test_second_watch_error_names_its_index() -> None:
    text = (
        MINIMAL
        + '\n[[watches]]\nname = "b"\ncamera = "porch"\ncondition = "x y z"\nzones = ["nope"]\n'
    )
    assert any(p.startswith("watches[1].zones:") for p in problems(text))


def test_duplicate_watch_names_are_refused() -> None:
    again = '\n[[watches]]\nname = "package"\ncamera = "porch"\ncondition = "another thing"\n'
    assert any(
        p.startswith("watches[1].name:") and "used twice" in p for p in problems(MINIMAL + again)
    )


def test_toml_syntax_error_names_line_and_column() -> None:
    found = problems("[cameras.porch]\nurl = 'a.mp4'\nloop = tru\n")
    assert len(found) == 1
    assert "line 3" in found[0] and "column" in found[0]


@pytest.mark.parametrize(
    "text",
    [
        MINIMAL.replace("rtsp://10.0.0.5/stream", f"rtsp://admin:{SECRET}@10.0.0.5:99999/s"),
        MINIMAL.replace("rtsp://10.0.0.5/stream", f"gopher://admin:{SECRET}@10.0.0.5/s"),
        MINIMAL
        + f"[backends.v]\ntype = 'openai'\nbase_url = 'ftp://u:{SECRET}@h/v1'\napi_key = '{SECRET}'\n",
        MINIMAL + f"[mqtt]\npassword = '{SECRET}'\nport = 'x'\n",
        MINIMAL
        + f"[sinks.w]\ntype = 'webhook'\nurl = 'http://u:{SECRET}@h:0x/'\nsecret = '{SECRET}'\n",
    ],
)
def test_errors_never_contain_the_secret(text: str) -> None:
    found = problems(text)
    assert found
    assert not any(SECRET in p for p in found), found


def test_environment_overrides_and_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("file-key\n")
    monkeypatch.setenv("LOOKOUT_MQTT__HOST", "broker.lan")
    monkeypatch.setenv("LOOKOUT_MQTT__PASSWORD", "env-pw")
    monkeypatch.setenv("LOOKOUT_CAMERAS__PORCH__PASSWORD", "cam-pw")
    text = (
        MINIMAL.replace(
            'url = "rtsp://10.0.0.5/stream"', 'url = "rtsp://10.0.0.5/stream"\nusername = "admin"'
        )
        + f"[mqtt]\nhost = 'localhost'\n[backends.v]\ntype = 'openai'\nbase_url = 'http://h/v1'\napi_key_file = '{key_file}'\n"
    )
    cfg = load_config_text(text)
    assert cfg.mqtt is not None
    assert cfg.mqtt.host == "broker.lan"
    assert cfg.mqtt.resolved_password() == "env-pw"
    assert cfg.cameras["porch"].resolved_url() == "rtsp://admin:cam-pw@10.0.0.5/stream"
    backend = cfg.backends["v"]
    assert isinstance(backend, OpenAIBackendConfig)
    assert backend.resolved_api_key() == "file-key"
    assert "env-pw" not in repr(cfg) and "cam-pw" not in repr(cfg)


def test_missing_secret_file_is_reported() -> None:
    found = problems(MINIMAL + "[mqtt]\npassword_file = '/nonexistent/pw'\n")
    assert any(p.startswith("mqtt.password_file:") for p in found)


def test_camera_url_accepts_paths_and_devices() -> None:
    assert CameraConfig(url="clips/a.mp4").url == "clips/a.mp4"
    assert CameraConfig(url="/dev/video0").url == "/dev/video0"


def run_check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "check", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_check_command_exit_codes_and_output(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(MINIMAL)
    ok = run_check(good)
    assert ok.returncode == 0, ok.stderr
    assert "ok" in ok.stdout

    bad = tmp_path / "bad.toml"
    bad.write_text(
        MINIMAL.replace("rtsp://10.0.0.5/stream", f"rtsp://admin:{SECRET}@10.0.0.5:99999/s")
        + "zones = ['door']\nwhat = 1\n"
    )
    result = run_check(bad)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stderr + result.stdout
    lines = [line.strip() for line in result.stderr.splitlines()[1:]]
    assert any(line.startswith("cameras.porch.url:") for line in lines), lines
    assert any(line.startswith("watches[0].what:") for line in lines), lines


def test_help_shows_defaults_and_environment() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0
    assert "LOOKOUT_MQTT__PASSWORD" in result.stdout
    assert "default: pipeline.toml" in result.stdout


def test_config_reference_is_current() -> None:
    from pipeline.app.config_reference import render

    committed = (ROOT / "docs" / "config-reference.md").read_text()
    assert committed.strip() == render().strip(), (
        "docs/config-reference.md is stale: run python -m pipeline.app.config_reference > docs/config-reference.md"
    )
