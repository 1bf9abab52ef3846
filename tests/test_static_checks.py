"""The code stays ruff-clean, ruff-formatted, mypy-strict clean and layered (as pyproject.toml says)."""

from __future__ import annotations

import ast
import re
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


# ---------------------------------------------------------------- broad excepts

BROAD = {"Exception", "BaseException"}
HANDS_ON = {"on_error", "push_error", "set_exception"}
"""Calls that hand the exception on to whoever reports it, matched by name (a leading
underscore ignored) with the exception caught among the arguments: an Rx observer's
``on_error`` (the error travels down the stream to a subscriber that ends the watch or
logs it with ``log_unexpected``), ``push_error`` (operators.serial's queued
``on_error``), and a Future's ``set_exception`` (whoever waits on it gets it raised)."""


def _broad(handler: ast.ExceptHandler) -> bool:
    """A bare ``except:``, ``except Exception`` / ``BaseException``, or a tuple holding one."""
    kinds = handler.type
    if kinds is None:
        return True
    names = kinds.elts if isinstance(kinds, ast.Tuple) else [kinds]
    return any(isinstance(n, ast.Name) and n.id in BROAD for n in names)


def _own_nodes(body: list[ast.stmt]) -> list[ast.AST]:
    """Every node of ``body``, without descending into nested functions or classes."""
    found: list[ast.AST] = []
    todo: list[ast.AST] = list(body)
    while todo:
        node = todo.pop()
        found.append(node)
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            todo.extend(ast.iter_child_nodes(node))
    return found


def _accounted_for(handler: ast.ExceptHandler) -> bool:
    """The handler re-raises, calls ``log_unexpected``, or hands the exception on."""
    for node in _own_nodes(handler.body):
        if isinstance(node, ast.Raise):
            return True
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = (func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")).lstrip("_")
        if name == "log_unexpected":
            return True
        passes_exc = handler.name is not None and any(
            isinstance(arg, ast.Name) and arg.id == handler.name for arg in node.args
        )
        if name in HANDS_ON and passes_exc:
            return True
    return False


def test_every_broad_except_reraises_or_logs_the_traceback() -> None:
    """Every broad ``except`` in the packages re-raises, logs the traceback, or hands it on.

    Broad: a bare ``except:``, ``except Exception`` or ``except BaseException`` (also in
    a tuple). Accounted for: a ``raise`` anywhere in its block (the same exception or a
    plain-words one), a call of ``pipeline.core.logs.log_unexpected`` (the redacted
    traceback at DEBUG, once at ERROR per kind), or a ``HANDS_ON`` call with the
    exception. Otherwise an unexpected fault leaves one line without a traceback, or
    nothing. Nested functions inside the block do not count.
    """
    silent: list[str] = []
    for package in ("pipeline", "operators", "sources", "sinks"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            handlers = [n for n in ast.walk(tree) if isinstance(n, ast.ExceptHandler)]
            silent += [
                f"{path.relative_to(ROOT)}:{h.lineno}"
                for h in sorted(handlers, key=lambda h: h.lineno)
                if _broad(h) and not _accounted_for(h)
            ]
    assert silent == [], "broad excepts that neither re-raise nor log_unexpected:\n" + "\n".join(
        silent
    )


WAIVER = re.compile(r"#\s*no" + r"qa\b[^#]*\bC90")


def test_no_complexity_waivers() -> None:
    """Complexity is kept under ruff's C901 limit (15) by the code itself, never by a waiver."""
    waived = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("pipeline", "operators", "sources", "sinks", "benchmarks", "tests")
        for path in (ROOT / folder).rglob("*.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if WAIVER.search(line)
    ]
    assert waived == []
