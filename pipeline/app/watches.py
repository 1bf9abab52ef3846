"""The watches of a running graph: start, cancel, list, and route their events to the sinks.

Each watch is one :func:`~operators.watch.run_watch` chain on a shared camera
(seen through a :class:`~pipeline.app.look_gate.LookGate`; the sinks a run-time
watch brings are in :mod:`pipeline.app.watch_sinks`), its backend's look pool and the camera's
shared detection stream. Its states and alerts go to the sinks on the thread
that produced them; no lock is held while they do, so a slow sink never blocks
a cancel, a reload or the metrics. A watch that ends by itself (success,
failure, time-out) leaves the running set at once; its last run stays listed
(:meth:`Watches.listing`) until the name runs again or is cancelled.

Example:
    >>> ws = Watches(graph, hub, lambda: config)  # doctest: +SKIP
    >>> ws.start(watch_config); ws.cancel("porch", forget=True)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from reactivex.abc import DisposableBase
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.subject import Subject

from operators.backends.base import Backend
from operators.resume import Resume
from operators.watch import run_watch
from pipeline.app.graph import Graph
from pipeline.app.look_gate import LookGate
from pipeline.app.prometheus import Histogram
from pipeline.app.watch_setup import frame_selector, wake_setup, watch_spec, zone_rules
from pipeline.app.watch_sinks import BringsSinks, close_own_sinks
from pipeline.core.config import LookoutConfig, WatchConfig
from pipeline.core.events import Alert, LookRecord, WatchEvent, WatchState, WatchStatus
from pipeline.core.logs import log_unexpected
from sinks.registry import SinkHub

__all__ = [
    "ENDED_STATUSES",
    "MAX_ENDED",
    "BringsSinks",
    "LookGate",
    "Origin",
    "RunningWatch",
    "WatchStats",
    "Watches",
    "close_own_sinks",
    "forget_in_backend",
]

log = logging.getLogger("lookout")

Origin = Literal["config", "runtime"]
MAX_ENDED = 256
"""Ended runs kept for listing; the oldest are dropped beyond this."""
ENDED_STATUSES = ("success", "failed", "cancelled")
"""Statuses of a watch that has ended."""


def _extra(camera: str | None = None, watch: str | None = None) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if camera is not None:
        extra["camera"] = camera
    if watch is not None:
        extra["watch"] = watch
    return extra


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
    """A watch that is running (or has ended and is kept for listing)."""

    config: WatchConfig
    job_id: str
    cancel: Subject[Any]
    subscription: DisposableBase
    gate: LookGate
    origin: Origin = "config"
    last_state: WatchState | None = None
    done: threading.Event = field(default_factory=threading.Event)
    started_at: float = field(default_factory=time.time)
    backend: Backend | None = None
    retire: Callable[[], None] = field(default=lambda: None, repr=False)
    own_sinks: SinkHub | None = None
    """Sinks this run brought itself (see :class:`BringsSinks`); closed when it ends."""
    sinks_closed: threading.Thread | None = None
    """The thread closing ``own_sinks`` once the run ended."""

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
        } | (self.config.listing_extra() if isinstance(self.config, BringsSinks) else {})


def forget_in_backend(backend: Backend | None, watch: str) -> None:
    """Drop what ``backend`` keeps of ``watch`` (``forget(watch)``, where it has one)."""
    forget = getattr(backend, "forget", None)
    if callable(forget):
        try:
            forget(watch)
        except Exception as exc:
            log_unexpected(log, f"backend: forget watch {watch}", exc)


class Watches:
    """Start, cancel, list the watches of a graph and route their events to the sinks.

    Thread-safe. Starts, cancels and reloads are serialized by ``ops_lock``
    (they may wait for a watch's last event); the tables are guarded by a
    short lock that is never held while calling out.

    Args:
        graph: cameras, detections, backends and look pools.
        sinks: where states and alerts go.
        config: returns the current config.
    """

    def __init__(self, graph: Graph, sinks: SinkHub, config: Callable[[], LookoutConfig]) -> None:
        self.graph = graph
        self.sinks = sinks
        self.config = config
        self.running: dict[str, RunningWatch] = {}
        self.ended: OrderedDict[str, RunningWatch] = OrderedDict()
        self.stats: dict[str, WatchStats] = {}
        self.on_watch_ended: list[Callable[[RunningWatch, WatchState], None]] = []
        self.stopping = False
        self.resume_of: Callable[[WatchConfig], Resume | None] | None = None
        """Where a starting watch may take over an earlier run (cluster mode), if anywhere."""
        self.ops_lock = threading.RLock()
        self._lock = threading.RLock()

    # ------------------------------------------------------------ queries

    def snapshot(self) -> tuple[dict[str, RunningWatch], dict[str, RunningWatch]]:
        """Copies of the running watches and of the kept ended runs."""
        with self._lock:
            return dict(self.running), dict(self.ended)

    def listing(self) -> list[dict[str, Any]]:
        """Every running watch, then the last run of names that ended, as JSON-able dicts."""
        running, ended = self.snapshot()
        out = [w.to_dict() for w in running.values()]
        return out + [w.to_dict() for n, w in ended.items() if n not in running]

    # ------------------------------------------------------------ start / cancel

    def start(self, watch: WatchConfig, origin: Origin = "config") -> RunningWatch:
        """Start one watch; a running watch of the same name is cancelled first.

        Raises:
            ValueError: the watch names a camera, zone or backend the config lacks.
            RuntimeError: the pipeline is stopping.
        """
        with self.ops_lock:
            config = self.config()
            with self._lock:
                if self.stopping:
                    raise RuntimeError("the pipeline is shutting down")
                if watch.camera not in config.cameras:
                    raise ValueError(f"unknown camera {watch.camera!r}")
                replacing = watch.name in self.running
            if replacing:
                # Never under a lock: the old watch's last events must get through.
                self.cancel(watch.name)
            graph = self.graph
            camera = graph.camera(watch.camera)
            detections = graph.detections_of(watch.camera)
            backend = graph.backend(watch.backend, has_detections=detections is not None)
            forget_in_backend(backend, watch.name)
            own = (
                SinkHub({s.name: s for s in watch.make_sinks()})
                if isinstance(watch, BringsSinks)
                else None
            )
            resume = self.resume_of(watch) if self.resume_of is not None else None
            job_id = resume.job_id if resume is not None else uuid.uuid4().hex[:12]
            cancel: Subject[Any] = Subject()
            connection = camera.connect()
            gate = LookGate(camera, max_wait_s=config.shutdown.grace_s + 30)
            pool = graph.pools.reserve(watch.backend)
            try:
                policy, fps, keyframes = wake_setup(watch, config.cameras[watch.camera])
                events = run_watch(
                    watch_spec(watch),
                    frames=gate,
                    backend=backend,
                    detections=detections,
                    wake_policy=policy,
                    frame_selector=frame_selector(config.cameras[watch.camera]),
                    pictures=None if fps is None else camera.frames(fps, keyframes),
                    zones=zone_rules(config.cameras[watch.camera].zones),
                    cancel=cancel,
                    job_id=job_id,
                    resume=resume,
                    look_scheduler=pool,
                    thumbnail_height=config.activity.look_thumbnail_height,
                )
            except Exception:
                connection.dispose()
                graph.pools.release(watch.backend)
                if own is not None:
                    for sink in own.sinks.values():
                        sink.close()
                raise
            if own is not None:
                own.open()
            running = RunningWatch(watch, job_id, cancel, connection, gate, origin, backend=backend)
            running.own_sinks = own
            running.retire = self._retirement(running)
            with self._lock:
                stats = self.stats.setdefault(watch.name, WatchStats())
                stats.runs += 1
                stats.camera, stats.backend = watch.camera, watch.backend
                self.running[watch.name] = running
                self.ended.pop(watch.name, None)

            def finished() -> None:
                running.retire()
                running.done.set()

            def failed(exc: Exception) -> None:
                log_unexpected(log, f"watch {watch.name}: stopped by an error", exc)
                finished()

            subscription = events.subscribe(
                on_next=lambda event: self._route(running, event),
                on_error=failed,
                on_completed=finished,
            )
            running.subscription = CompositeDisposable(
                subscription, connection, Disposable(running.retire)
            )
            log.info(
                "watch %s: started on camera %s (job %s%s)",
                watch.name,
                watch.camera,
                job_id,
                ", run-time" if origin == "runtime" else "",
                extra=_extra(watch.camera, watch.name),
            )
            return running

    def _retirement(self, running: RunningWatch) -> Callable[[], None]:
        """What to do once when a run ends: free its camera hold, pool slot and backend state."""
        once = threading.Lock()
        done = [False]

        def retire() -> None:
            with once:
                if done[0]:
                    return
                done[0] = True
            name = running.config.name
            running.gate.abandon()
            running.subscription.dispose()
            self.graph.pools.release(running.config.backend)
            forget_in_backend(running.backend, name)
            if running.own_sinks is not None:
                flush_s = self.config().shutdown.flush_s
                running.sinks_closed = close_own_sinks(name, running.own_sinks, flush_s)
            with self._lock:
                if self.running.get(name) is running:
                    # Ended by itself: out of the running set, kept for listing.
                    del self.running[name]
                    self.ended[name] = running
                    while len(self.ended) > MAX_ENDED:
                        self.ended.popitem(last=False)

        return retire

    def cancel(self, name: str, wait_s: float = 5.0, *, forget: bool = False) -> bool:
        """Cancel a watch (or forget the kept run of an ended one); returns whether it existed.

        ``forget``: the watch is gone for good (a run-time cancel, a reload that
        removed it), so sinks drop what they keep of it (``Sink.forget_watch``).
        Waits up to ``wait_s`` for the watch's last state to be delivered; never
        call it from a thread that delivers watch events.
        """
        with self.ops_lock:
            with self._lock:
                running = self.running.pop(name, None)
                ended = self.ended.pop(name, None)
            if running is None:
                if ended is not None and forget:
                    self.sinks.forget_watch(name)
                return ended is not None
            running.gate.close()
            running.cancel.on_next(True)
            running.gate.release()
            running.done.wait(wait_s)
            running.retire()
            log.info("watch %s: stopped", name, extra=_extra(running.config.camera, name))
            if forget:
                self.sinks.forget_watch(name)
            return True

    def close_gates(self) -> list[LookGate]:
        """Stop new looks everywhere (shutdown); return the gates of the running watches."""
        with self._lock:
            self.stopping = True
            gates = [w.gate for w in self.running.values()]
        for gate in gates:
            gate.close()
        return gates

    def cancel_all(self, wait_s: float) -> None:
        """Cancel every running watch."""
        with self._lock:
            names = list(self.running)
        for name in names:
            self.cancel(name, wait_s=wait_s)

    # ------------------------------------------------------------ events

    def _route(self, running: RunningWatch, event: WatchEvent) -> None:
        name = running.config.name
        with self._lock:
            stats = self.stats[name]
        if isinstance(event, WatchState):
            running.last_state = event
            stats.status = event.status.value
            self.sinks.send_state(event, running.config.sinks)
            if running.own_sinks is not None:
                running.own_sinks.send_state(event)
            if event.status.ended:
                self._ended(running, event)
        elif isinstance(event, Alert):
            stats.alerts += 1
            log.info(
                "watch %s: alert: %s",
                event.watch,
                event.message,
                extra=_extra(event.camera, event.watch),
            )
            sent = self.sinks.send_alert(event, running.config.sinks)
            if running.own_sinks is not None:
                running.own_sinks.send_alert(sent)
        elif isinstance(event, LookRecord):
            latency = running.gate.finished()
            self.sinks.send_look(event, running.config.sinks)
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

    def _ended(self, running: RunningWatch, event: WatchState) -> None:
        name = running.config.name
        if event.status is WatchStatus.FAILED:
            log.warning(
                "watch %s: failed: %s", name, event.error_message, extra=_extra(event.camera, name)
            )
        elif event.status is WatchStatus.SUCCESS:
            log.info("watch %s: ended with success", name, extra=_extra(event.camera, name))
        for hook in list(self.on_watch_ended):
            try:
                hook(running, event)
            except Exception as exc:
                log_unexpected(log, "watch-ended hook failed", exc)
