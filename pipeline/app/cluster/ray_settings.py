"""Ray's own settings that Lookout uses: fewer timers in Ray's daemons and workers.

Ray's defaults suit clusters of busy tasks: its raylets poll every 100-250 ms
(resource reports, GC and memory checks, disk usage, idle workers), every
process times each event-loop handler, every actor call sends task events to
the control store and every process exports Ray's own metrics. Lookout's
actors are few and long-lived and the whole cluster may idle between looks,
so on three loopback nodes these timers cost about as much CPU as 100 cheap
cameras (``benchmarks.cluster``). :data:`RAY_SETTINGS` are Ray system-config
variables (``ray_config_def.h``) that turn the observability off and lengthen
the polls; none of them is on the path that finds a dead node (the control
store's health checks keep Ray's defaults), so recovery is unchanged.

They are environment variables: every Ray process a process starts inherits
them. Lookout sets them (:func:`apply_ray_settings`, each only where the
environment does not set it already) before it starts a local cluster
(``--ray auto`` with no cluster running, ``--ray local``); on machines where
an operator runs ``ray start``, put them in its environment (see the README,
"Running on a cluster"). Joining a running cluster they change only the
driver's own process.

Example:
    >>> env = {"RAY_event_stats": "1"}
    >>> sorted(apply_ray_settings(env))[:2]
    ['AUTOSCALER_UPDATE_INTERVAL_S', 'RAY_enable_metrics_collection']
    >>> env["RAY_event_stats"], env["RAY_task_events_report_interval_ms"]
    ('1', '0')
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

RAY_SETTINGS: dict[str, str] = {
    # Observability Lookout does not use (it has its own /metrics and logs).
    "RAY_event_stats": "0",  # per-handler timing of every event loop
    "RAY_task_events_report_interval_ms": "0",  # task events for Ray's dashboard and state API
    "RAY_enable_metrics_collection": "0",  # Ray's own Prometheus metrics
    # Raylet polls, from every 100-250 ms to every second.
    "RAY_raylet_report_resources_period_milliseconds": "1000",  # resource view to the GCS
    "RAY_raylet_check_gc_period_milliseconds": "1000",  # object store memory pressure
    "RAY_memory_monitor_refresh_ms": "1000",  # the OOM killer's check (still on)
    "RAY_local_fs_monitor_interval_ms": "1000",  # disk usage of the object store
    "RAY_kill_idle_workers_interval_ms": "1000",  # idle worker processes
    "RAY_object_manager_timer_freq_ms": "1000",  # object pull/push retries (every 100 ms)
    # Every worker's task backlog, for the autoscaler (Lookout's actors queue no tasks).
    "RAY_report_worker_backlog_interval_ms": "5000",
    # Not a system-config variable: the autoscaler monitor's loop on the head (every 5 s).
    "AUTOSCALER_UPDATE_INTERVAL_S": "30",
}
"""Ray system-config variables (``RAY_`` + a name in Ray's ``ray_config_def.h``), one of
Ray's autoscaler monitor, and their values."""


def apply_ray_settings(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Put :data:`RAY_SETTINGS` into ``environ`` (``os.environ``) where not set; returns those set.

    Call it before Ray starts any process (``ray.init`` that starts a cluster,
    ``ray.cluster_utils.Cluster``): they read it when they start.
    """
    env = os.environ if environ is None else environ
    applied = []
    for key, value in RAY_SETTINGS.items():
        if key not in env:
            env[key] = value
            applied.append(key)
    return applied
