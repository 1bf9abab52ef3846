"""Reload ``pipeline.toml`` on a cluster: each actor gets its group's new config.

The hub takes the new sinks (as a reload in one process) and the ledger the
new watches; every camera actor applies its group's new config with the
single-process :func:`~pipeline.app.reload.apply_config`, so a watch that
did not change keeps running and a camera that stays keeps its connection.
Removed cameras leave their group (an emptied group's actor stops); added
cameras join the smallest group on the least loaded node, or a new group.

Example:
    >>> apply_cluster_config(runtime, load_config(path))  # doctest: +SKIP
"""

from __future__ import annotations

import logging

import ray

from pipeline.app.cluster.nodes import Hosted, live_nodes
from pipeline.app.cluster.placement import Group, group_config, node_load, pick_node
from pipeline.app.cluster.refusals import cluster_problems
from pipeline.app.cluster.runtime import CALL_TIMEOUT_S, ClusterRuntime
from pipeline.app.reload import ReloadPlan, plan_reload
from pipeline.core.config import LookoutConfig
from pipeline.core.config_loader import ConfigError, check_references

log = logging.getLogger("lookout.reload")


def place_new_cameras(rt: ClusterRuntime, cameras: list[str]) -> list[Hosted]:
    """Add cameras to groups (call with the runtime's lock held); returns new groups."""
    new: list[Hosted] = []
    nodes = live_nodes(rt.config, rt.node_id)
    for camera in sorted(cameras):
        groups = [h.group for h in [*rt.hosts.values(), *new]]
        node = pick_node(1, nodes, node_load(groups))
        here = [h for h in [*rt.hosts.values(), *new] if h.group.node_id == node.node_id]
        per_actor = rt.config.cluster.cameras_per_actor
        target = min(here, key=lambda h: (len(h.group.cameras), h.group.group_id), default=None)
        if target is None or (per_actor is not None and len(target.group.cameras) >= per_actor):
            gid = f"g{_next_id(rt, new)}"
            target = Hosted(Group(gid, (camera,), node.node_id))
            new.append(target)
            continue
        cams = tuple(sorted((*target.group.cameras, camera)))
        target.group = Group(target.group.group_id, cams, target.group.node_id)
    return new


def _next_id(rt: ClusterRuntime, new: list[Hosted]) -> int:
    ids = [int(g[1:]) for g in rt.hosts if g[1:].isdigit()] + [
        int(h.group.group_id[1:]) for h in new
    ]
    return max(ids, default=0) + 1


def apply_cluster_config(rt: ClusterRuntime, new: LookoutConfig) -> ReloadPlan:
    """Move a running cluster to ``new`` (see the module docstring).

    Raises:
        ConfigError: the new config is not whole or needs a single process (nothing changed).
    """
    problems = check_references(new) + cluster_problems(new)
    if problems:
        raise ConfigError(problems)
    plan = plan_reload(rt.config, new)
    hub = rt.hub
    ray.get(hub.apply.remote(new), timeout=CALL_TIMEOUT_S)
    ray.get(
        [hub.want.remote(w, "config", w.name in plan.watches_changed) for w in new.watches],
        timeout=CALL_TIMEOUT_S,
    )
    with rt.lock:
        placed = {c for h in rt.hosts.values() for c in h.group.cameras}
        rt.config = new
        for hosted in rt.hosts.values():
            kept = tuple(c for c in hosted.group.cameras if c in new.cameras)
            hosted.group = Group(hosted.group.group_id, kept, hosted.group.node_id)
        added = place_new_cameras(rt, [c for c in new.cameras if c not in placed])
        skip = ray.get(hub.ended_names.remote(), timeout=CALL_TIMEOUT_S)
        refs = []
        for gid, hosted in list(rt.hosts.items()):
            if hosted.actor is None:
                continue  # moving: it starts with the new config
            if not hosted.group.cameras:
                refs.append(hosted.actor.stop.remote())
                del rt.hosts[gid]
                continue
            sub = group_config(new, gid, hosted.group.cameras, skip)
            refs.append(hosted.actor.apply.remote(sub))
        for hosted in added:
            rt.hosts[hosted.group.group_id] = hosted
            rt.launch(hosted)
    ray.wait(refs, num_returns=len(refs), timeout=CALL_TIMEOUT_S)
    gone = set(plan.watches_removed) | {
        w["name"]
        for w in ray.get(hub.listing.remote(), timeout=CALL_TIMEOUT_S)
        if w["origin"] == "runtime" and w["camera"] not in new.cameras
    }
    ray.get([hub.forget.remote(n) for n in gone], timeout=CALL_TIMEOUT_S)
    log.info("reloaded (cluster): %s", plan.summary())
    if plan.restart_only:
        log.warning(
            "reload: changes to [%s] take effect at the next start", "], [".join(plan.restart_only)
        )
    return plan
