"""Ray's nodes and the camera actors on them, as the driver tracks them.

Example:
    >>> connect("auto")  # doctest: +SKIP
    >>> [n.capacity for n in live_nodes(config, head)]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import ActorDiedError, GetTimeoutError, RayError

from pipeline.app.cluster.host import HostStats
from pipeline.app.cluster.placement import (
    Group,
    NodeInfo,
    PlacementError,
    node_capacity,
    node_load,
    pick_node,
)
from pipeline.app.cluster.ray_settings import apply_ray_settings
from pipeline.core.config import LookoutConfig
from pipeline.core.redact import redact


@dataclass
class Hosted:
    """One camera group and the actor that hosts it now."""

    group: Group
    actor: Any = None
    holder: str = ""
    generation: int = 0
    launched_at: float = 0.0
    answered_at: float | None = None
    ping: Any = None
    stats: HostStats | None = None
    restarts: int = 0
    lost_at: float | None = None
    recovered_in: float | None = None


@dataclass
class ClusterFigures:
    """Counters of the cluster (for metrics)."""

    groups_lost: int = 0
    recoveries: list[float] = field(default_factory=list)


def connect(address: str) -> bool:
    """Join or start a Ray cluster; returns whether this call started the connection.

    ``auto``: the cluster ``ray start`` made here, else a new local one; ``local``:
    a new local one; ``HOST:PORT``: a running head. A cluster started here runs
    with Lookout's :data:`~pipeline.app.cluster.ray_settings.RAY_SETTINGS`.
    """
    if ray.is_initialized():
        return False
    if address in ("auto", "local"):
        apply_ray_settings()
    ray_address = None if address == "auto" else address
    ray.init(
        address=ray_address,
        namespace="lookout",
        logging_level=logging.WARNING,
        log_to_driver=True,
        configure_logging=False,
    )
    return True


def live_nodes(cfg: LookoutConfig, head: str) -> list[NodeInfo]:
    """The nodes Ray knows, with their capacity in cameras."""
    out = []
    for n in ray.nodes():  # type: ignore[no-untyped-call]
        node_id = n["NodeID"]
        resources = n.get("Resources", {}) or {}
        capacity = node_capacity(resources, cfg.cluster.cameras_per_cpu)
        if node_id == head and not cfg.cluster.head_cameras:
            capacity = 0
        out.append(
            NodeInfo(
                node_id=node_id,
                cpus=float(resources.get("CPU", 0.0)),
                capacity=capacity,
                address=str(n.get("NodeManagerAddress", "")),
                alive=bool(n.get("Alive")),
                head=node_id == head,
            )
        )
    return out


def replacement_node(
    cfg: LookoutConfig, head: str, hosted: Hosted, hosts: list[Hosted]
) -> NodeInfo:
    """The least loaded live node for a lost group: another than its own where possible.

    Raises:
        PlacementError: no live node is left to host it.
    """
    nodes = live_nodes(cfg, head)
    gone = hosted.group.node_id
    load = node_load([h.group for h in hosts if h is not hosted])
    size = len(hosted.group.cameras)
    try:
        # Elsewhere if possible: a lost actor's node may be dying before Ray says so.
        return pick_node(size, nodes, load, {gone})
    except PlacementError:
        if any(n.node_id == gone and not n.alive for n in nodes):
            raise
    return pick_node(size, nodes, load)


def why_lost(exc: BaseException) -> str:
    """Why an actor counts as lost, in words for the log (no secret, one line)."""
    if isinstance(exc, ActorDiedError):
        return "its actor died (node lost or process ended)"
    if isinstance(exc, GetTimeoutError):
        return "no answer"
    return redact(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


class Departed:
    """Lost actors whose backend slots go back once Ray says they are dead.

    An actor that stopped answering may still be looking until the kill takes:
    its slots are given back (``give_back(holder)``) only when a call to it
    fails with :class:`~ray.exceptions.ActorDiedError`; one already known dead
    (``actor=None``) gives them back at once. Its leases run out in any case.

    Example:
        >>> departed = Departed(print)
        >>> departed.add("g1-2", None)
        g1-2
    """

    def __init__(self, give_back: Callable[[str], None]) -> None:
        self.give_back = give_back
        self._probes: dict[str, tuple[Any, Any]] = {}

    def add(self, holder: str, actor: Any) -> None:
        """A lost actor (``None``: known dead) that held slots as ``holder``."""
        if actor is None:
            self.give_back(holder)
            return
        try:
            self._probes[holder] = (actor, actor.ping.remote())
        except RayError:
            self.give_back(holder)

    def check(self) -> None:
        """Give back the slots of those Ray now says are dead; ask the others again."""
        if not self._probes:
            return
        refs = {probe: holder for holder, (_, probe) in self._probes.items()}
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
        for ref in ready:
            holder = refs[ref]
            actor = self._probes.pop(holder)[0]
            try:
                ray.get(ref)
            except ActorDiedError:
                self.give_back(holder)
                continue
            except RayError:
                pass  # unreachable: not yet known dead
            self.add(holder, actor)
