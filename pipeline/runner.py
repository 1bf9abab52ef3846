"""Build the graph from a config and run it: cameras -> detectors -> watches -> sinks.

One :class:`~sources.camera.CameraSource` per camera (shared by its watches and
its detector), one detection stream per camera, one backend per name (``auto``
resolved once), the sinks behind a :class:`~sinks.registry.SinkHub`, and one
:func:`~operators.watch.run_watch` chain per watch. Looks run on one thread pool
per backend, never on a decode thread, so a slow model stalls neither a camera
nor the watches of another backend.

Run time: :meth:`Pipeline.start_watch` / :meth:`Pipeline.cancel_watch` (used by
:mod:`pipeline.control`), :meth:`Pipeline.apply_config` (used by
:mod:`pipeline.reload`), :meth:`Pipeline.stop` (graceful: no new looks, looks in
flight finish within a grace period, sinks flush, ``offline`` is published).

Example:
    >>> from pipeline.config_loader import load_config
    >>> p = Pipeline(load_config())  # doctest: +SKIP
    >>> p.start(); ...; p.stop()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Literal

import reactivex
from reactivex import operators as ops
from reactivex.abc import DisposableBase
from reactivex.disposable import CompositeDisposable
from reactivex.scheduler import ThreadPoolScheduler
from reactivex.subject import Subject

from operators.backends.base import Backend
from operators.backends.registry import build_backend, resolve_auto
from operators.watch import run_watch
from pipeline.config import (
    AutoBackendConfig,
    BackendConfig,
    FrigateDetectConfig,
    LookoutConfig,
    MotionDetectConfig,
    MqttJsonDetectConfig,
    OnnxDetectConfig,
    WatchConfig,
)
from pipeline.config_loader import ConfigError, check_references
from pipeline.detection import Detection
from pipeline.events import Alert, CameraState, LookRecord, WatchEvent, WatchState, WatchStatus
from pipeline.frame import Frame
from pipeline.metrics import Histogram
from pipeline.redact import redact
from pipeline.reload import ReloadPlan, plan_reload
from sinks.mqtt_connection import MqttConnection
from sinks.registry import SinkHub, build_sink
from sources.camera import CameraSource
from sources.motion import motion_detections

log = logging.getLogger("lookout")

Origin = Literal["config", "runtime"]
LOOK_POOL_WORKERS = 256
"""Threads per backend pool: more than watches, so no watch waits for another's thread."""


def _extra(camera: str | None = None, watch: str | None = None) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if camera is not None:
        extra["camera"] = camera
    if watch is not None:
        extra["watch"] = watch
    return extra


class LookGate:
    """A camera seen through one watch: counts looks in flight and can stop new ones.

    ``latest()`` is the first thing a look does, and every look that called it
    ends in one ``LookRecord`` (unless the watch ends first). While closed
    (draining for shutdown or a restart), a new look waits until the watch is
    cancelled and then gets no frame; its result is dropped with the watch.
    """

    def __init__(
        self,
        camera: CameraSource,
        max_wait_s: float = 60.0,
    ) -> None:
        self.camera = camera
        self.name = camera.name
        self.max_wait_s = max_wait_s
        self._lock = threading.Condition()
        self._started: list[float] = []
        self._closed = False
        self._released = threading.Event()

    def latest(self, timeout: float | None = None) -> Frame | None:
        """The camera's newest frame; while closed, wait for the release and return ``None``."""
        with self._lock:
            closed = self._closed
            if not closed:
                self._started.append(time.monotonic())
        if closed:
            self._released.wait(self.max_wait_s)
            return None
        return self.camera.latest(timeout)

    def finished(self) -> float | None:
        """Count one look as done; return its duration in seconds (``None`` if unknown)."""
        with self._lock:
            start = self._started.pop(0) if self._started else None
            self._lock.notify_all()
        return None if start is None else time.monotonic() - start

    @property
    def in_flight(self) -> int:
        """Looks started and not yet finished."""
        with self._lock:
            return len(self._started)

    def close(self) -> None:
        """Stop new looks (looks in flight go on)."""
        with self._lock:
            self._closed = True

    def wait_idle(self, deadline: float) -> bool:
        """Wait until no look is in flight or ``time.monotonic()`` passes ``deadline``."""
        with self._lock:
            while self._started:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.2))
            return True

    def release(self) -> None:
        """Let looks that waited while closed go (they get no frame)."""
        self._released.set()


@dataclass
class WatchStats:
    """Counters of one watch name, kept across its runs (Prometheus counters never go back)."""

    looks: Counter[str] = field(default_factory=Counter)
    triggers: Counter[str] = field(default_factory=Counter)
    alerts: int = 0
    runs: int = 0
    latency: Histogram = field(default_factory=Histogram)
    status: str = "queued"
    camera: str = ""
    backend: str = ""


@dataclass
class RunningWatch:
    """A watch that is running (or has ended and not been removed yet)."""

    config: WatchConfig
    job_id: str
    cancel: Subject[Any]
    subscription: DisposableBase
    gate: LookGate
    origin: Origin = "config"
    last_state: WatchState | None = None
    done: threading.Event = field(default_factory=threading.Event)
    started_at: float = field(default_factory=time.time)

    @property
    def status(self) -> str:
        """The latest published status."""
        return self.last_state.status.value if self.last_state is not None else "queued"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary (for ``watches/list``)."""
        s = self.last_state
        return {
            "name": self.config.name,
            "camera": self.config.camera,
            "condition": self.config.condition,
            "backend": self.config.backend,
            "origin": self.origin,
            "persistent": self.config.persistent,
            "job_id": self.job_id,
            "status": self.status,
            "iterations": s.iterations if s else 0,
            "alerts": s.alerts if s else 0,
            "last_reasoning": s.last_reasoning if s else None,
            "error_message": s.error_message if s else None,
        }


class Pipeline:
    """The running graph for one config.

    ``start()`` returns at once; ``stop()`` shuts down gracefully. Thread-safe:
    watches can be started, cancelled and reloaded from any thread.

    Args:
        config: a validated config (checked again here: the graph must be whole).
        config_path: the file it came from (reload and the control state file use it).

    Raises:
        ConfigError: the graph names a camera, backend, sink or zone that does not exist.
    """

    def __init__(self, config: LookoutConfig, config_path: Path | None = None) -> None:
        problems = check_references(config)
        if problems:
            raise ConfigError(problems, str(config_path or ""))
        self.config = config
        self.config_path = config_path
        self.mqtt: MqttConnection | None = None
        self.sinks = SinkHub({})
        self.cameras: dict[str, CameraSource] = {}
        self.detections: dict[str, reactivex.Observable[Detection]] = {}
        self.backends: dict[str, Backend] = {}
        self.watches: dict[str, RunningWatch] = {}
        self.watch_stats: dict[str, WatchStats] = {}
        self.camera_connects: Counter[str] = Counter()
        self.last_frame_time: dict[str, float] = {}
        self.offline_since: dict[str, float] = {}
        self._seen_cameras: set[str] = set()
        self.started_at = time.time()
        self.reloads: Counter[str] = Counter()
        self.on_watch_ended: list[Callable[[RunningWatch, WatchState], None]] = []
        self.stopping = False
        self._camera_subscriptions: dict[str, DisposableBase] = {}
        self._look_pools: dict[str, ThreadPoolScheduler] = {}
        # Lock order: _ops_lock (start/cancel/reload, may wait for watches to end)
        # before _backend_lock (building and probing backends) before _lock (the
        # dicts above, held only for a moment: never while calling out).
        self._ops_lock = threading.RLock()
        self._backend_lock = threading.RLock()
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
            if source is not None:
                return source
            source = CameraSource(name, self.config.cameras[name])
            self.cameras[name] = source
        # Outside the lock: the states subject replays its current state to sinks at once.
        sub = source.states.subscribe(on_next=self._publish_camera_state)
        with self._lock:
            self._camera_subscriptions[name] = sub
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
            stream = motion_detections(frames, detect)
        elif isinstance(detect, OnnxDetectConfig):
            from sources.onnx_detector import detect_onnx

            # detect_onnx runs inference on its own pool, dropping frames while busy.
            stream = self.camera(name).frames(detect.fps).pipe(detect_onnx(detect))
        elif isinstance(detect, FrigateDetectConfig | MqttJsonDetectConfig):
            stream = self._mqtt_detections(name, detect)
        if stream is None:
            return None
        with self._lock:
            return self.detections.setdefault(name, stream.pipe(ops.share()))

    def _mqtt_detections(
        self, name: str, detect: FrigateDetectConfig | MqttJsonDetectConfig
    ) -> reactivex.Observable[Detection] | None:
        if self.mqtt is None:
            log.error(
                "camera %s: detector '%s' needs [mqtt]", name, detect.type, extra=_extra(name)
            )
            return None
        if isinstance(detect, FrigateDetectConfig):
            from sources.frigate import frigate_detections

            return frigate_detections(detect, name, self.mqtt.subscribe, self.mqtt.unsubscribe)
        from sources.mqtt_json import mqtt_json_detections

        return mqtt_json_detections(detect, name, self.mqtt.subscribe, self.mqtt.unsubscribe)

    def backend(self, name: str) -> Backend:
        """The backend called ``name`` (``auto`` resolves once, with one log line)."""
        with self._backend_lock:
            configured: BackendConfig | None = self.config.backends.get(name)
            if name == "auto" or isinstance(configured, AutoBackendConfig):
                return self._resolve_auto(
                    configured if isinstance(configured, AutoBackendConfig) else None
                )
            backend = self.backends.get(name)
            if backend is None:
                if configured is None:
                    raise ValueError(f"unknown backend {name!r}")
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

    def look_pool(self, backend: str) -> ThreadPoolScheduler:
        """The thread pool where looks of watches on ``backend`` run."""
        with self._lock:
            pool = self._look_pools.get(backend)
            if pool is None:
                pool = ThreadPoolScheduler(LOOK_POOL_WORKERS)
                self._look_pools[backend] = pool
            return pool

    # ------------------------------------------------------------ watches

    def start_watch(self, watch: WatchConfig, origin: Origin = "config") -> RunningWatch:
        """Start one watch; a running watch of the same name is cancelled first.

        Raises:
            ValueError: the watch names a camera, zone or backend the config lacks.
            RuntimeError: the pipeline is stopping.
        """
        with self._ops_lock:
            with self._lock:
                if self.stopping:
                    raise RuntimeError("the pipeline is shutting down")
                if watch.camera not in self.config.cameras:
                    raise ValueError(f"unknown camera {watch.camera!r}")
                replacing = watch.name in self.watches
            if replacing:
                # Never under _lock: the old watch's last events need it to end.
                self.cancel_watch(watch.name)
            camera = self.camera(watch.camera)
            backend = self.backend(watch.backend)
            detections = self.camera_detections(watch.camera)
            job_id = uuid.uuid4().hex[:12]
            cancel: Subject[Any] = Subject()
            connection = camera.connect()
            gate = LookGate(camera, max_wait_s=self.config.shutdown.grace_s + 30)
            try:
                events = run_watch(
                    watch,
                    frames=gate,
                    backend=backend,
                    detections=detections,
                    zones=self.config.cameras[watch.camera].zones,
                    cancel=cancel,
                    job_id=job_id,
                    look_scheduler=self.look_pool(watch.backend),
                )
            except Exception:
                connection.dispose()
                raise
            running = RunningWatch(watch, job_id, cancel, connection, gate, origin)
            with self._lock:
                stats = self.watch_stats.setdefault(watch.name, WatchStats())
                stats.runs += 1
                stats.camera, stats.backend = watch.camera, watch.backend
                self.watches[watch.name] = running

            def finished() -> None:
                connection.dispose()
                running.done.set()

            def failed(exc: Exception) -> None:
                log.error(
                    "watch %s: stopped by an error: %s",
                    watch.name,
                    redact(str(exc)),
                    extra=_extra(watch.camera, watch.name),
                )
                finished()

            subscription = events.subscribe(
                on_next=lambda event: self._route(running, event),
                on_error=failed,
                on_completed=finished,
            )
            running.subscription = CompositeDisposable(subscription, connection)
            log.info(
                "watch %s: started on camera %s (job %s%s)",
                watch.name,
                watch.camera,
                job_id,
                ", run-time" if origin == "runtime" else "",
                extra=_extra(watch.camera, watch.name),
            )
            return running

    def cancel_watch(self, name: str, wait_s: float = 5.0, *, forget: bool = False) -> bool:
        """Cancel a watch and forget it; returns whether it existed.

        ``forget``: the watch is gone for good (a run-time cancel, a reload that
        removed it), so sinks drop what they keep of it (``Sink.forget_watch``).
        Waits up to ``wait_s`` for the watch's last state to be delivered; never
        call it from a thread that delivers watch events.
        """
        with self._ops_lock:
            with self._lock:
                running = self.watches.pop(name, None)
            if running is None:
                return False
            running.gate.close()
            running.cancel.on_next(True)
            running.gate.release()
            running.done.wait(wait_s)
            running.subscription.dispose()
            log.info(
                "watch %s: stopped",
                name,
                extra=_extra(running.config.camera, name),
            )
            if forget:
                self.sinks.forget_watch(name)
            return True

    def watch_list(self) -> list[dict[str, Any]]:
        """Every known watch (running or ended), as JSON-able dicts."""
        with self._lock:
            return [w.to_dict() for w in self.watches.values()]

    def _route(self, running: RunningWatch, event: WatchEvent) -> None:
        name = running.config.name
        stats = self.watch_stats[name]
        if isinstance(event, WatchState):
            running.last_state = event
            stats.status = event.status.value
            self._deliver(lambda: self.sinks.send_state(event, running.config.sinks))
            if event.status.ended:
                if event.status is WatchStatus.FAILED:
                    log.warning(
                        "watch %s: failed: %s",
                        name,
                        event.error_message,
                        extra=_extra(event.camera, name),
                    )
                elif event.status is WatchStatus.SUCCESS:
                    log.info("watch %s: ended with success", name, extra=_extra(event.camera, name))
                for hook in list(self.on_watch_ended):
                    try:
                        hook(running, event)
                    except Exception as exc:
                        log.error("watch-ended hook failed: %s", redact(str(exc)))
        elif isinstance(event, Alert):
            stats.alerts += 1
            log.info(
                "watch %s: alert: %s",
                event.watch,
                event.message,
                extra=_extra(event.camera, event.watch),
            )
            self._deliver(lambda: self.sinks.send_alert(event, running.config.sinks))
        elif isinstance(event, LookRecord):
            latency = running.gate.finished()
            if event.frame is not None and "wall_time" in event.frame:
                self.last_frame_time[running.config.camera] = float(event.frame["wall_time"])
            v = event.verdict
            stats.looks[v.kind.value] += 1
            stats.triggers[event.trigger] += 1
            stats.latency.observe(latency if latency is not None else v.latency_s)
            log.debug(
                "watch %s: look (%s) -> %s, next in %.0f s",
                event.watch,
                event.trigger,
                v.kind,
                v.next_run_in,
                extra=_extra(running.config.camera, event.watch),
            )

    def _deliver(self, send: Callable[[], Any]) -> None:
        # No lock here: the hub counts and tracks failures under its own lock.
        send()

    def sink_failing_since(self, name: str) -> float | None:
        """Epoch seconds since when every delivery to sink ``name`` failed (``None``: fine)."""
        return self.sinks.failing_since(name)

    def _publish_camera_state(self, state: CameraState) -> None:
        now = time.time()
        with self._lock:
            was_online = state.camera not in self.offline_since
            changed = state.online != was_online or state.camera not in self._seen_cameras
            self._seen_cameras.add(state.camera)
            if state.online:
                self.offline_since.pop(state.camera, None)
                if changed:
                    self.camera_connects[state.camera] += 1
            else:
                self.offline_since.setdefault(state.camera, now)
        if changed and (state.online or state.last_error):
            # One line per change; reconnect attempts are logged by the camera itself.
            log.log(
                logging.DEBUG if state.online else logging.WARNING,  # sources log "online"
                "camera %s: %s%s",
                state.camera,
                "online" if state.online else "offline",
                f" ({state.last_error})" if state.last_error and not state.online else "",
                extra=_extra(state.camera),
            )
        self._deliver(lambda: self.sinks.send_camera_state(state))

    # ------------------------------------------------------------ reload

    def apply_config(self, new: LookoutConfig) -> ReloadPlan:
        """Move the running graph to ``new``; untouched cameras and watches are not disturbed.

        Added watches start, removed ones stop, changed ones (or ones whose camera,
        backend or named sink changed) restart. Cameras that stay keep their
        connection even while their watches restart. Run-time watches keep running
        unless their camera went away (stopped) or changed (restarted).

        Raises:
            ConfigError: the new graph is not whole (nothing is changed then).
        """
        problems = check_references(new)
        if problems:
            raise ConfigError(problems)
        with self._ops_lock:
            old = self.config
            plan = plan_reload(old, new)
            if plan.empty:
                with self._lock:
                    self.config = new
                return plan
            cams_gone = set(plan.cameras.touched)
            backends_gone = set(plan.backends.touched) | set(plan.backends.added)
            # Hold every camera that stays, so restarting its watches never drops its connection.
            with self._lock:
                staying = [src for n, src in self.cameras.items() if n not in cams_gone]
            holds = [src.connect() for src in staying if src.connected]
            try:
                restart_runtime = self._stop_for_reload(plan, new, cams_gone, backends_gone)
                for n in cams_gone:
                    self._close_camera(n)
                for n in backends_gone:
                    self._stop_backend(n)
                if backends_gone:
                    with self._backend_lock:
                        self._auto = None
                self._swap_sinks(plan, new)
                with self._lock:
                    self.config = new
                new_watches = {w.name: w for w in new.watches}
                for n in (*plan.watches_added, *plan.watches_changed):
                    self._start_logged(new_watches[n], "config")
                for w in restart_runtime:
                    self._start_logged(w, "runtime")
            finally:
                for hold in holds:
                    hold.dispose()
        log.info("reloaded: %s", plan.summary())
        if plan.restart_only:
            log.warning(
                "reload: changes to [%s] take effect at the next start",
                "], [".join(plan.restart_only),
            )
        return plan

    def _stop_for_reload(
        self, plan: ReloadPlan, new: LookoutConfig, cams: set[str], backends: set[str]
    ) -> list[WatchConfig]:
        from pipeline.config_loader import check_watch_references
        from pipeline.reload import depends_on_changes

        for n in (*plan.watches_removed, *plan.watches_changed):
            with self._lock:
                running = self.watches.get(n)
            if running is not None and running.origin == "config":
                self.cancel_watch(n, forget=n in plan.watches_removed)
        restart: list[WatchConfig] = []
        with self._lock:
            runtime = list(self.watches.items())
        for n, running in runtime:
            if running.origin != "runtime" or running.done.is_set():
                continue
            w = running.config
            if check_watch_references(new, w, f"watch {n}"):
                log.warning(
                    "watch %s: stopped; the reloaded config lacks what it uses",
                    n,
                    extra=_extra(w.camera, n),
                )
                self.cancel_watch(n, forget=True)
            elif depends_on_changes(w, new, cams, backends, set(plan.sinks.touched)):
                self.cancel_watch(n)
                restart.append(w)
        return restart

    def _start_logged(self, watch: WatchConfig, origin: Origin) -> None:
        try:
            self.start_watch(watch, origin)
        except Exception as exc:
            log.error(
                "watch %s: cannot start: %s",
                watch.name,
                redact(str(exc)),
                extra=_extra(watch.camera, watch.name),
            )

    def _close_camera(self, name: str) -> None:
        with self._lock:
            source = self.cameras.pop(name, None)
            self.offline_since.pop(name, None)
            self._seen_cameras.discard(name)
            self.detections.pop(name, None)
            sub = self._camera_subscriptions.pop(name, None)
        if sub is not None:
            sub.dispose()
        if source is not None:
            source.close()

    def _stop_backend(self, name: str) -> None:
        with self._backend_lock:
            backend = self.backends.pop(name, None)
            if backend is None and self._auto is not None and name == "auto":
                backend = self._auto[0]
                self.backends.pop(backend.name, None)
        if backend is not None:
            try:
                backend.stop()
            except Exception as exc:
                log.error("backend %s: stop failed: %s", name, redact(str(exc)))

    def _swap_sinks(self, plan: ReloadPlan, new: LookoutConfig) -> None:
        sinks = dict(self.sinks.sinks)
        for n in plan.sinks.touched:
            old = sinks.pop(n, None)
            if old is not None:
                try:
                    old.close()
                except Exception as exc:
                    log.error("sink %s: close failed: %s", n, redact(str(exc)))
        for n in (*plan.sinks.added, *plan.sinks.changed):
            try:
                sink = build_sink(n, new.sinks[n], self.mqtt)
                sink.open()
                sinks[n] = sink
            except Exception as exc:
                log.error("sink %s: cannot open: %s", n, redact(str(exc)))
        order = [n for n in new.sinks if n in sinks]
        self.sinks.replace({n: sinks[n] for n in order})

    # ------------------------------------------------------------ stopping

    def drain(self, grace_s: float) -> bool:
        """Stop new looks and wait up to ``grace_s`` for looks in flight; True if all finished."""
        with self._lock:
            self.stopping = True
            watches = list(self.watches.values())
        for w in watches:
            w.gate.close()
        in_flight = sum(w.gate.in_flight for w in watches)
        if in_flight:
            log.info("waiting up to %.0f s for %d look(s) in flight", grace_s, in_flight)
        deadline = time.monotonic() + grace_s
        idle = all([w.gate.wait_idle(deadline) for w in watches])
        if not idle:
            log.warning("grace period over; looks still in flight are abandoned")
        return idle

    def stop(self, grace_s: float | None = None) -> None:
        """Shut down: drain looks, cancel watches, close cameras, backends, sinks, then MQTT."""
        grace = self.config.shutdown.grace_s if grace_s is None else grace_s
        self.drain(grace)
        with self._lock:
            names = list(self.watches)
        for name in names:
            self.cancel_watch(name, wait_s=2.0)
        with self._lock:
            subs = list(self._camera_subscriptions.values())
            self._camera_subscriptions.clear()
            cameras = list(self.cameras.values())
        for sub in subs:
            sub.dispose()
        for camera in cameras:
            camera.close()
        with self._backend_lock:
            backends = list(self.backends.values())
        for backend in backends:
            try:
                backend.stop()
            except Exception as exc:
                log.error("backend %s: stop failed: %s", backend.name, redact(str(exc)))
        for pool in self._look_pools.values():
            pool.executor.shutdown(wait=False, cancel_futures=True)
        self.sinks.close()
        if self.mqtt is not None:
            self.mqtt.stop(self.config.shutdown.flush_s)


class App:
    """The whole process: the pipeline plus control, reload, metrics and shutdown.

    Example:
        >>> app = App(load_config(path), path)  # doctest: +SKIP
        >>> app.start(); app.reload("SIGHUP"); app.stop()  # doctest: +SKIP

    Args:
        config: the validated config.
        config_path: its file (for reload and the control state file).
    """

    def __init__(self, config: LookoutConfig, config_path: Path | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.pipeline = Pipeline(config, config_path)
        self.control: Any = None
        self.metrics: Any = None
        self.watcher: Any = None
        self.reload_results: Counter[str] = Counter()
        self.mqtt_down_since: float | None = None
        self._reload_lock = threading.Lock()
        self._stopped = False

    def state_path(self) -> Path:
        """Where persistent run-time watches are kept (next to the config file)."""
        path = self.config.control.state_file
        if path.is_absolute() or self.config_path is None:
            return path
        return self.config_path.resolve().parent / path

    def start(self) -> None:
        """Start the pipeline, then control (restoring persistent watches), reload, metrics."""
        from pipeline.control import WatchControl

        p = self.pipeline
        p.start()
        cfg = self.config
        if cfg.control.enabled and p.mqtt is not None:
            self.control = WatchControl(p, p.mqtt, cfg.control, self.state_path())
            p.on_watch_ended.append(self.control.watch_ended)
            self.control.restore()
            self.control.start()
        if cfg.reload.watch_file and self.config_path is not None:
            from pipeline.reload import FileWatcher

            self.watcher = FileWatcher(
                self.config_path, self._reload_on_change, cfg.reload.poll_interval_s
            ).start()
        if cfg.metrics.enabled:
            from pipeline.metrics import MetricsServer

            self.metrics = MetricsServer(
                self.collect_metrics, self.health, cfg.metrics.host, cfg.metrics.port
            ).start()

    def _reload_on_change(self) -> None:
        self.reload("file change")

    def reload(self, why: str) -> bool:
        """Load the config file again and apply it; an invalid file keeps the running graph.

        Returns whether the new config was applied.
        """
        if self.config_path is None:
            log.warning("reload (%s): no config file to read", why)
            return False
        from pipeline.config_loader import load_config

        with self._reload_lock:
            if self.watcher is not None:
                self.watcher.mark_current()
            try:
                new = load_config(self.config_path)
                self.pipeline.apply_config(new)
            except ConfigError as err:
                self.reload_results["invalid"] += 1
                log.error(
                    "reload (%s): %s is invalid; the running config stays:\n  %s",
                    why,
                    self.config_path,
                    "\n  ".join(str(problem) for problem in err.problems),
                )
                return False
            except Exception as exc:
                self.reload_results["error"] += 1
                log.error("reload (%s) failed: %s", why, redact(f"{type(exc).__name__}: {exc}"))
                return False
            if new.log != self.config.log:
                from pipeline.logs import setup_logging

                setup_logging(new.log.level, new.log.json_lines)
            self.config = new
            self.reload_results["ok"] += 1
            return True

    def tick(self) -> None:
        """Periodic bookkeeping: ``mqtt_down_since`` mirrors the connection's outage start."""
        mqtt = self.pipeline.mqtt
        self.mqtt_down_since = mqtt.disconnected_since if mqtt is not None else None

    def collect_metrics(self) -> str:
        """The Prometheus text (pipeline plus control and reload counters)."""
        from pipeline.metrics import MetricsText, pipeline_metrics

        def extra(t: MetricsText) -> None:
            t.add(
                "lookout_reloads_total",
                "counter",
                "Reloads by result (ok, invalid, error).",
                [({"result": k}, v) for k, v in sorted(self.reload_results.items())],
            )
            if self.control is not None:
                st = self.control.stats
                t.add(
                    "lookout_control_requests_total",
                    "counter",
                    "Control requests by action and result.",
                    [({"action": a, "result": "ok"}, v) for a, v in sorted(st.requests.items())]
                    + [
                        ({"action": a, "result": "refused"}, v)
                        for a, v in sorted(st.refused.items())
                    ],
                )

        return pipeline_metrics(self.pipeline, extra)

    def health(self) -> Any:
        """The /healthz verdict."""
        from pipeline.metrics import pipeline_health

        m = self.config.metrics
        return pipeline_health(self.pipeline, m.camera_offline_s, m.sink_failing_s)

    def stop(self) -> None:
        """Graceful stop: no reloads or control, drain looks, flush sinks, publish offline.

        Safe to call twice.
        """
        if self._stopped:
            return
        self._stopped = True
        if self.watcher is not None:
            self.watcher.stop()
        if self.control is not None:
            self.control.stop()
        self.pipeline.stop()
        if self.metrics is not None:
            self.metrics.close()


def run_until_signalled(config: LookoutConfig, config_path: Path | None = None) -> int:
    """Run until SIGINT/SIGTERM; SIGHUP reloads; a second stop signal exits at once.

    Returns the exit code (0 after a graceful stop).
    """
    app = App(config, config_path)
    stop = threading.Event()
    reload_now = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            log.warning("second signal: exiting now")
            os._exit(1)
        log.info("signal %s: shutting down", signal.Signals(signum).name)
        stop.set()

    def on_hup(_signum: int, _frame: FrameType | None) -> None:
        reload_now.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_hup)
    try:
        app.start()
        while not stop.wait(0.2):
            app.tick()
            if reload_now.is_set():
                reload_now.clear()
                app.reload("SIGHUP")
    finally:
        app.stop()
    log.info("stopped")
    return 0
