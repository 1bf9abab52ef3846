"""The code stays ruff-clean, ruff-formatted, mypy-strict clean and layered (as pyproject.toml says)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy"],
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_static_check_is_clean(command: list[str], tmp_path: Path) -> None:
    extra = ["--cache-dir", str(tmp_path / "cache")] if command[0] == "mypy" else []
    result = subprocess.run(
        [sys.executable, "-m", *command, *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_import_linter_contracts_are_kept() -> None:
    """The layers and the no-cycles contracts of ``[tool.importlinter]`` hold."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


LAYERS = {
    "pipeline.core": ("pipeline.net", "pipeline.app", "sources", "operators", "sinks"),
    "pipeline.net": ("pipeline.app", "sources", "operators", "sinks"),
    "sources": ("pipeline.app",),
    "operators": ("pipeline.app",),
    "sinks": ("pipeline.app",),
}


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_each_layer_imports_alone(layer: str) -> None:
    """Importing every module of a layer pulls in nothing of the layers above it."""
    package = ROOT.joinpath(*layer.split("."))
    modules = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in package.rglob("*.py")
    )
    above = LAYERS[layer]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules\n"
        f"             if any(m == a or m.startswith(a + '.') for a in {above!r}))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
