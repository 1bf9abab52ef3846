"""Every ``mqtt.tls`` refusal of ``python -m pipeline`` is one line naming the key, exit 2.

The broker is a real Mosquitto with a TLS listener that wants a client
certificate; ``run`` and ``check`` run as child processes, as a user runs them.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.certs import Certs, make_certs
from tests.support.mosquitto import Mosquitto, TlsListener

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def broker(mosquitto_factory: Callable[..., Mosquitto], certs: Certs) -> Mosquitto:
    listener = TlsListener(
        cafile=certs.ca,
        certfile=certs.server_cert,
        keyfile=certs.server_key,
        require_certificate=True,
    )
    return mosquitto_factory(tls=listener)


def write_config(path: Path, port: int, tls: dict[str, Path]) -> Path:
    lines = "".join(f'{key} = "{value}"\n' for key, value in tls.items())
    path.write_text(
        '[cameras.porch]\nurl = "rtsp://127.0.0.1:9/x"\n\n[reload]\nwatch_file = false\n\n'
        f"[mqtt]\nport = {port}\n\n[mqtt.tls]\n{lines}"
    )
    return path


def lookout(command: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", command, "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], config: Path, key: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{config}: "), lines[0]
    assert f" {key}: " in lines[0], lines[0]


@pytest.mark.parametrize(
    ("case", "key"),
    [
        ("wrong CA", "mqtt.tls.ca_file"),
        ("no client certificate", "mqtt.tls.cert_file"),
        ("plain port", "mqtt.tls"),
    ],
)
def test_run_refuses_a_broker_it_cannot_talk_tls_to(
    broker: Mosquitto, certs: Certs, tmp_path: Path, case: str, key: str
) -> None:
    assert broker.tls_port is not None
    client = {"cert_file": certs.client_cert, "key_file": certs.client_key}
    port, tls = {
        "wrong CA": (broker.tls_port, {"ca_file": certs.other_ca, **client}),
        "no client certificate": (broker.tls_port, {"ca_file": certs.ca}),
        "plain port": (broker.port, {"ca_file": certs.ca, **client}),
    }[case]
    config = write_config(tmp_path / "pipeline.toml", port, tls)
    assert_one_line(lookout("run", config), config, key)


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize(
    ("case", "key"),
    [
        ("missing CA", "mqtt.tls.ca_file"),
        ("missing client certificate", "mqtt.tls.cert_file"),
        ("key without certificate", "mqtt.tls.key_file"),
        ("CA that is no certificate", "mqtt.tls.ca_file"),
        ("key of another certificate", "mqtt.tls.cert_file"),
    ],
)
def test_files_that_cannot_work_are_refused_before_connecting(
    broker: Mosquitto, certs: Certs, tmp_path: Path, command: str, case: str, key: str
) -> None:
    assert broker.tls_port is not None
    garbage = tmp_path / "not-a-ca.pem"
    garbage.write_text("this is not a certificate\n")
    tls = {
        "missing CA": {"ca_file": tmp_path / "nope.pem"},
        "missing client certificate": {
            "ca_file": certs.ca,
            "cert_file": tmp_path / "nope.pem",
            "key_file": certs.client_key,
        },
        "key without certificate": {"ca_file": certs.ca, "key_file": certs.client_key},
        "CA that is no certificate": {"ca_file": garbage},
        "key of another certificate": {
            "ca_file": certs.ca,
            "cert_file": certs.client_cert,
            "key_file": certs.server_key,
        },
    }[case]
    config = write_config(tmp_path / "pipeline.toml", broker.tls_port, tls)
    assert_one_line(lookout(command, config), config, key)


def test_check_accepts_working_tls_files(broker: Mosquitto, certs: Certs, tmp_path: Path) -> None:
    assert broker.tls_port is not None
    tls = {"ca_file": certs.ca, "cert_file": certs.client_cert, "key_file": certs.client_key}
    config = write_config(tmp_path / "pipeline.toml", broker.tls_port, tls)
    result = lookout("check", config)
    assert result.returncode == 0, result.stderr
    assert ": ok (" in result.stdout
