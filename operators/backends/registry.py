"""From ``[backends.NAME]`` tables to backends, and the ``auto`` choice.

Example:
    >>> from pipeline.core.config import NoneBackendConfig
    >>> build_backend("quiet", NoneBackendConfig()).type
    'none'
    >>> backend, why = resolve_auto({})
    >>> backend.name, why
    ('detections', "auto chose 'detections' (detections): no model backend configured")
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from typing import Any, cast

from operators.backends.base import Backend
from operators.backends.detections import DetectionsBackend
from operators.backends.none import NoneBackend
from operators.backends.openai import OpenAIBackend
from pipeline.core.config import (
    AutoBackendConfig,
    BackendConfig,
    DetectionsBackendConfig,
    NoneBackendConfig,
    OpenAIBackendConfig,
)
from pipeline.core.logs import log_unexpected
from pipeline.core.redact import redact

log = logging.getLogger("lookout.backends")

DEFAULT_DETECTIONS = "detections"
DEFAULT_NONE = "none"


def _lazy(module: str, cls: str) -> Callable[[str, Any], Backend]:
    """Import optional backends (onnxruntime, subprocesses) only when one is configured."""

    def build(name: str, config: Any) -> Backend:
        factory = getattr(importlib.import_module(module), cls)
        return cast(Backend, factory(name, config))

    return build


#: ``type`` of a ``[backends.NAME]`` table -> builder.
BACKEND_TYPES: dict[str, Callable[[str, Any], Backend]] = {
    "openai": OpenAIBackend,
    "llama_server": _lazy("operators.backends.llama_server", "LlamaServerBackend"),
    "onnx": _lazy("operators.backends.onnx_model", "OnnxBackend"),
    "clip": _lazy("operators.backends.clip", "ClipBackend"),
    "detections": DetectionsBackend,
    "none": NoneBackend,
    "http": _lazy("operators.backends.http_sidecar", "HttpSidecarBackend"),
}


def build_backend(name: str, config: BackendConfig) -> Backend:
    """Build the backend a ``[backends.NAME]`` table describes (not started).

    Raises:
        ValueError: for ``type = "auto"`` (use :func:`resolve_auto`) or an unknown type.
    """
    kind = config.type
    if kind == "auto":
        raise ValueError(f"Backend '{name}' is 'auto'; resolve it with resolve_auto().")
    try:
        factory = BACKEND_TYPES[kind]
    except KeyError:
        raise ValueError(
            f"Backend '{name}' has unknown type '{kind}'; expected one of "
            f"{', '.join(BACKEND_TYPES)}."
        ) from None
    return factory(name, config)


def _where(backend: Backend) -> str:
    endpoint = getattr(backend, "endpoint", None)
    return f"{backend.type} at {endpoint}" if endpoint else backend.type


def resolve_auto(
    configs: Mapping[str, BackendConfig],
    auto: AutoBackendConfig | None = None,
    *,
    has_detections: bool = True,
) -> tuple[Backend, str]:
    """Choose a backend for ``backend = "auto"`` watches; return it and one line saying why.

    Order: ``auto.use``; a configured and reachable OpenAI-compatible server
    that accepts its API key and whose model takes images; ``llama_server``
    when its binary and model files exist; by hardware tier ``onnx`` then
    ``clip`` when configured and runnable; then ``detections`` (a configured
    one, else a default one named ``detections``) unless ``has_detections`` is
    false; then ``none``.

    Backends probed but not chosen are stopped. The chosen one is not started.

    Args:
        configs: the ``[backends]`` tables by name (``auto`` tables are skipped).
        auto: the ``auto`` table, if any.
        has_detections: whether any detection source feeds the watches.

    Raises:
        ValueError: ``auto.use`` names no configured backend.
    """
    auto = auto or AutoBackendConfig.model_validate({})
    real = {n: c for n, c in configs.items() if c.type != "auto"}
    if auto.use is not None:
        if auto.use not in real:
            raise ValueError(
                f"auto.use names backend '{auto.use}', which is not configured; "
                f"configured: {', '.join(real) or 'none'}."
            )
        backend = build_backend(auto.use, real[auto.use])
        return backend, f"auto chose '{auto.use}' ({_where(backend)}): named by auto.use"
    skipped: list[str] = []
    found = _reachable_server(real, auto.probe_timeout_s, skipped) or _local_model(real, skipped)
    backend, why = found or _without_model(real, has_detections)
    line = f"auto chose '{backend.name}' ({_where(backend)}): {why}"
    if skipped:
        line += "; skipped " + "; ".join(skipped)
    return backend, redact(line)


def _reachable_server(
    real: Mapping[str, BackendConfig], timeout_s: float, skipped: list[str]
) -> tuple[Backend, str] | None:
    """The first ``openai`` backend whose server is usable now (the others are stopped)."""
    for name, cfg in real.items():
        if not isinstance(cfg, OpenAIBackendConfig):
            continue
        openai = OpenAIBackend(name, cfg)
        result = openai.probe(timeout_s=timeout_s)
        if result.usable:
            return openai, result.summary()
        openai.stop()
        skipped.append(f"'{name}' ({openai.endpoint}): {result.summary()}")
    return None


def _local_model(
    real: Mapping[str, BackendConfig], skipped: list[str]
) -> tuple[Backend, str] | None:
    """The first ``llama_server``, then ``onnx``, then ``clip`` backend that can run here."""
    for kind in ("llama_server", "onnx", "clip"):
        for name, cfg in real.items():
            if cfg.type != kind:
                continue
            try:
                backend = build_backend(name, cfg)
                avail = backend.availability()
            except Exception as exc:  # a broken optional backend must not stop auto
                log_unexpected(log, f"auto: backend {name} skipped", exc, expected=(Exception,))
                skipped.append(f"'{name}' ({kind}): {type(exc).__name__}: {exc}")
                continue
            if avail.available:
                return backend, avail.reason or "available"
            skipped.append(f"'{name}' ({kind}): {avail.reason}")
    return None


def _without_model(real: Mapping[str, BackendConfig], has_detections: bool) -> tuple[Backend, str]:
    """``detections`` when detections feed the watches, else ``none``."""
    if has_detections:
        for name, cfg in real.items():
            if isinstance(cfg, DetectionsBackendConfig):
                return DetectionsBackend(name, cfg), "decides from detections alone"
        why = "no model backend configured" if not real else "no model backend available"
        return DetectionsBackend(DEFAULT_DETECTIONS), why
    for name, cfg in real.items():
        if isinstance(cfg, NoneBackendConfig):
            return NoneBackend(name, cfg), "no model and no detections"
    return NoneBackend(DEFAULT_NONE), "no model and no detection source"
