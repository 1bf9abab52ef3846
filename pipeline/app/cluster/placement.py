"""Which actor hosts which cameras, on which node: pure decisions, no Ray.

A camera's decode, detector and watches live in one actor (one process), so a
watch never gets its frames over the network. An actor process costs tens of
MB before its first camera (measured: ``python -m benchmarks.cluster``), so
cameras are grouped: by default a node runs as many actors as it has CPUs
(the GIL makes one process use about one core) and shares its cameras
evenly among them; ``[cluster] cameras_per_actor`` fixes the group size
instead. Cameras go to nodes in proportion to their capacity (cameras per CPU,
or a node's own ``lookout_cameras`` resource). When a node is lost, each of its
groups moves whole to the least loaded node that is left.

Example:
    >>> nodes = [NodeInfo("a", cpus=2, capacity=16), NodeInfo("b", cpus=1, capacity=8)]
    >>> groups = plan_groups(["c1", "c2", "c3", "c4", "c5", "c6"], nodes)
    >>> [(g.node_id, g.cameras) for g in groups]
    [('a', ('c1', 'c4')), ('a', ('c2', 'c5')), ('b', ('c3', 'c6'))]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from pipeline.core.config import (
    FrigateDetectConfig,
    LookoutConfig,
    MqttJsonDetectConfig,
)

CAMERA_RESOURCE = "lookout_cameras"
"""A Ray node resource that sets the node's capacity in cameras (``ray start --resources``)."""


class PlacementError(RuntimeError):
    """The cluster cannot host the cameras (no node with capacity)."""


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """One Ray node as placement sees it.

    Attributes:
        node_id: Ray's node id.
        cpus: CPUs the node gives Ray.
        capacity: cameras it may host.
        address: its IP address (for logs and metrics).
        alive: whether Ray counts it alive.
        head: whether Lookout's driver (hub, state) runs there.
    """

    node_id: str
    cpus: float = 1.0
    capacity: int = 8
    address: str = ""
    alive: bool = True
    head: bool = False


@dataclass(frozen=True, slots=True)
class Group:
    """Cameras hosted together by one actor.

    Attributes:
        group_id: stable name (``g1``, ``g2``...): it stays when the group moves.
        cameras: camera names, sorted.
        node_id: the node it is placed on.
    """

    group_id: str
    cameras: tuple[str, ...]
    node_id: str


def node_capacity(resources: Mapping[str, float], cameras_per_cpu: float) -> int:
    """Cameras a node may host: its ``lookout_cameras`` resource, else CPUs x cameras_per_cpu.

    Example:
        >>> node_capacity({"CPU": 4.0}, 8.0), node_capacity({"CPU": 4.0, "lookout_cameras": 5}, 8)
        (32, 5)
    """
    declared = resources.get(CAMERA_RESOURCE)
    if declared is not None:
        return int(declared)
    return int(resources.get("CPU", 0.0) * cameras_per_cpu)


def _usable(nodes: Iterable[NodeInfo]) -> list[NodeInfo]:
    return sorted((n for n in nodes if n.alive and n.capacity > 0), key=lambda n: n.node_id)


def spread_cameras(cameras: Iterable[str], nodes: Sequence[NodeInfo]) -> dict[str, list[str]]:
    """Assign cameras to nodes in proportion to capacity (the least filled node next).

    Raises:
        PlacementError: no node has capacity, or all of it together is too small.
    """
    usable = _usable(nodes)
    names = sorted(cameras)
    total = sum(n.capacity for n in usable)
    if names and not usable:
        raise PlacementError("no live Ray node can host cameras (capacity 0 everywhere)")
    if len(names) > total:
        raise PlacementError(
            f"{len(names)} cameras but the cluster's capacity is {total}; add nodes, or raise "
            "cluster.cameras_per_cpu (or a node's lookout_cameras resource)"
        )
    load: dict[str, list[str]] = {n.node_id: [] for n in usable}
    for name in names:
        node = min(usable, key=lambda n: ((len(load[n.node_id]) + 1) / n.capacity, n.node_id))
        load[node.node_id].append(name)
    return load


def actors_for(count: int, cpus: float, per_actor: int | None) -> int:
    """How many actors host ``count`` cameras on a node with ``cpus`` CPUs.

    Example:
        >>> actors_for(10, 4, None), actors_for(3, 4, None), actors_for(10, 4, 6)
        (4, 3, 2)
    """
    if count <= 0:
        return 0
    if per_actor is not None:
        return math.ceil(count / per_actor)
    return max(1, min(count, math.floor(cpus)))


def plan_groups(
    cameras: Iterable[str], nodes: Sequence[NodeInfo], per_actor: int | None = None
) -> list[Group]:
    """Spread cameras over nodes, then cut each node's share into actor groups.

    Raises:
        PlacementError: as :func:`spread_cameras`.
    """
    groups: list[Group] = []
    by_node = spread_cameras(cameras, nodes)
    cpus = {n.node_id: n.cpus for n in nodes}
    for node_id in sorted(by_node):
        names = by_node[node_id]
        k = actors_for(len(names), cpus[node_id], per_actor)
        for i in range(k):
            share = tuple(sorted(names[i::k]))
            groups.append(Group(f"g{len(groups) + 1}", share, node_id))
    return groups


def pick_node(
    size: int, nodes: Sequence[NodeInfo], load: Mapping[str, int], exclude: Iterable[str] = ()
) -> NodeInfo:
    """The node that takes ``size`` more cameras best: the least filled after taking them.

    A node past its capacity is chosen only when every node is (cameras keep
    running, over capacity, rather than stop).

    Raises:
        PlacementError: no live node with any capacity.
    """
    skip = set(exclude)
    usable = [n for n in _usable(nodes) if n.node_id not in skip]
    if not usable:
        raise PlacementError("no live Ray node is left to host cameras")

    def fill(n: NodeInfo) -> tuple[bool, float, str]:
        after = load.get(n.node_id, 0) + size
        return (after > n.capacity, after / n.capacity, n.node_id)

    return min(usable, key=fill)


def node_load(groups: Iterable[Group]) -> dict[str, int]:
    """Cameras per node."""
    load: dict[str, int] = {}
    for g in groups:
        load[g.node_id] = load.get(g.node_id, 0) + len(g.cameras)
    return load


def move(group: Group, node_id: str) -> Group:
    """The same group on another node."""
    return replace(group, node_id=node_id)


def needs_mqtt(cfg: LookoutConfig, cameras: Iterable[str]) -> bool:
    """Whether any of ``cameras`` takes its detections from MQTT (the actor then connects)."""
    return any(
        isinstance(cfg.cameras[c].detect, FrigateDetectConfig | MqttJsonDetectConfig)
        for c in cameras
        if c in cfg.cameras
    )


def group_config(
    cfg: LookoutConfig, group_id: str, cameras: Iterable[str], skip: Iterable[str] = ()
) -> LookoutConfig:
    """The config one actor runs: its cameras, their watches, every backend, no sinks.

    Sinks run once, on the head (:mod:`pipeline.app.cluster.hub`); the actor's
    only sink forwards to them, so its watches name none. The activity store,
    the web page, metrics, reload and control are the driver's. An actor
    connects to MQTT only for its cameras' MQTT detections, under its own
    client id.

    Args:
        cfg: the whole config.
        group_id: the group (suffix of an explicit MQTT client id).
        cameras: the group's cameras.
        skip: watches not to run (they ended before the group moved).
    """
    names = set(cameras)
    gone = set(skip)
    mqtt = None
    if cfg.mqtt is not None and needs_mqtt(cfg, names):
        client = cfg.mqtt.client_id
        mqtt = cfg.mqtt.model_copy(update={"client_id": f"{client}-{group_id}" if client else None})
    return cfg.model_copy(
        update={
            "cameras": {n: c for n, c in cfg.cameras.items() if n in names},
            "watches": [
                w.model_copy(update={"sinks": None})
                for w in cfg.watches
                if w.camera in names and w.name not in gone
            ],
            "sinks": {},
            "mqtt": mqtt,
            "activity": cfg.activity.model_copy(update={"enabled": False}),
            "web": cfg.web.model_copy(update={"enabled": False}),
            "metrics": cfg.metrics.model_copy(update={"enabled": False}),
            "reload": cfg.reload.model_copy(update={"watch_file": False}),
            "control": cfg.control.model_copy(update={"enabled": False}),
        }
    )
