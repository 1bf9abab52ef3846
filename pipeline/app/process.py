"""The whole process: the pipeline plus control, reload, metrics, signals and shutdown.

:class:`App` wires :class:`~pipeline.app.runner.Pipeline` to run-time control
(:mod:`pipeline.app.control`), config reloads (:mod:`pipeline.app.reload`) and the
metrics server (:mod:`pipeline.app.metrics`); :func:`run_until_signalled` is what
``python -m pipeline run`` calls.

Example:
    >>> app = App(load_config(path), path)  # doctest: +SKIP
    >>> app.start(); app.reload("SIGHUP"); app.stop()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Protocol

from pipeline.app.activity_services import ActivityServices
from pipeline.app.control import WatchControl, state_file_path
from pipeline.app.frigate_setup import resolve_frigate
from pipeline.app.ha_bridge import HomeAssistantBridge
from pipeline.app.metrics import pipeline_health, pipeline_metrics
from pipeline.app.prometheus import Health, MetricsServer, MetricsText
from pipeline.app.reload import FileWatcher, apply_config
from pipeline.app.runner import Pipeline
from pipeline.core.config import LookoutConfig
from pipeline.core.config_loader import ConfigError, load_config
from pipeline.core.logs import log_unexpected, setup_logging

log = logging.getLogger("lookout")


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
        self.pipeline: Pipeline = Pipeline(config, config_path)
        self.control: WatchControl | None = None
        self.metrics: MetricsServer | None = None
        self.watcher: FileWatcher | None = None
        self.reload_results: Counter[str] = Counter()
        self.services: ActivityServices | None = None
        """Captions and the web page (``[cameras.NAME.captions]``, ``[web]``)."""
        self.mqtt_down_since: float | None = None
        self.ha: HomeAssistantBridge | None = None
        """What the MQTT sinks' Home Assistant devices need (cameras, control, camera stats)."""
        self._reload_lock = threading.Lock()
        self._stopped = False

    def start(self) -> None:
        """Start the pipeline, then control (restoring persistent watches), reload, metrics."""
        p = self.pipeline
        p.start()
        cfg = self.config
        if cfg.control.enabled and p.mqtt is not None:
            state = state_file_path(cfg.control.state_file, self.config_path)
            self.control = WatchControl(p, p.mqtt, cfg.control, state)
            p.on_watch_ended.append(self.control.watch_ended)
            self.control.restore()
            self.control.start()
        self.ha = HomeAssistantBridge(p, cfg.control.enabled and p.mqtt is not None)
        self.ha.describe()
        p.sinks.started(sorted(p.watches))
        self.services = ActivityServices(p, self.config_path).start()
        if cfg.reload.watch_file and self.config_path is not None:
            self.watcher = FileWatcher(
                self.config_path, self._reload_on_change, cfg.reload.poll_interval_s
            ).start()
        if cfg.metrics.enabled:
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
        with self._reload_lock:
            if self.watcher is not None:
                self.watcher.mark_current()
            try:
                new = resolve_frigate(
                    load_config(self.config_path), str(self.config_path), wait=False
                )
                apply_config(self.pipeline, new)
            except ConfigError as err:
                self.reload_results["invalid"] += 1
                log.warning(
                    "reload (%s): %s is invalid; the running config stays:\n  %s",
                    why,
                    self.config_path,
                    "\n  ".join(str(problem) for problem in err.problems),
                )
                return False
            except Exception as exc:
                self.reload_results["error"] += 1
                log_unexpected(log, f"reload ({why}) failed", exc)
                return False
            if new.log != self.config.log:
                setup_logging(new.log.level, new.log.json_lines)
            self.config = new
            self.reload_results["ok"] += 1
            if self.ha is not None:
                self.ha.describe()
            if self.services is not None:
                self.services.reloaded()
            return True

    def tick(self) -> None:
        """Periodic bookkeeping: ``mqtt_down_since`` mirrors the connection's outage start."""
        mqtt = self.pipeline.mqtt
        self.mqtt_down_since = mqtt.disconnected_since if mqtt is not None else None
        if self.ha is not None:
            self.ha.tick()

    def collect_metrics(self) -> str:
        """The Prometheus text (pipeline plus control and reload counters)."""

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

    def health(self) -> Health:
        """The /healthz verdict."""
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
        if self.services is not None:
            self.services.stop()
        self.pipeline.stop()
        if self.metrics is not None:
            self.metrics.close()


class SignalledApp(Protocol):
    """What :func:`serve_until_signalled` drives: a process-like app (``App``, ``ClusterApp``)."""

    def start(self) -> None:
        """Start everything."""
        ...

    def tick(self) -> None:
        """Periodic bookkeeping."""
        ...

    def reload(self, why: str) -> bool:
        """Reload the config file; ``why`` is logged."""
        ...

    def stop(self) -> None:
        """Stop gracefully."""
        ...


def serve_until_signalled(app: SignalledApp, tick_s: float = 0.2) -> int:
    """Run ``app`` until SIGINT/SIGTERM; SIGHUP reloads; a second stop signal exits at once.

    Example:
        >>> serve_until_signalled(App(load_config()))  # doctest: +SKIP

    Returns the exit code (0 after a graceful stop).
    """
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
        while not stop.wait(tick_s):
            app.tick()
            if reload_now.is_set():
                reload_now.clear()
                app.reload("SIGHUP")
    finally:
        app.stop()
    log.info("stopped")
    return 0


def run_until_signalled(config: LookoutConfig, config_path: Path | None = None) -> int:
    """Run the config until SIGINT/SIGTERM (see :func:`serve_until_signalled`)."""
    return serve_until_signalled(App(config, config_path))
