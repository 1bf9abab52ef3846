"""Build the graph from a config and run it: cameras -> detectors -> watches -> sinks.

Example:
    >>> from pipeline.config_loader import load_config
    >>> p = Pipeline(load_config())  # doctest: +SKIP
    >>> p.start(); ...; p.stop()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import signal
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import reactivex
from reactivex import operators as ops
from reactivex.abc import DisposableBase
from reactivex.subject import Subject

from operators.backends.base import Backend
from operators.backends.registry import build_backend, resolve_auto
from operators.watch import run_watch
from pipeline.config import (
    AutoBackendConfig,
    BackendConfig,
    LookoutConfig,
    MotionDetectConfig,
    WatchConfig,
)
from pipeline.detection import Detection
from pipeline.events import Alert, CameraState, LookRecord, WatchEvent, WatchState
from sinks.mqtt_connection import MqttConnection
from sinks.registry import SinkHub, build_sink
from sources.camera import CameraSource
from sources.motion import motion_detections

log = logging.getLogger("lookout")


@dataclass
class RunningWatch:
    """A watch that is running: its config, cancel switch and subscription."""

    config: WatchConfig
    job_id: str
    cancel: Subject[Any]
    subscription: DisposableBase
    last_state: WatchState | None = None
    done: threading.Event = field(default_factory=threading.Event)


class Pipeline:
    """The running graph for one config.

    One :class:`CameraSource` per camera (shared by its watches and detector),
    one detection stream per camera with ``detect``, one backend per name, the
    sinks, and one Rx chain per watch. ``start()`` returns at once; ``stop()``
    cancels the watches, closes the sinks and the cameras.
    """

    def __init__(self, config: LookoutConfig, config_path: Path | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.mqtt: MqttConnection | None = None
        self.sinks = SinkHub({})
        self.cameras: dict[str, CameraSource] = {}
        self.detections: dict[str, reactivex.Observable[Detection]] = {}
        self.backends: dict[str, Backend] = {}
        self.watches: dict[str, RunningWatch] = {}
        self._camera_subscriptions: list[DisposableBase] = []
        self._lock = threading.RLock()
        self._auto: tuple[Backend, str] | None = None

    # ------------------------------------------------------------ building

    def start(self) -> None:
        """Connect sinks, open cameras and start every configured watch."""
        cfg = self.config
        if cfg.mqtt is not None:
            self.mqtt = MqttConnection(cfg.mqtt)
            self.mqtt.start()
        self.sinks = SinkHub({n: build_sink(n, c, self.mqtt) for n, c in cfg.sinks.items()})
        self.sinks.open()
        for watch in cfg.watches:
            self.start_watch(watch)
        log.info(
            "running %d watches on %d cameras; sinks: %s",
            len(self.watches),
            len(self.cameras),
            ", ".join(self.sinks.sinks) or "none",
        )

    def camera(self, name: str) -> CameraSource:
        """The shared source of camera ``name``, opened on first use."""
        with self._lock:
            source = self.cameras.get(name)
            if source is None:
                source = CameraSource(name, self.config.cameras[name])
                self.cameras[name] = source
                self._camera_subscriptions.append(
                    source.states.subscribe(on_next=self._publish_camera_state)
                )
            return source

    def camera_detections(self, name: str) -> reactivex.Observable[Detection] | None:
        """The shared detection stream of camera ``name``, if it has a detector."""
        with self._lock:
            if name in self.detections:
                return self.detections[name]
            detect = self.config.cameras[name].detect
            stream: reactivex.Observable[Detection] | None = None
            if isinstance(detect, MotionDetectConfig):
                frames = self.camera(name).frames(detect.fps)
                stream = motion_detections(frames, detect).pipe(ops.share())
            elif detect is not None:
                log.warning("camera %s: detector type '%s' is not wired yet", name, detect.type)
            if stream is not None:
                self.detections[name] = stream
            return stream

    def backend(self, name: str) -> Backend:
        """The backend called ``name`` (``auto`` resolves once, with one log line)."""
        with self._lock:
            configured: BackendConfig | None = self.config.backends.get(name)
            if name == "auto" or isinstance(configured, AutoBackendConfig):
                return self._resolve_auto(
                    configured if isinstance(configured, AutoBackendConfig) else None
                )
            backend = self.backends.get(name)
            if backend is None:
                assert configured is not None, f"unknown backend {name}"
                backend = build_backend(name, configured)
                backend.start()
                self.backends[name] = backend
            return backend

    def _resolve_auto(self, auto: AutoBackendConfig | None) -> Backend:
        if self._auto is None:
            others = {
                n: c
                for n, c in self.config.backends.items()
                if not isinstance(c, AutoBackendConfig)
            }
            backend, reason = resolve_auto(others, auto)
            log.info("backend auto: %s", reason)
            backend.start()
            self._auto = (backend, reason)
            self.backends.setdefault(backend.name, backend)
        return self._auto[0]

    # ------------------------------------------------------------ watches

    def start_watch(self, watch: WatchConfig) -> RunningWatch:
        """Start one watch; a running watch of the same name is cancelled first."""
        with self._lock:
            if watch.name in self.watches:
                self.cancel_watch(watch.name)
            camera = self.camera(watch.camera)
            job_id = uuid.uuid4().hex[:12]
            cancel: Subject[Any] = Subject()
            connection = camera.connect()
            events = run_watch(
                watch,
                frames=camera,
                backend=self.backend(watch.backend),
                detections=self.camera_detections(watch.camera),
                zones=self.config.cameras[watch.camera].zones,
                cancel=cancel,
                job_id=job_id,
            )
            running = RunningWatch(watch, job_id, cancel, connection)

            def finished() -> None:
                connection.dispose()
                running.done.set()

            def failed(exc: Exception) -> None:
                log.error("watch %s: stopped by an error: %s", watch.name, exc)
                finished()

            subscription = events.subscribe(
                on_next=lambda event: self._route(running, event),
                on_error=failed,
                on_completed=finished,
            )
            running.subscription = reactivex.disposable.CompositeDisposable(
                subscription, connection
            )
            self.watches[watch.name] = running
            log.info("watch %s: started on camera %s (job %s)", watch.name, watch.camera, job_id)
            return running

    def cancel_watch(self, name: str, wait_s: float = 5.0) -> bool:
        """Cancel a running watch; returns whether it was running."""
        with self._lock:
            running = self.watches.pop(name, None)
        if running is None:
            return False
        running.cancel.on_next(True)
        running.done.wait(wait_s)
        running.subscription.dispose()
        return True

    def _route(self, running: RunningWatch, event: WatchEvent) -> None:
        if isinstance(event, WatchState):
            running.last_state = event
            self.sinks.send_state(event, running.config.sinks)
        elif isinstance(event, Alert):
            log.info("watch %s: alert: %s", event.watch, event.message)
            self.sinks.send_alert(event, running.config.sinks)
        elif isinstance(event, LookRecord):
            v = event.verdict
            log.debug(
                "watch %s: look (%s) -> %s, next in %.0f s",
                event.watch,
                event.trigger,
                v.kind,
                v.next_run_in,
            )

    def _publish_camera_state(self, state: CameraState) -> None:
        level = logging.INFO if state.online else logging.WARNING
        log.log(
            level,
            "camera %s: %s%s",
            state.camera,
            "online" if state.online else "offline",
            f" ({state.last_error})" if state.last_error and not state.online else "",
        )
        self.sinks.send_camera_state(state)

    # ------------------------------------------------------------ stopping

    def stop(self, grace_s: float = 10.0) -> None:
        """Cancel watches (waiting up to ``grace_s`` for looks in flight), then close everything."""
        for name in list(self.watches):
            self.cancel_watch(name, wait_s=grace_s)
        for sub in self._camera_subscriptions:
            sub.dispose()
        for camera in self.cameras.values():
            camera.close()
        for backend in self.backends.values():
            try:
                backend.stop()
            except Exception as exc:
                log.error("backend %s: stop failed: %s", backend.name, exc)
        self.sinks.close()
        if self.mqtt is not None:
            self.mqtt.stop()


def run_until_signalled(config: LookoutConfig, config_path: Path | None = None) -> int:
    """Run until SIGINT/SIGTERM; a second signal exits at once. Returns the exit code."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            log.warning("second signal: exiting now")
            import os

            os._exit(1)
        log.info("signal %s: shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    pipeline = Pipeline(config, config_path)
    try:
        pipeline.start()
        while not stop.wait(0.5):
            pass
    finally:
        pipeline.stop()
    log.info("stopped")
    return 0
