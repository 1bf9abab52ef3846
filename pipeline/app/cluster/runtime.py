"""The driver of a cluster: place camera groups, route watches to them, move them when lost.

:class:`ClusterRuntime` connects to Ray, starts the hub (sinks, ledger and
backend slots) on its own node, spreads the cameras over the nodes in groups
(:mod:`pipeline.app.cluster.placement`), starts one
:class:`~pipeline.app.cluster.host.CameraHost` per group, and then watches
them: one question to each actor is always open (it answers within a third
of ``lost_after_s``, one call per answer), and the answers are looked at every
``health_interval_s``. An actor whose node died (Ray says so at once) or that has not answered for
``lost_after_s`` is replaced on the least loaded node that is left, with the
current config and the ledger's resume points, so its watches go on with
their job ids. It is also the :class:`~pipeline.app.control.WatchHost` that
run-time control uses: a watch goes to the actor of its camera.

Example:
    >>> rt = ClusterRuntime(config, path, "auto")  # doctest: +SKIP
    >>> rt.start(); rt.start_watch(watch, "runtime"); rt.stop()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from pipeline.app.cluster.host import CameraHost, GroupSpec, HostStats
from pipeline.app.cluster.hub_host import HostingHub, HubGroup, end_actor, hub_takes
from pipeline.app.cluster.ledger import plain
from pipeline.app.cluster.nodes import (
    ClusterFigures,
    Departed,
    Hosted,
    connect,
    live_nodes,
    replacement_node,
    why_lost,
)
from pipeline.app.cluster.placement import PlacementError, group_config, move, plan_groups
from pipeline.app.cluster.refusals import cluster_problems
from pipeline.app.cluster.slots import SLOTS_GROUP, SLOTS_THREADS, backend_limits
from pipeline.app.watches import Origin
from pipeline.core.config import LookoutConfig, WatchConfig
from pipeline.core.config_loader import ConfigError, check_references
from pipeline.core.logs import log_unexpected

log = logging.getLogger("lookout.cluster")

HubActor = ray.remote(concurrency_groups={SLOTS_GROUP: SLOTS_THREADS})(HostingHub)  # type: ignore[call-overload]
HostActor = ray.remote(CameraHost)
CALL_TIMEOUT_S = 30.0
"""The longest wait for an actor's answer to a control or reload call."""
FIRST_ANSWER_S = 60.0
"""How long a new actor may take to answer its first ping (process start, imports)."""
HOLD_MAX_S = 5.0
"""The longest a camera actor holds its answer to a ping (see :meth:`CameraHost.ping`)."""


@dataclass(frozen=True, slots=True)
class StartedWatch:
    """What :meth:`ClusterRuntime.start_watch` returns (control reads ``job_id``)."""

    name: str
    job_id: str
    group: str
    node_id: str


class ClusterRuntime:
    """Cameras on camera actors, sinks and state on the hub (see the module docstring).

    Args:
        config: the validated config.
        config_path: its file.
        address: the Ray cluster (``auto``, ``local``, ``HOST:PORT``).

    Raises:
        ConfigError: the config names something it lacks, or needs a single process.
    """

    def __init__(self, config: LookoutConfig, config_path: Path | None, address: str) -> None:
        problems = check_references(config) + cluster_problems(config)
        if problems:
            raise ConfigError(problems, str(config_path or ""))
        self.config = config
        self.config_path = config_path
        self.address = address
        self.hosts: dict[str, Hosted] = {}
        self.hub: Any = None
        self.node_id = ""
        self.figures = ClusterFigures()
        self.departed = Departed(lambda holder: self.hub.release_holder.remote(holder))
        self.started_at = time.time()
        self._stopping = False
        self._owns_ray = False
        self.lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        """Whether a shutdown began."""
        return self._stopping

    # ------------------------------------------------------------ start

    def start(self) -> None:
        """Connect, start the hub, place and start every camera group."""
        cfg = self.config
        self._owns_ray = connect(self.address)
        self.node_id = ray.get_runtime_context().get_node_id()
        here = NodeAffinitySchedulingStrategy(self.node_id, soft=False)
        level = logging.getLevelName(logging.getLogger("lookout").getEffectiveLevel())
        # Restarted by Ray where they crash (not where their node dies: that is the head).
        self.hub = HubActor.options(
            scheduling_strategy=here,
            num_cpus=0,
            max_concurrency=16,
            max_restarts=-1,
            enable_task_events=False,
        ).remote(
            cfg,
            str(self.config_path) if self.config_path else None,
            os.getcwd(),
            level,
            run_id=uuid.uuid4().hex,
        )
        ray.get(self.hub.begin_slots.remote(), timeout=FIRST_ANSWER_S)
        ray.get([self.hub.want.remote(w, "config") for w in cfg.watches])
        groups = plan_groups(
            cfg.cameras, live_nodes(cfg, self.node_id), cfg.cluster.cameras_per_actor
        )
        for group in groups:
            self.hosts[group.group_id] = hosted = Hosted(group)
            self.launch(hosted)
        self._wait_started(FIRST_ANSWER_S)
        ray.get(self.hub.started.remote([w.name for w in cfg.watches]))
        nodes = sorted({g.node_id for g in groups})
        log.info(
            "cluster: %d cameras in %d actors on %d nodes; %d watches",
            len(cfg.cameras),
            len(groups),
            len(nodes),
            len(cfg.watches),
        )
        self._thread = threading.Thread(target=self._supervise, name="cluster", daemon=True)
        self._thread.start()

    def _spec(self, hosted: Hosted) -> GroupSpec:
        cfg = self.config
        group = hosted.group
        skip: set[str] = ray.get(self.hub.ended_names.remote())
        sub = group_config(cfg, group.group_id, group.cameras, skip)
        runtime: list[WatchConfig] = [
            w
            for w in ray.get(self.hub.runtime_watches.remote())
            if w.camera in group.cameras and w.name not in skip
        ]
        resumes = ray.get(self.hub.resumes.remote([*sub.watches, *runtime]))
        waits = {n: float(getattr(b, "request_timeout_s", 120.0)) for n, b in cfg.backends.items()}
        level = logging.getLevelName(logging.getLogger("lookout").getEffectiveLevel())
        return GroupSpec(
            group_id=group.group_id,
            holder=hosted.holder,
            config=sub,
            runtime=tuple(runtime),
            resumes=resumes,
            limits=backend_limits(cfg),
            waits=waits,
            lease_s=cfg.cluster.lost_after_s,
            flush_interval_s=cfg.cluster.flush_interval_s,
            looks=cfg.activity.enabled,
            cwd=os.getcwd(),
            log_level=level,
            json_logs=cfg.log.json_lines,
        )

    def launch(self, hosted: Hosted) -> None:
        """Start the group's actor on its node (pinned: if the node is gone, it fails fast)."""
        hosted.generation += 1
        hosted.holder = f"{hosted.group.group_id}-{hosted.generation}"
        spec = self._spec(hosted)
        hosted.launched_at = time.monotonic()
        hosted.answered_at = None
        hosted.stats = None
        in_hub = [h.group.group_id for h in self.hosts.values() if isinstance(h.actor, HubGroup)]
        if hub_takes(hosted.group, self.node_id, self.config.cluster.hub_hosts_cameras, in_hub):
            hosted.actor = HubGroup(self.hub, hosted.group.group_id, hosted.holder)
            hosted.ping = self.hub.host_start.remote(spec)
            return
        hosted.actor = HostActor.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(hosted.group.node_id, soft=False),
            num_cpus=0,
            max_restarts=0,
            max_concurrency=8,
            enable_task_events=False,
        ).remote(spec, self.hub)
        hosted.ping = hosted.actor.start.remote()

    def _wait_started(self, timeout_s: float) -> None:
        """Wait for the first start of every group (a failed one is moved by the supervisor)."""
        refs = [h.ping for h in self.hosts.values() if h.ping is not None]
        ray.wait(refs, num_returns=len(refs), timeout=timeout_s)

    # ------------------------------------------------------------ supervision

    def _supervise(self) -> None:
        interval = self.config.cluster.health_interval_s
        while not self._stop.wait(interval):
            try:
                self.check()
            except Exception as exc:
                log_unexpected(log, "cluster: supervision round failed", exc)

    def _ask(self, hosted: Hosted) -> None:
        """Ask an actor how it is; it answers within a third of ``lost_after_s`` (5 s at most).

        The first question after its start is answered at once.
        """
        hold = min(HOLD_MAX_S, self.config.cluster.lost_after_s / 3) if hosted.stats else 0.0
        hosted.ping = hosted.actor.ping.remote(hold)

    def check(self) -> None:
        """One round: collect answers, ask again, replace actors that are lost."""
        self.departed.check()
        with self.lock:
            hosts = [h for h in self.hosts.values() if h.actor is not None]
        refs = {h.ping: h for h in hosts if h.ping is not None}
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0.5) if refs else ([], [])
        now = time.monotonic()
        dead: set[str] | None = None
        for ref in ready:
            hosted = refs[ref]
            try:
                answer = ray.get(ref)
            except ActorUnavailableError:
                # Unreachable for now: a dead node, or a blip. Lost once Ray says the
                # node is dead, or after lost_after_s without an answer.
                if dead is None:
                    dead = {n.node_id for n in live_nodes(self.config, "") if not n.alive}
                if hosted.group.node_id in dead:
                    self._lost(hosted, "its node died", confirmed=True)
                else:
                    self._ask(hosted)
                continue
            except RayError as exc:
                self._lost(hosted, why_lost(exc), confirmed=isinstance(exc, ActorDiedError))
                continue
            hosted.answered_at = now
            if isinstance(answer, HostStats):
                hosted.stats = answer
                self._recovered(hosted, now)
            self._ask(hosted)
        for hosted in hosts:
            if hosted.actor is None or hosted.answered_at == now:
                continue
            since = hosted.answered_at or hosted.launched_at
            limit = self.config.cluster.lost_after_s
            if hosted.answered_at is None:
                limit = max(limit, FIRST_ANSWER_S)
            if now - since > limit:
                self._lost(hosted, f"no answer for {now - since:.0f} s")

    def _recovered(self, hosted: Hosted, now: float) -> None:
        if hosted.lost_at is None or hosted.stats is None or not hosted.stats.started:
            return
        took = now - hosted.lost_at
        hosted.lost_at = None
        hosted.recovered_in = took
        self.figures.recoveries.append(took)
        log.warning(
            "cluster: group %s (cameras %s) runs again on node %s, %.1f s after it was lost",
            hosted.group.group_id,
            ", ".join(hosted.group.cameras),
            hosted.group.node_id[:8],
            took,
        )

    def _lost(self, hosted: Hosted, why: str, *, confirmed: bool = False) -> None:
        """Replace a lost actor on the least loaded node that is left.

        Its backend slots come back once Ray says it is dead (``confirmed``, else
        after the kill, see :class:`~pipeline.app.cluster.nodes.Departed`), or when
        its leases run out.
        """
        if self._stopping:
            return
        with self.lock:
            old = hosted.actor
            hosted.actor = None
            hosted.ping = None
            gone = hosted.group.node_id
            if hosted.lost_at is None:
                hosted.lost_at = time.monotonic()
            self.figures.groups_lost += 1
            hosted.restarts += 1
        with contextlib.suppress(Exception):  # it is gone already
            end_actor(old)
        # A group the hub hosted holds no slots once the hub stops it, or died with it: a
        # restarted hub need not wait for its old leases, only for the live actors' reports.
        in_hub = isinstance(old, HubGroup)
        self.departed.add(hosted.holder, None if confirmed or in_hub else old)
        if in_hub:
            live = [h.holder for h in self.hosts.values() if h.actor is not None]
            self.hub.begin_slots_after.remote(live)
        try:
            node = replacement_node(self.config, self.node_id, hosted, list(self.hosts.values()))
        except PlacementError as exc:
            log.error("cluster: group %s cannot move yet: %s", hosted.group.group_id, exc)
            hosted.launched_at = time.monotonic()
            hosted.actor, hosted.ping = old, None  # tried again next round
            return
        log.warning(
            "cluster: group %s (cameras %s) lost on node %s (%s); moving to node %s",
            hosted.group.group_id,
            ", ".join(hosted.group.cameras),
            gone[:8],
            why,
            node.node_id[:8],
        )
        with self.lock:
            hosted.group = move(hosted.group, node.node_id)
            self.launch(hosted)

    # ------------------------------------------------------------ watches (WatchHost)

    def _host_of(self, camera: str) -> Hosted:
        with self.lock:
            for hosted in self.hosts.values():
                if camera in hosted.group.cameras:
                    if hosted.actor is None:
                        raise RuntimeError(f"camera {camera!r} is moving to another node")
                    return hosted
        raise ValueError(f"unknown camera {camera!r}")

    def start_watch(self, watch: WatchConfig, origin: Origin = "config") -> StartedWatch:
        """Start (or replace) a watch on the actor of its camera.

        Raises:
            ValueError: unknown camera (or what the actor refuses).
            RuntimeError: stopping, or the camera's group is moving right now.
        """
        if self._stopping:
            raise RuntimeError("the pipeline is shutting down")
        hosted = self._host_of(watch.camera)
        request = watch.model_copy()
        if hasattr(request, "_maker"):
            request._maker = None  # the control's sink maker stays here; the hub makes its own
        ray.get(self.hub.want.remote(request, origin, True), timeout=CALL_TIMEOUT_S)
        job = ray.get(hosted.actor.start_watch.remote(plain(watch), origin), timeout=CALL_TIMEOUT_S)
        return StartedWatch(watch.name, job, hosted.group.group_id, hosted.group.node_id)

    def cancel_watch(self, name: str, wait_s: float = 5.0, *, forget: bool = False) -> bool:
        """Cancel a watch wherever it runs; ``forget``: gone for good."""
        camera = next((w["camera"] for w in self.watch_list() if w["name"] == name), None)
        found = False
        if camera is not None:
            hosted = self._host_of(camera)
            found = ray.get(
                hosted.actor.cancel_watch.remote(name, wait_s, forget),
                timeout=wait_s + CALL_TIMEOUT_S,
            )
        if forget:
            ray.get(self.hub.forget.remote(name), timeout=CALL_TIMEOUT_S)
        return bool(found or camera is not None)

    def watch_list(self) -> list[dict[str, Any]]:
        """Every watch with its last state, and the node and group that host its camera."""
        where = {}
        with self.lock:
            for h in self.hosts.values():
                for camera in h.group.cameras:
                    where[camera] = (h.group.group_id, h.group.node_id)
        out = []
        for w in ray.get(self.hub.listing.remote(), timeout=CALL_TIMEOUT_S):
            group, node = where.get(w["camera"], ("", ""))
            out.append(w | {"group": group, "node": node})
        return out

    def take_ended(self) -> list[Any]:
        """Runs that ended since the last call (for control's persistent watches)."""
        return list(ray.get(self.hub.take_ended.remote(), timeout=CALL_TIMEOUT_S))

    # ------------------------------------------------------------ stop

    def stop(self) -> None:
        """Graceful stop: looks in flight finish within ``grace_s``, sinks flush, actors end."""
        if self._stopping:
            return
        self._stopping = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        shutdown = self.config.shutdown
        with self.lock:
            actors = [h.actor for h in self.hosts.values() if h.actor is not None]
        refs = [a.stop.remote() for a in actors]
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=shutdown.grace_s + shutdown.flush_s + 5)
        if self.hub is not None:
            try:
                ray.get(self.hub.stop.remote(), timeout=shutdown.flush_s + 10)
            except RayError as exc:
                log.error("cluster: the hub did not stop cleanly: %s", exc)
        for actor in [*actors, self.hub]:
            if actor is not None and not isinstance(actor, HubGroup):
                try:
                    ray.kill(actor, no_restart=True)
                except Exception as exc:
                    log_unexpected(log, "cluster: kill", exc, expected=(Exception,))
        if self._owns_ray:
            ray.shutdown()
