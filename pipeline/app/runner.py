"""The running graph of one config: start it, change it at run time, stop it gracefully.

:class:`Pipeline` puts together the shared parts (:class:`~pipeline.app.graph.Graph`:
cameras, detection streams, backends, look pools), the watches
(:class:`~pipeline.app.watches.Watches`) and the sinks
(:class:`~sinks.registry.SinkHub`). Run time: :meth:`Pipeline.start_watch` /
:meth:`Pipeline.cancel_watch` (used by :mod:`pipeline.app.control`),
:func:`pipeline.app.reload.apply_config` (reload),
:meth:`Pipeline.stop` (graceful: no new looks, looks in flight finish within a
grace period, sinks flush, ``offline`` is published). The process around it
(control, reload, metrics, signals) is :class:`pipeline.app.App`.

Example:
    >>> from pipeline.core.config_loader import load_config
    >>> p = Pipeline(load_config())  # doctest: +SKIP
    >>> p.start(); ...; p.stop()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reactivex import Observable

from operators.backends.base import Backend
from pipeline.app.activity.setup import open_activity
from pipeline.app.graph import Graph
from pipeline.app.watches import LookGate, Origin, RunningWatch, Watches, WatchStats
from pipeline.core.config import LookoutConfig, WatchConfig
from pipeline.core.config_loader import ConfigError, check_references
from pipeline.core.detection import Detection
from pipeline.core.events import CameraState, WatchState
from pipeline.core.frame import FrameSource
from pipeline.core.logs import log_unexpected
from pipeline.net.mqtt_connection import MqttConnection
from sinks.activity.sink import ActivitySink
from sinks.registry import SinkHub, build_sink

log = logging.getLogger("lookout")

__all__ = [
    "LookGate",
    "Origin",
    "Pipeline",
    "RunningWatch",
    "WatchStats",
]


class Pipeline:
    """The running graph for one config.

    ``start()`` returns at once; ``stop()`` shuts down gracefully. Thread-safe:
    watches can be started, cancelled and reloaded from any thread except one
    that delivers watch events (a sink's ``send_*``).

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
        self.graph = Graph(config, None, self._camera_state)
        self.runs = Watches(self.graph, self.sinks, lambda: self.config)
        self.started_at = time.time()
        self.reloads: Counter[str] = Counter()
        self.activity: ActivitySink | None = None
        """The activity store's sink (``[activity]``), attached to the hub at start."""

    # ------------------------------------------------------------ views (metrics, tests)

    @property
    def watches(self) -> dict[str, RunningWatch]:
        """The running watches by name (a copy)."""
        return self.runs.snapshot()[0]

    @property
    def watch_stats(self) -> dict[str, WatchStats]:
        """Counters per watch name, across runs."""
        return self.runs.stats

    @property
    def cameras(self) -> dict[str, FrameSource]:
        """The open cameras by name (a copy)."""
        return self.graph.camera_list()

    @property
    def backends(self) -> dict[str, Backend]:
        """The backends in use by name (a copy)."""
        return self.graph.backend_list()

    @property
    def camera_connects(self) -> Counter[str]:
        """Connections per camera (reconnects included)."""
        return self.graph.camera_connects

    @property
    def offline_since(self) -> dict[str, float]:
        """Epoch seconds since when each offline camera has been offline."""
        return self.graph.offline_since

    @property
    def on_watch_ended(self) -> list[Callable[[RunningWatch, WatchState], None]]:
        """Hooks called with a watch and its final state when it ends."""
        return self.runs.on_watch_ended

    @property
    def stopping(self) -> bool:
        """Whether a shutdown began (no new watches)."""
        return self.runs.stopping

    # ------------------------------------------------------------ building

    def start(self) -> None:
        """Connect sinks, open cameras and start every configured watch."""
        cfg = self.config
        if cfg.mqtt is not None:
            self.mqtt = MqttConnection(cfg.mqtt)
            self.mqtt.start()
            self.graph.mqtt = self.mqtt
        self.activity = open_activity(cfg, self.config_path)
        if self.activity is not None:
            self.sinks.attach(self.activity)
        self.sinks.replace({n: build_sink(n, c, self.mqtt) for n, c in cfg.sinks.items()})
        self.sinks.open()
        for watch in cfg.watches:
            self.start_watch(watch)
        log.info(
            "running %d watches on %d cameras; sinks: %s",
            len(self.watches),
            len(self.cameras),
            ", ".join(self.sinks.sinks) or "none",
        )

    def camera(self, name: str) -> FrameSource:
        """The shared source of camera ``name``, opened on first use."""
        return self.graph.camera(name)

    def camera_detections(self, name: str) -> Observable[Detection] | None:
        """The shared detection stream of camera ``name``, if it has a detector."""
        return self.graph.detections_of(name)

    def backend(self, name: str, *, has_detections: bool = True) -> Backend:
        """The started backend ``name`` (``auto`` resolved per kind of camera)."""
        return self.graph.backend(name, has_detections=has_detections)

    def _camera_state(self, state: CameraState, changed: bool) -> None:
        if changed and (state.online or state.last_error):
            # One line per change; reconnect attempts are logged by the camera itself.
            log.log(
                logging.DEBUG if state.online else logging.WARNING,  # sources log "online"
                "camera %s: %s%s",
                state.camera,
                "online" if state.online else "offline",
                f" ({state.last_error})" if state.last_error and not state.online else "",
                extra={"camera": state.camera},
            )
        self.sinks.send_camera_state(state)

    def sink_failing_since(self, name: str) -> float | None:
        """Epoch seconds since when every delivery to sink ``name`` failed (``None``: fine)."""
        return self.sinks.failing_since(name)

    # ------------------------------------------------------------ watches

    def start_watch(self, watch: WatchConfig, origin: Origin = "config") -> RunningWatch:
        """Start one watch; a running watch of the same name is cancelled first.

        Raises:
            ValueError: the watch names a camera, zone or backend the config lacks.
            RuntimeError: the pipeline is stopping.
        """
        return self.runs.start(watch, origin)

    def cancel_watch(self, name: str, wait_s: float = 5.0, *, forget: bool = False) -> bool:
        """Cancel a watch; returns whether it existed (see :meth:`Watches.cancel`)."""
        return self.runs.cancel(name, wait_s, forget=forget)

    def watch_list(self) -> list[dict[str, Any]]:
        """Every running watch and the last run of ended ones, as JSON-able dicts."""
        return self.runs.listing()

    # ------------------------------------------------------------ stopping

    def drain(self, grace_s: float) -> bool:
        """Stop new looks and wait up to ``grace_s`` for looks in flight; True if all finished."""
        gates = self.runs.close_gates()
        in_flight = sum(g.in_flight for g in gates)
        if in_flight:
            log.info("waiting up to %.0f s for %d look(s) in flight", grace_s, in_flight)
        deadline = time.monotonic() + grace_s
        idle = all([g.wait_idle(deadline) for g in gates])
        if not idle:
            log.warning("grace period over; looks still in flight are abandoned")
        return idle

    def stop(self, grace_s: float | None = None) -> None:
        """Shut down within about ``shutdown.grace_s + shutdown.flush_s``.

        Looks in flight get ``grace_s`` to finish (:meth:`drain`); then the
        backends are stopped, which ends the model requests still in flight
        (those looks are abandoned, never waited for), the watches are
        cancelled, cameras and backends closed, and the sinks and MQTT get what
        is left of ``flush_s``: a webhook POST in flight ends and its event stays
        in the outbox for the next start; MQTT messages not acknowledged by then
        are lost (and counted).
        """
        shutdown = self.config.shutdown
        self.drain(shutdown.grace_s if grace_s is None else grace_s)
        flush_until = time.monotonic() + shutdown.flush_s

        def left(floor: float) -> float:
            return max(floor, flush_until - time.monotonic())

        for name, backend in self.backends.items():  # ends model requests in flight now
            try:
                backend.stop()
            except Exception as exc:
                log_unexpected(log, f"backend {name}: stop failed", exc)
        self.runs.cancel_all(wait_s=min(2.0, left(0.1)))
        self.graph.close()
        self.sinks.close()
        if self.mqtt is not None:
            self.mqtt.stop(left(0.1))
