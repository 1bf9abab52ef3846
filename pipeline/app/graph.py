"""The shared parts of the running graph: cameras, detection streams, backends and look pools.

One :class:`~pipeline.core.frame.FrameSource` per camera (shared by its watches and
its detector), one detection stream per camera (shared, and resubscribed with
backoff when its detector fails), one backend per name (``auto`` resolved once
per camera kind: with or without detections), and one look pool per backend,
sized by the watches that use it. :func:`build_detections` and
:func:`resolve_backend` are also what a replay uses (:mod:`pipeline.app.replay.engine`).

Example:
    >>> graph = Graph(config, mqtt=None)  # doctest: +SKIP
    >>> camera = graph.camera("front"); backend = graph.backend("auto", has_detections=True)
    ... # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable
from reactivex.scheduler import ThreadPoolScheduler, TimeoutScheduler

from operators.backends.base import Backend
from operators.backends.registry import build_backend, resolve_auto
from pipeline.core.backoff import Backoff
from pipeline.core.config import (
    AutoBackendConfig,
    BackendConfig,
    DetectConfig,
    FrigateDetectConfig,
    LookoutConfig,
    MotionDetectConfig,
    MqttJsonDetectConfig,
    OnnxDetectConfig,
)
from pipeline.core.detection import Detection
from pipeline.core.events import CameraState
from pipeline.core.frame import Frame, FrameSource
from pipeline.core.logs import log_unexpected
from pipeline.core.redact import redact
from pipeline.net.mqtt_connection import MqttConnection
from sources.camera_factory import make_camera

log = logging.getLogger("lookout")

DETECTOR_RETRY_S = 1.0
"""First wait before a failed detection stream is subscribed again."""
DETECTOR_RETRY_MAX_S = 60.0
"""Longest wait between two attempts."""


def _extra(camera: str) -> dict[str, Any]:
    return {"camera": camera}


def build_detections(
    camera: str,
    detect: DetectConfig | None,
    frames: Callable[[float | None, bool], Observable[Frame]],
    *,
    mqtt: MqttConnection | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Observable[Detection] | None:
    """The (cold) detection stream of one camera, or ``None`` when it has no detector.

    Example:
        >>> dets = build_detections("front", cfg.detect, camera.frames)  # doctest: +SKIP

    Args:
        camera: the camera's name.
        detect: its ``detect`` table.
        frames: ``(fps, keyframes only) -> frames`` of the camera (a live camera or
            a clip).
        mqtt: the connection Frigate / MQTT JSON detections come over
            (``None``: those detectors give no stream).
        scheduler: the time source of motion and ONNX detection (virtual in replays).
    """
    if isinstance(detect, MotionDetectConfig):
        from sources.motion import motion_detections

        return motion_detections(frames(detect.fps, detect.keyframes), detect, scheduler=scheduler)
    if isinstance(detect, OnnxDetectConfig):
        from sources.onnx_detector import detect_onnx

        # detect_onnx runs inference on its own pool, dropping frames while busy.
        return frames(detect.fps, detect.keyframes).pipe(detect_onnx(detect, scheduler=scheduler))
    if isinstance(detect, FrigateDetectConfig | MqttJsonDetectConfig) and mqtt is not None:
        if isinstance(detect, FrigateDetectConfig):
            from sources.frigate import frigate_detections

            return frigate_detections(detect, camera, mqtt.subscribe, mqtt.unsubscribe)
        from sources.mqtt_json import mqtt_json_detections

        return mqtt_json_detections(detect, camera, mqtt.subscribe, mqtt.unsubscribe)
    return None


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


def resubscribe_on_error(
    what: str,
    camera: str,
    *,
    initial_s: float = DETECTOR_RETRY_S,
    max_s: float = DETECTOR_RETRY_MAX_S,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[Detection]], Observable[Detection]]:
    """Rx operator: an error is logged and the source subscribed again after a backoff.

    Example:
        >>> dets = onnx_stream.pipe(resubscribe_on_error("detector", "front"))  # doctest: +SKIP

    A detector that fails (an ONNX runtime error, a motion error) must not end
    the watches of its camera: they keep their timer looks, and detections come
    back when the detector does. The backoff starts again after a detection
    arrives. Completion passes through.

    Args:
        what: what failed, for the log line.
        camera: the camera's name, for the log line.
        initial_s: first wait in seconds.
        max_s: longest wait in seconds.
        scheduler: where the waits run (default: a timeout scheduler).

    Raises:
        ValueError: a wait that is not positive, or ``max_s`` below ``initial_s``.
    """
    if not initial_s > 0 or max_s < initial_s:
        raise ValueError("initial_s must be positive and max_s at least initial_s.")

    def _op(source: Observable[Detection]) -> Observable[Detection]:
        def subscribe(
            observer: abc.ObserverBase[Detection], default: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            sched = scheduler or default or TimeoutScheduler.singleton()
            backoff = Backoff(initial=initial_s, cap=max_s)
            current = SerialDisposable()
            stopped = [False]
            lock = threading.Lock()

            def on_next(d: Detection) -> None:
                backoff.reset()
                observer.on_next(d)

            def on_error(exc: Exception) -> None:
                log_unexpected(log, f"camera {camera}: {what} failed", exc)
                delay = backoff.next_delay()
                log.error(
                    "camera %s: %s failed (%s); trying again in %.0f s",
                    camera,
                    what,
                    redact(f"{type(exc).__name__}: {exc}"),
                    delay,
                    extra=_extra(camera),
                )
                with lock:
                    if not stopped[0]:
                        current.disposable = sched.schedule_relative(delay, again)

            def again(_s: abc.SchedulerBase | None = None, _st: Any = None) -> None:
                with lock:
                    if stopped[0]:
                        return
                inner = source.subscribe(
                    on_next, on_error, observer.on_completed, scheduler=default
                )
                with lock:
                    if stopped[0]:
                        inner.dispose()
                    else:
                        current.disposable = inner

            def stop() -> None:
                with lock:
                    stopped[0] = True
                current.dispose()

            again()
            return CompositeDisposable(Disposable(stop))

        return reactivex.create(subscribe)

    return _op


class LookPools:
    """One thread pool per backend, with as many threads as watches that use the backend.

    A watch has at most one look in flight, so a pool never needs more threads
    than watches; the backend's ``max_concurrency`` bounds the real work. Pools
    only grow (threads are started on demand and idle ones are reused).

    Example:
        >>> pools = LookPools()
        >>> pool = pools.reserve("vlm"); pools.size("vlm")
        1
        >>> pools.release("vlm"); pools.close()
    """

    def __init__(self) -> None:
        self._pools: dict[str, ThreadPoolScheduler] = {}
        self._users: Counter[str] = Counter()
        self._lock = threading.Lock()

    def reserve(self, backend: str) -> ThreadPoolScheduler:
        """Count one more watch on ``backend``; return the pool its looks run on."""
        with self._lock:
            self._users[backend] += 1
            need = self._users[backend]
            pool = self._pools.get(backend)
            if pool is None:
                pool = ThreadPoolScheduler(need)
                self._pools[backend] = pool
            elif pool.executor._max_workers < need:
                # ThreadPoolExecutor starts threads lazily up to this bound.
                pool.executor._max_workers = need
            return pool

    def release(self, backend: str) -> None:
        """Count one watch fewer on ``backend`` (its pool keeps its threads for the next)."""
        with self._lock:
            if self._users[backend] > 0:
                self._users[backend] -= 1

    def size(self, backend: str) -> int:
        """Threads the pool of ``backend`` may run (0 without a pool)."""
        with self._lock:
            pool = self._pools.get(backend)
            return 0 if pool is None else pool.executor._max_workers

    def close(self) -> None:
        """Shut every pool down without waiting (looks in flight are abandoned)."""
        with self._lock:
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.executor.shutdown(wait=False, cancel_futures=True)


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
        import time

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
            source.frames if source is not None else _no_frames,
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
            _stop(backend, name)

    def reset_auto(self) -> None:
        """Stop what ``auto`` chose; the next watch on ``auto`` chooses again."""
        with self._backend_lock, self._lock:
            chosen = [b for b, _ in self._auto.values()]
            self._auto.clear()
        for b in chosen:
            _stop(b, b.name)

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
            _stop(backend, backend.name)
        self.pools.close()


def _stop(backend: Backend, name: str) -> None:
    try:
        backend.stop()
    except Exception as exc:
        log_unexpected(log, f"backend {name}: stop failed", exc)


def _no_frames(_fps: float | None, _keyframes: bool = False) -> Observable[Frame]:
    return reactivex.empty()
