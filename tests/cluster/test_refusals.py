"""What runs only in a single process is refused in cluster mode, naming the key."""

import subprocess
import sys
from pathlib import Path

from pipeline.app.cluster import cluster_problems
from pipeline.core.config_loader import load_config_text

ROOT = Path(__file__).resolve().parents[2]
BASE = '[cameras.a]\nurl = "a.mp4"\n'


def test_managed_llama_server_and_web_page_are_refused() -> None:
    cfg = load_config_text(BASE + '[backends.local]\ntype = "llama_server"\nmodel = "m.gguf"\n'
                           "[web]\nenabled = true\n")  # fmt: skip
    keys = [p.path for p in cluster_problems(cfg)]
    assert keys == ["backends.local.type", "web.enabled"]
    assert cluster_problems(load_config_text(BASE)) == []


def test_run_ray_refuses_with_one_line_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "m.gguf").write_bytes(b"")
    cfg = tmp_path / "pipeline.toml"
    cfg.write_text(BASE + '[backends.local]\ntype = "llama_server"\nmodel = "m.gguf"\n')
    out = subprocess.run([sys.executable, "-m", "pipeline", "run", "--ray", "-c", str(cfg)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert (
        "backends.local.type: the managed llama_server backend runs only in a single process"
        in out.stderr
    )
    assert "Traceback" not in out.stderr


def test_run_ray_refuses_a_bad_address(tmp_path: Path) -> None:
    cfg = tmp_path / "pipeline.toml"
    cfg.write_text('[cameras.a]\nurl = "a.mp4"\n')
    (tmp_path / "a.mp4").write_bytes(b"")
    out = subprocess.run([sys.executable, "-m", "pipeline", "run", "--ray", "nohost", "-c", str(cfg)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 2 and "--ray: 'nohost' must be auto, local or HOST:PORT" in out.stderr
