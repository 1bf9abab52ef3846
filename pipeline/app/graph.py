"""The shared parts of the running graph: cameras, detection streams, backends and look pools.

One :class:`~pipeline.core.frame.FrameSource` per camera (shared by its watches and
its detector), one detection stream per camera (shared, and resubscribed with
backoff when its detector fails: :mod:`pipeline.app.detection_streams`), one
backend per name (``auto`` resolved once per camera kind, with or without
detections: :mod:`pipeline.app.backend_choice`), and one look pool per backend,
sized by the watches that use it (:mod:`pipeline.app.look_pools`).
:func:`build_detections` and :func:`resolve_backend` are also what a replay
uses (:mod:`pipeline.app.replay.engine`); they are importable from here too.

Example:
    >>> graph = Graph(config, mqtt=None)  # doctest: +SKIP
    >>> camera = graph.camera("front"); backend = graph.backend("auto", has_detections=True)
    ... # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc
from reactivex import operators as ops

from operators.backends.base import Backend
from pipeline.app.backend_choice import is_auto, resolve_backend, safe_stop
from pipeline.app.detection_streams import (
    DETECTOR_RETRY_MAX_S,
    DETECTOR_RETRY_S,
    build_detections,
    no_frames,
    resubscribe_on_error,
)
from pipeline.app.look_pools import LookPools
from pipeline.core.config import (
    FrigateDetectConfig,
    LookoutConfig,
    MotionDetectConfig,
    MqttJsonDetectConfig,
    OnnxDetectConfig,
)
from pipeline.core.detection import Detection
from pipeline.core.events import CameraState
from pipeline.core.frame import FrameSource
from pipeline.net.mqtt_connection import MqttConnection
from sources.camera_factory import make_camera

__all__ = [
    "DETECTOR_RETRY_MAX_S",
    "DETECTOR_RETRY_S",
    "Graph",
    "LookPools",
    "build_detections",
    "is_auto",
    "resolve_backend",
    "resubscribe_on_error",
]

log = logging.getLogger("lookout")


def _extra(camera: str) -> dict[str, Any]:
    return {"camera": camera}


class Graph:
    """Cameras, detection streams, backends and look pools of one running config.

    Thread-safe. Nothing here calls out (to sinks, to watches) while holding its
    lock; backends are built and probed under a lock of their own.

    Args:
        config: the config (rebound by a reload).
        mqtt: the shared MQTT connection, if any.
        on_camera_state: called with each camera state and whether the camera's
            online status changed (never with a lock held).
    """

    def __init__(
        self,
        config: LookoutConfig,
        mqtt: MqttConnection | None = None,
        on_camera_state: Callable[[CameraState, bool], None] | None = None,
    ) -> None:
        self.config = config
        self.mqtt = mqtt
        self.on_camera_state = on_camera_state
        self.cameras: dict[str, FrameSource] = {}
        self.detections: dict[str, Observable[Detection]] = {}
        self.backends: dict[str, Backend] = {}
        self.pools = LookPools()
        self.camera_connects: Counter[str] = Counter()
        self.offline_since: dict[str, float] = {}
        self._seen: set[str] = set()
        self._auto: dict[tuple[str, bool], tuple[Backend, str]] = {}
        self._subscriptions: dict[str, abc.DisposableBase] = {}
        self._lock = threading.RLock()
        self._backend_lock = threading.RLock()

    # ------------------------------------------------------------ cameras

    def camera(self, name: str) -> FrameSource:
        """The shared source of camera ``name``, made on first use (``make_camera``: by URL)."""
        with self._lock:
            source = self.cameras.get(name)
            if source is not None:
                return source
            source = make_camera(name, self.config.cameras[name])
            self.cameras[name] = source
        # Outside the lock: the states subject replays its current state at once.
        sub = source.states.subscribe(on_next=self._camera_state)
        with self._lock:
            self._subscriptions[name] = sub
        return source

    def _camera_state(self, state: CameraState) -> None:
        now = time.time()
        with self._lock:
            was_online = state.camera not in self.offline_since
            changed = state.online != was_online or state.camera not in self._seen
            self._seen.add(state.camera)
            if state.online:
                self.offline_since.pop(state.camera, None)
                if changed:
                    self.camera_connects[state.camera] += 1
            else:
                self.offline_since.setdefault(state.camera, now)
        if self.on_camera_state is not None:
            self.on_camera_state(state, changed)

    def has_detector(self, name: str) -> bool:
        """Whether camera ``name`` gets a detection stream."""
        return self.detections_of(name) is not None

    def detections_of(self, name: str) -> Observable[Detection] | None:
        """The shared detection stream of camera ``name``, if it has a detector."""
        with self._lock:
            if name in self.detections:
                return self.detections[name]
            detect = self.config.cameras[name].detect
        if isinstance(detect, FrigateDetectConfig | MqttJsonDetectConfig) and self.mqtt is None:
            log.error(
                "camera %s: detector '%s' needs [mqtt]", name, detect.type, extra=_extra(name)
            )
            return None
        needs_frames = isinstance(detect, MotionDetectConfig | OnnxDetectConfig)
        source = self.camera(name) if needs_frames else None
        stream = build_detections(
            name,
            detect,
            source.frames if source is not None else no_frames,
            mqtt=self.mqtt,
        )
        if stream is None or detect is None:
            return None
        shared = stream.pipe(resubscribe_on_error(f"detector '{detect.type}'", name), ops.share())
        with self._lock:
            return self.detections.setdefault(name, shared)

    def close_camera(self, name: str) -> None:
        """Close camera ``name`` and drop its detection stream (a reload removed or changed it)."""
        with self._lock:
            source = self.cameras.pop(name, None)
            self.offline_since.pop(name, None)
            self._seen.discard(name)
            self.detections.pop(name, None)
            sub = self._subscriptions.pop(name, None)
        if sub is not None:
            sub.dispose()
        if source is not None:
            source.close()

    # ------------------------------------------------------------ backends

    def backend(self, name: str, *, has_detections: bool = True) -> Backend:
        """The started backend called ``name``.

        ``auto`` is resolved once per ``(name, has_detections)`` (a camera without
        detections never gets the ``detections`` backend), with one log line.

        Raises:
            ValueError: ``name`` is not configured.
        """
        with self._backend_lock:
            if is_auto(self.config, name):
                key = (name, has_detections)
                cached = self._auto.get(key)
                if cached is None:
                    backend, reason = resolve_backend(
                        self.config, name, has_detections=has_detections
                    )
                    log.info(
                        "backend %s%s: %s",
                        name,
                        "" if has_detections else " (cameras without detections)",
                        reason,
                    )
                    backend.start()
                    cached = (backend, reason)
                    with self._lock:  # backend_list reads it under _lock only
                        self._auto[key] = cached
                return cached[0]
            with self._lock:
                existing = self.backends.get(name)
            if existing is not None:
                return existing
            backend, _ = resolve_backend(self.config, name, has_detections=has_detections)
            backend.start()
            with self._lock:
                self.backends[name] = backend
            return backend

    def stop_backend(self, name: str) -> None:
        """Stop backend ``name`` (a reload changed or removed it)."""
        with self._backend_lock, self._lock:
            backend = self.backends.pop(name, None)
        if backend is not None:
            safe_stop(backend, name)

    def reset_auto(self) -> None:
        """Stop what ``auto`` chose; the next watch on ``auto`` chooses again."""
        with self._backend_lock, self._lock:
            chosen = [b for b, _ in self._auto.values()]
            self._auto.clear()
        for b in chosen:
            safe_stop(b, b.name)

    def backend_list(self) -> dict[str, Backend]:
        """Backends in use by name (``auto`` choices under their own names unless taken)."""
        with self._lock:
            chosen = [b for b, _ in self._auto.values()]
            out = dict(self.backends)
        for b in chosen:
            out.setdefault(b.name, b)
        return out

    # ------------------------------------------------------------ lifecycle

    def camera_list(self) -> dict[str, FrameSource]:
        """The open cameras by name (a copy)."""
        with self._lock:
            return dict(self.cameras)

    def close(self) -> None:
        """Close every camera and stop every backend and look pool."""
        with self._lock:
            names = list(self.cameras)
        for name in names:
            self.close_camera(name)
        with self._backend_lock, self._lock:
            backends = list(self.backends.values())
            self.backends.clear()
            backends += [b for b, _ in self._auto.values()]
            self._auto.clear()
        for backend in backends:
            safe_stop(backend, backend.name)
        self.pools.close()
