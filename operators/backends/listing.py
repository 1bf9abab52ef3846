"""``python -m pipeline backends [--json]``: every backend, whether it can run here, and why.

Example:
    >>> rows = list_backends({}, probe=False)
    >>> [r.type for r in rows]
    ['openai', 'llama_server', 'onnx', 'clip', 'detections', 'none']
    >>> rows[-1].available
    True
"""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, TextIO

import orjson

from operators.backends.hardware import probe_hardware
from operators.backends.registry import BACKEND_TYPES, build_backend, resolve_auto
from pipeline.core.config import AutoBackendConfig, BackendConfig
from pipeline.core.logs import log_unexpected
from pipeline.core.redact import redact

log = logging.getLogger("lookout.backends")

_TYPE_NOTES = {
    "openai": "an OpenAI-compatible chat server (llama-server, vLLM, Ollama, LM Studio, cloud)",
    "llama_server": "a local llama-server that Lookout starts and stops",
    "onnx": "a local ONNX classifier or detector",
    "clip": "zero-shot classification with CLIP-style ONNX encoders",
    "detections": "no model: decides from detections",
    "none": "no model: frames only, never met",
}
_TYPE_RAM_MB = {"openai": 0, "llama_server": 2048, "onnx": 2048, "clip": 1024}


@dataclass(frozen=True, slots=True)
class BackendRow:
    """One line of the listing.

    Attributes:
        name: the configured name, or the type for built-in/unconfigured ones.
        type: the backend type.
        configured: it has a ``[backends.NAME]`` table.
        available: it can run here now.
        reason: why (or why not), one line, redacted.
        needs_gpu: it needs a GPU to be useful.
        ram_mb: approximate memory it needs here (0: remote or none).
        probe: the live probe's result for configured backends (``None`` when not probed).
    """

    name: str
    type: str
    configured: bool
    available: bool
    reason: str
    needs_gpu: bool
    ram_mb: int
    probe: str | None = None


def _unconfigured(kind: str) -> BackendRow:
    if kind in ("detections", "none"):
        return BackendRow(kind, kind, False, True, _TYPE_NOTES[kind], False, 0)
    hint = "not configured"
    if kind == "llama_server":
        found = shutil.which("llama-server")
        hint += f"; llama-server {'found at ' + found if found else 'not on PATH'}"
    elif kind in ("onnx", "clip"):
        providers = probe_hardware().providers
        hint += f"; onnxruntime providers: {', '.join(providers) or 'none'}"
    return BackendRow(kind, kind, False, False, hint, False, _TYPE_RAM_MB.get(kind, 0))


def list_backends(
    configs: Mapping[str, BackendConfig],
    *,
    probe: bool = True,
    probe_timeout_s: float = 2.0,
) -> list[BackendRow]:
    """List configured backends (probed live when ``probe``), then the types not configured.

    Never raises for a broken backend: its row says what is wrong.
    """
    rows: list[BackendRow] = []
    for name, cfg in configs.items():
        if cfg.type == "auto":
            continue
        try:
            backend = build_backend(name, cfg)
        except Exception as exc:
            log_unexpected(log, f"backend {name}: cannot be built", exc, expected=(Exception,))
            reason = redact(f"{type(exc).__name__}: {exc}")
            rows.append(BackendRow(name, cfg.type, True, False, reason, False, 0))
            continue
        probe_text: str | None = None
        try:
            if not probe:
                avail_ok, reason = True, "not probed"
            elif backend.type == "openai":
                result = backend.probe(timeout_s=probe_timeout_s)  # type: ignore[attr-defined]
                probe_text = f"{result.summary()} ({result.latency_s * 1000:.0f} ms)"
                avail_ok = result.usable
                reason = result.summary()
            else:
                avail = backend.availability()
                avail_ok, reason = avail.available, avail.reason
                probe_text = reason
        except Exception as exc:
            log_unexpected(log, f"backend {name}: probe failed", exc, expected=(Exception,))
            avail_ok, reason = False, f"{type(exc).__name__}: {exc}"
        finally:
            backend.stop()
        rows.append(
            BackendRow(
                name,
                backend.type,
                True,
                avail_ok,
                redact(reason),
                backend.needs_gpu,
                backend.ram_mb,
                redact(probe_text) if probe_text else None,
            )
        )
    configured_types = {r.type for r in rows}
    rows += [_unconfigured(kind) for kind in BACKEND_TYPES if kind not in configured_types]
    return rows


def format_backends(rows: list[BackendRow], auto_line: str | None = None) -> str:
    """Render the listing as an aligned text table (plus the auto choice)."""
    header = ("NAME", "TYPE", "AVAILABLE", "GPU", "RAM", "WHY")
    table = [header] + [
        (
            r.name + ("" if r.configured else " *"),
            r.type,
            "yes" if r.available else "no",
            "yes" if r.needs_gpu else "no",
            f"{r.ram_mb} MB" if r.ram_mb else "-",
            r.reason,
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
             for row in table]  # fmt: skip
    lines.append("* not configured (built-in or available type)")
    if auto_line:
        lines.append(auto_line)
    return "\n".join(lines)


def backends_command(
    configs: Mapping[str, BackendConfig],
    *,
    as_json: bool = False,
    auto: AutoBackendConfig | None = None,
    has_detections: bool = True,
    out: TextIO | None = None,
) -> int:
    """Print the listing (text or one JSON object); return the exit code (always 0).

    Args:
        configs: ``LookoutConfig.backends``.
        as_json: print ``{"backends": [...], "auto": "..."}`` instead of a table.
        auto: the ``auto`` table, if one is configured.
        has_detections: whether any camera has a detection source (for the auto line).
        out: where to print (standard output by default).
    """
    out = out or sys.stdout
    timeout = auto.probe_timeout_s if auto else 2.0
    rows = list_backends(configs, probe_timeout_s=timeout)
    try:
        chosen, auto_line = resolve_auto(configs, auto, has_detections=has_detections)
        chosen.stop()
    except ValueError as exc:
        auto_line = f"auto: {exc}"
    if as_json:
        doc: dict[str, Any] = {"backends": [asdict(r) for r in rows], "auto": auto_line}
        out.write(orjson.dumps(doc).decode() + "\n")
    else:
        out.write(format_backends(rows, auto_line) + "\n")
    return 0
