"""The cluster's process: the runtime plus control, reload, metrics, signals and shutdown.

:class:`ClusterApp` is :class:`pipeline.app.process.App` for a cluster: the
same run-time control over MQTT (a watch goes to its camera's actor), the same
reload on SIGHUP or a file change, ``/metrics`` and ``/healthz`` for the whole
cluster, and a graceful stop on SIGINT/SIGTERM.

Example:
    >>> app = ClusterApp(load_config(path), path, "auto")  # doctest: +SKIP
    >>> app.start(); app.reload("SIGHUP"); app.stop()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.app.cluster.metrics import cluster_health, cluster_metrics
from pipeline.app.cluster.reload import apply_cluster_config
from pipeline.app.cluster.runtime import ClusterRuntime
from pipeline.app.control import WatchControl, state_file_path
from pipeline.app.process import serve_until_signalled
from pipeline.app.prometheus import Health, MetricsServer
from pipeline.app.reload import FileWatcher
from pipeline.core.config import LookoutConfig, WatchConfig
from pipeline.core.config_loader import ConfigError, load_config
from pipeline.core.events import WatchState, WatchStatus
from pipeline.core.logs import log_unexpected
from pipeline.net.mqtt_connection import MqttConnection

log = logging.getLogger("lookout")


@dataclass(frozen=True)
class EndedRun:
    """An ended run as control's ``watch_ended`` reads it (``origin``, ``config``)."""

    origin: str
    config: WatchConfig


class ClusterApp:
    """The whole cluster process (see the module docstring).

    Args:
        config: the validated config.
        config_path: its file.
        address: the Ray cluster.
    """

    def __init__(self, config: LookoutConfig, config_path: Path | None, address: str) -> None:
        self.config = config
        self.config_path = config_path
        self.runtime = ClusterRuntime(config, config_path, address)
        self.control: WatchControl | None = None
        self.mqtt: MqttConnection | None = None
        self.metrics: MetricsServer | None = None
        self.watcher: FileWatcher | None = None
        self._reload_lock = threading.Lock()
        self._stopped = False

    def start(self) -> None:
        """Start the cluster, then control (restoring persistent watches), reload, metrics."""
        rt = self.runtime
        rt.start()
        cfg = self.config
        if cfg.control.enabled and cfg.mqtt is not None:
            client = cfg.mqtt.client_id
            mqtt_cfg = cfg.mqtt.model_copy(
                update={"client_id": f"{client}-control" if client else None}
            )
            self.mqtt = MqttConnection(mqtt_cfg)
            self.mqtt.start()
            state = state_file_path(cfg.control.state_file, self.config_path)
            self.control = WatchControl(rt, self.mqtt, cfg.control, state)
            self.control.restore()
            self.control.start()
        if cfg.reload.watch_file and self.config_path is not None:
            self.watcher = FileWatcher(
                self.config_path, self._reload_on_change, cfg.reload.poll_interval_s
            ).start()
        if cfg.metrics.enabled:
            self.metrics = MetricsServer(
                lambda: cluster_metrics(rt), self.health, cfg.metrics.host, cfg.metrics.port
            ).start()

    def _reload_on_change(self) -> None:
        self.reload("file change")

    def reload(self, why: str) -> bool:
        """Load the config file again and apply it cluster-wide; an invalid file changes nothing."""
        if self.config_path is None:
            return False
        with self._reload_lock:
            if self.watcher is not None:
                self.watcher.mark_current()
            try:
                new = load_config(self.config_path)
                apply_cluster_config(self.runtime, new)
            except ConfigError as err:
                log.warning(
                    "reload (%s): %s is invalid; the running config stays:\n  %s",
                    why,
                    self.config_path,
                    "\n  ".join(str(p) for p in err.problems),
                )
                return False
            except Exception as exc:
                log_unexpected(log, f"reload ({why}) failed", exc)
                return False
            self.config = new
            return True

    def tick(self) -> None:
        """Periodic bookkeeping: ended persistent run-time watches leave the state file."""
        if self.control is None:
            return
        for ended in self.runtime.take_ended():
            run = _ended_run(ended)
            state = WatchState(
                id="", name=ended.name, camera="", condition="", status=WatchStatus(ended.status)
            )
            self.control.watch_ended(run, state)

    def health(self) -> Health:
        """The /healthz verdict of the whole cluster."""
        return cluster_health(self.runtime)

    def stop(self) -> None:
        """Graceful stop (safe to call twice)."""
        if self._stopped:
            return
        self._stopped = True
        if self.watcher is not None:
            self.watcher.stop()
        if self.control is not None:
            self.control.stop()
        self.runtime.stop()
        if self.mqtt is not None:
            self.mqtt.stop(self.config.shutdown.flush_s)
        if self.metrics is not None:
            self.metrics.close()


def _ended_run(ended: Any) -> EndedRun:
    """What control needs of an ended run: its origin, name and whether it is persistent."""
    watch = WatchConfig.model_construct(
        name=ended.name, camera="", condition="", persistent=bool(ended.persistent)
    )
    return EndedRun(str(ended.origin), watch)


def run_cluster_until_signalled(
    config: LookoutConfig, config_path: Path | None, address: str
) -> int:
    """Run on a cluster until SIGINT/SIGTERM; SIGHUP reloads; a second signal exits at once."""
    return serve_until_signalled(ClusterApp(config, config_path, address), tick_s=0.5)
