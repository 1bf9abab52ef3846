"""Which backend a watch's ``backend`` name means: a configured one, or what ``auto`` picks.

Example:
    >>> backend, why = resolve_backend(cfg, "auto", has_detections=False)  # doctest: +SKIP
    >>> is_auto(cfg, "auto")  # doctest: +SKIP
    True
"""

from __future__ import annotations

import logging

from operators.backends.base import Backend
from operators.backends.registry import build_backend, resolve_auto
from pipeline.core.config import AutoBackendConfig, BackendConfig, LookoutConfig
from pipeline.core.logs import log_unexpected

log = logging.getLogger("lookout")


def resolve_backend(
    config: LookoutConfig, name: str, *, has_detections: bool
) -> tuple[Backend, str]:
    """Build (not start) backend ``name``; return it and, for ``auto``, why it was chosen.

    Example:
        >>> backend, why = resolve_backend(cfg, "auto", has_detections=False)  # doctest: +SKIP

    Raises:
        ValueError: ``name`` is not configured (the message lists the backends).
    """
    configured: BackendConfig | None = config.backends.get(name)
    if name == "auto" or isinstance(configured, AutoBackendConfig):
        others = {n: c for n, c in config.backends.items() if not isinstance(c, AutoBackendConfig)}
        auto = configured if isinstance(configured, AutoBackendConfig) else None
        return resolve_auto(others, auto, has_detections=has_detections)
    if configured is None:
        known = ", ".join(config.backends) or "none"
        raise ValueError(f"unknown backend {name!r}; backends: {known}")
    return build_backend(name, configured), ""


def is_auto(config: LookoutConfig, name: str) -> bool:
    """Whether backend ``name`` is resolved by ``auto``."""
    return name == "auto" or isinstance(config.backends.get(name), AutoBackendConfig)


def safe_stop(backend: Backend, name: str) -> None:
    """Stop ``backend``; a failure is logged (with its traceback at debug), never raised."""
    try:
        backend.stop()
    except Exception as exc:
        log_unexpected(log, f"backend {name}: stop failed", exc)
