"""A camera actor: the decode, detections and watches of a group of cameras, on one node.

:class:`CameraHost` runs a :class:`HostedPipeline`, the single-process
:class:`~pipeline.app.runner.Pipeline` on the group's config, with three
differences: its only sink is a :class:`~pipeline.app.cluster.relay.Relay` to
the hub; a watch it starts takes over the earlier run the ledger gave it
(:mod:`operators.resume`); and a backend with a ``max_concurrency`` takes a
slot of the actor's leased share for each look (:mod:`pipeline.app.cluster.leases`). A
restarted actor re-runs ``__init__``: everything it needs comes in its
:class:`GroupSpec`, built by the driver from the current config and ledger.

Example:
    >>> host = CameraHost(spec, hub)  # doctest: +SKIP
    >>> host.start(); host.ping().watches  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import ray

from operators.backends.base import Backend
from operators.resume import Resume
from pipeline.app.cluster.lease_book import Grant, Report
from pipeline.app.cluster.leases import LeasedPermits, LimitedBackend, SlotsLink
from pipeline.app.cluster.relay import HubLink, Item, Relay
from pipeline.app.cluster.slots import SLOTS_GROUP, backend_limits
from pipeline.app.graph import Graph
from pipeline.app.metrics import pipeline_health, pipeline_metrics
from pipeline.app.reload import apply_config
from pipeline.app.runner import Pipeline
from pipeline.app.watches import Origin, Watches
from pipeline.core.config import LookoutConfig, WatchConfig
from pipeline.core.events import Alert, CameraState
from pipeline.core.logs import log_unexpected, setup_logging

log = logging.getLogger("lookout.cluster")

DEFAULT_WAIT_S = 120.0
"""The longest wait for a backend slot when its config has no request timeout."""
CALL_TIMEOUT_S = 10.0
"""The longest wait for the hub to answer (beyond a renewal's own wait)."""


@dataclass(frozen=True)
class GroupSpec:
    """Everything a camera actor needs (it is rebuilt from this when it moves).

    Attributes:
        group_id: the group (``g1``...).
        holder: this actor's name (group and generation): who holds backend slots.
        config: the group's config (:func:`~pipeline.app.cluster.placement.group_config`).
        runtime: run-time watches of the group's cameras, to start after the config's.
        resumes: where each watch's run left off, by watch name.
        limits: backends with a cluster-wide limit (name -> slots).
        waits: longest wait for a slot per backend, in seconds.
        lease_s: how long a lease on backend slots holds without a renewal.
        flush_interval_s: how often states go to the hub.
        looks: forward looks (the head keeps an activity store).
        cwd: the driver's working folder.
        log_level, json_logs: logging.
    """

    group_id: str
    holder: str
    config: LookoutConfig
    runtime: tuple[WatchConfig, ...] = ()
    resumes: dict[str, Resume] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)
    waits: dict[str, float] = field(default_factory=dict)
    lease_s: float = 10.0
    flush_interval_s: float = 1.0
    looks: bool = False
    cwd: str | None = None
    log_level: str = "INFO"
    json_logs: bool = False


@dataclass(frozen=True)
class HostStats:
    """What a camera actor says when asked how it is (``ping``).

    Attributes:
        group_id, holder, node_id, pid: who and where.
        started: whether its pipeline has started.
        rss_bytes: its resident memory.
        cpu_seconds: CPU time its process used so far.
        cameras: its cameras.
        watches: watch name -> status.
        looks, alerts: totals of its watches since it started.
        relay: the relay's counters.
        leases: per limited backend, the actor's grant and slots in use.
        problems: its health problems (cameras offline too long).
    """

    group_id: str
    holder: str
    node_id: str
    pid: int
    started: bool
    rss_bytes: int
    cpu_seconds: float
    cameras: tuple[str, ...]
    watches: dict[str, str]
    looks: int
    alerts: int
    relay: dict[str, int]
    leases: dict[str, dict[str, int]]
    problems: tuple[str, ...]


def rss_bytes() -> int:
    """Resident memory of this process (Linux ``/proc``; else the peak from ``getrusage``)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class SlotGraph(Graph):
    """The graph of a camera actor: backends with a cluster-wide limit take slots per look."""

    def __init__(
        self,
        config: LookoutConfig,
        on_camera_state: Callable[[CameraState, bool], None],
        permits: LeasedPermits,
        waits: dict[str, float],
    ) -> None:
        super().__init__(config, None, on_camera_state)
        self.permits = permits
        self.waits = waits
        self._limited: dict[int, LimitedBackend] = {}

    def backend(self, name: str, *, has_detections: bool = True) -> Backend:
        """The started backend ``name``, wrapped to take slots when it has a limit."""
        inner = super().backend(name, has_detections=has_detections)
        if not self.permits.limited(inner.name):
            return inner
        wrapped = self._limited.get(id(inner))
        if wrapped is None or wrapped.inner is not inner:
            wait = self.waits.get(inner.name, DEFAULT_WAIT_S)
            wrapped = self._limited[id(inner)] = LimitedBackend(inner, self.permits, wait)
        return cast(Backend, wrapped)


class HostedPipeline(Pipeline):
    """The single-process pipeline on a group's config, its events relayed to the hub."""

    def __init__(
        self,
        config: LookoutConfig,
        relay: Relay,
        resumes: dict[str, Resume],
        permits: LeasedPermits,
        waits: dict[str, float],
    ) -> None:
        super().__init__(config)
        self.graph = SlotGraph(config, self._camera_state, permits, waits)
        self.runs = Watches(self.graph, self.sinks, lambda: self.config)
        self.runs.resume_of = self._resume
        self.sinks.attach(relay)
        self._resumes = resumes

    def _resume(self, watch: WatchConfig) -> Resume | None:
        """The earlier run of ``watch`` to take over, once (later starts are new runs)."""
        return self._resumes.pop(watch.name, None)


class RayHubLink:
    """A relay's way to the hub actor (blocking calls with a timeout)."""

    def __init__(self, hub: Any, group: str, timeout_s: float = CALL_TIMEOUT_S) -> None:
        self.hub = hub
        self.group = group
        self.timeout_s = timeout_s

    def intake(self, items: list[Item]) -> None:
        """Deliver a batch; raises when the hub did not take it in time."""
        ray.get(self.hub.intake.remote(self.group, items), timeout=self.timeout_s)

    def alert(self, alert: Alert) -> None:
        """Hand an alert over; returns once the hub recorded it."""
        ray.get(self.hub.alert.remote(self.group, alert), timeout=self.timeout_s)


class RaySlotsLink:
    """A holder's way to the backend slots (:class:`~pipeline.app.cluster.slots.Slots`): the hub."""

    def __init__(self, hub: Any) -> None:
        self.hub = hub

    def renew(self, holder: str, reports: dict[str, Report], wait_s: float) -> dict[str, Grant]:
        """Report and renew; raises when the hub did not answer in time.

        A renewal that may wait holds a thread of the hub's slots group, not one of its
        event intake.
        """
        method = self.hub.renew.options(concurrency_group=SLOTS_GROUP) if wait_s else self.hub.renew
        ref = method.remote(holder, reports, wait_s)
        grants: dict[str, Grant] = ray.get(ref, timeout=wait_s + CALL_TIMEOUT_S)
        return grants

    def release(self, holder: str) -> None:
        """Give back every slot of ``holder`` (without waiting)."""
        self.hub.release_holder.remote(holder)


class CameraHost:
    """The actor that hosts a group of cameras (see the module docstring).

    Args:
        spec: the group and everything it needs.
        hub: the hub actor.
        links: the ways to the hub's intake and slots instead of Ray calls to ``hub``
            (a group the hub's own process hosts, :mod:`~pipeline.app.cluster.hub_host`).
    """

    def __init__(
        self, spec: GroupSpec, hub: Any, *, links: tuple[HubLink, SlotsLink] | None = None
    ) -> None:
        if spec.cwd is not None and os.path.isdir(spec.cwd):
            os.chdir(spec.cwd)
        setup_logging(spec.log_level, spec.json_logs)
        self.spec = spec
        hub_link, slots_link = links or (RayHubLink(hub, spec.group_id), RaySlotsLink(hub))
        self.relay = Relay(hub_link, flush_interval_s=spec.flush_interval_s, looks=spec.looks)
        self.permits = LeasedPermits(slots_link, spec.holder, spec.limits, spec.lease_s)
        self.permits.open()
        self.pipeline = HostedPipeline(
            spec.config, self.relay, dict(spec.resumes), self.permits, spec.waits
        )
        self.started = False
        self._stopping = threading.Event()
        self.node_id = ray.get_runtime_context().get_node_id()

    def start(self) -> str:
        """Start the group's cameras and watches (config, then run-time); returns the node id."""
        p = self.pipeline
        p.start()
        for watch in self.spec.runtime:
            try:
                p.start_watch(watch, "runtime")
            except Exception as exc:
                log_unexpected(log, f"watch {watch.name}: cannot start", exc)
        self.started = True
        return self.node_id

    def ping(self, hold_s: float = 0.0) -> HostStats:
        """How this actor is: where, memory, CPU, watches, health.

        The answer comes after ``hold_s`` (sooner once it stops): the driver keeps one
        question open to each actor, so a lost actor shows at once (its call
        fails) and a live one costs one call per ``hold_s``.
        """
        self._stopping.wait(hold_s)
        p = self.pipeline
        stats = p.watch_stats
        cpu = os.times()
        m = p.config.metrics
        health = pipeline_health(p, m.camera_offline_s, m.sink_failing_s)
        return HostStats(
            group_id=self.spec.group_id,
            holder=self.spec.holder,
            node_id=self.node_id,
            pid=os.getpid(),
            started=self.started,
            rss_bytes=rss_bytes(),
            cpu_seconds=cpu.user + cpu.system,
            cameras=tuple(sorted(p.config.cameras)),
            watches={w["name"]: w["status"] for w in p.watch_list()},
            looks=sum(s.looks.total() for s in stats.values()),
            alerts=sum(s.alerts for s in stats.values()),
            relay=self.relay.stats(),
            leases=self.permits.stats(),
            problems=health.problems,
        )

    def start_watch(self, watch: WatchConfig, origin: Origin) -> str:
        """Start (or replace) a watch on one of this group's cameras; returns its job id."""
        return self.pipeline.start_watch(watch, origin).job_id

    def cancel_watch(self, name: str, wait_s: float = 5.0, forget: bool = False) -> bool:
        """Cancel a watch; returns whether it existed."""
        return self.pipeline.cancel_watch(name, wait_s, forget=forget)

    def apply(self, config: LookoutConfig) -> str:
        """Move to a reloaded group config (as a reload in one process); returns the summary."""
        self.permits.track(backend_limits(config))
        return apply_config(self.pipeline, config).summary()

    def metrics_text(self) -> str:
        """The cameras, watches and backends of this actor as Prometheus text."""
        return pipeline_metrics(self.pipeline)

    def stop(self, grace_s: float | None = None) -> float:
        """Graceful stop: looks in flight finish within ``grace_s``, states flushed to the hub.

        The backend slots it leased go back to the hub.
        """
        began = time.monotonic()
        self._stopping.set()
        self.pipeline.stop(grace_s)
        self.permits.close()
        return time.monotonic() - began
