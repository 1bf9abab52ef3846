"""The single-process path never imports Ray: ``check`` and a normal ``run``.

A stand-in ``ray`` package first on the path notes any import in a file (and
fails it); ``python -m pipeline check`` and ``python -m pipeline run`` (until
SIGTERM) must leave no note.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp: Path) -> dict[str, str]:
    fake = tmp / "fake" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "import pathlib, traceback\n"
        f"pathlib.Path({str(tmp / 'imported')!r}).write_text(''.join(traceback.format_stack()))\n"
        "raise ImportError('ray imported by the single-process path')\n"
    )
    return {**os.environ, "PYTHONPATH": f"{tmp / 'fake'}{os.pathsep}{ROOT}"}


def _config(tmp: Path) -> Path:
    path = tmp / "pipeline.toml"
    path.write_text(
        f'[cameras.walk]\nurl = "{ROOT / "demo" / "walkway.mp4"}"\nloop = true\n'
        '[backends.off]\ntype = "none"\n[activity]\nenabled = false\n'
        '[[watches]]\nname = "w"\ncamera = "walk"\ncondition = "people"\nbackend = "off"\n'
    )
    return path


def test_check_and_a_normal_run_never_import_ray(tmp_path: Path) -> None:
    env, cfg = _env(tmp_path), _config(tmp_path)
    check = subprocess.run([sys.executable, "-m", "pipeline", "check", "-c", str(cfg)],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert check.returncode == 0, check.stderr
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", "-c", str(cfg)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            wait_until(lambda: b"STATE w (walk): running" in log.read_bytes(), 30,
                       lambda: log.read_text(errors="replace"))  # fmt: skip
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0, log.read_text(errors="replace")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert not (tmp_path / "imported").exists(), (tmp_path / "imported").read_text()
