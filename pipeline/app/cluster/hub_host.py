"""The hub's process hosts the head's first camera group: one Ray worker process fewer.

Every Ray worker process costs about 0.0045 of a core doing nothing (Ray's core
worker wakes every 10 ms to check for signals) and over 100 MB, so on a
cluster of cheap cameras the processes, not the cameras, are what distribution
costs (``benchmarks.cluster``). The hub already runs on the head, the one node
whose loss ends the cluster anyway, so with ``[cluster] hub_hosts_cameras``
(default on) the head's first camera group runs inside the hub's process
(:class:`HostingHub`): its relay and backend slots are plain calls into the
hub (no Ray call, no serialising), and the driver reaches it through
:class:`HubGroup`, which it uses exactly as a camera actor's handle.

What it costs: a crash of that process (say, in a camera's decoder) restarts
the hub (Ray restarts it, ``max_restarts=-1``; the outbox and ledger are kept
as for any hub restart) and the driver moves the group as it moves any lost
group. Further groups on the head get actors of their own.

Example:
    >>> group = HubGroup(hub, "g1", "g1-1")  # doctest: +SKIP
    >>> ray.get(hub.host_start.remote(spec)); ray.get(group.ping.remote(0.0))  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import ray

from pipeline.app.cluster.host import CameraHost, GroupSpec
from pipeline.app.cluster.hub import Hub
from pipeline.app.cluster.lease_book import Grant, Report
from pipeline.app.cluster.placement import Group
from pipeline.app.cluster.relay import Item
from pipeline.core.events import Alert


class LocalHubLink:
    """A relay's way to the hub in its own process (plain calls)."""

    def __init__(self, hub: Hub, group: str) -> None:
        self.hub = hub
        self.group = group

    def intake(self, items: list[Item]) -> None:
        """Deliver a batch."""
        self.hub.intake(self.group, items)

    def alert(self, alert: Alert) -> None:
        """Hand an alert over; returns once the hub recorded it."""
        self.hub.alert(self.group, alert)


class LocalSlotsLink:
    """A holder's way to the hub's backend slots in its own process (plain calls)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def renew(self, holder: str, reports: dict[str, Report], wait_s: float) -> dict[str, Grant]:
        """Report and renew (may wait up to ``wait_s`` for a grant to change)."""
        return self.hub.renew(holder, reports, wait_s)

    def release(self, holder: str) -> None:
        """Give back every slot of ``holder``."""
        self.hub.release_holder(holder)


class HostingHub(Hub):
    """The hub (:class:`~pipeline.app.cluster.hub.Hub`), able to host camera groups in-process."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hosted: dict[str, CameraHost] = {}
        self._hosting = threading.Lock()

    def host_start(self, spec: GroupSpec) -> str:
        """Host the group of ``spec`` here and start it; returns the node id (as ``start``)."""
        self.host_stop(spec.group_id, None, 0.0)
        host = CameraHost(
            spec, None, links=(LocalHubLink(self, spec.group_id), LocalSlotsLink(self))
        )
        with self._hosting:
            self.hosted[spec.group_id] = host
        return host.start()

    def host_call(self, group_id: str, method: str, *args: Any) -> Any:
        """Call ``method`` of a hosted group's :class:`CameraHost`.

        Raises:
            LookupError: the group is not hosted here (the hub restarted since, or it moved).
        """
        host = self.hosted.get(group_id)
        if host is None:
            raise LookupError(f"group {group_id} is not hosted by the hub (it restarted or moved)")
        return getattr(host, method)(*args)

    def host_stop(self, group_id: str, holder: str | None, grace_s: float | None = None) -> float:
        """Stop a hosted group (looks in flight get ``grace_s``) and forget it; returns seconds.

        ``holder``: only that generation of the group (a late stop of a lost one must
        not stop the group started again in its place); ``None``: whichever runs.
        """
        with self._hosting:
            host = self.hosted.get(group_id)
            if host is None or holder not in (None, host.spec.holder):
                return 0.0
            del self.hosted[group_id]
        return host.stop(grace_s)

    def stop(self) -> None:
        """Stop what is still hosted here at once, then the hub (:meth:`Hub.stop`)."""
        for group_id in list(self.hosted):
            self.host_stop(group_id, None, 0.0)
        super().stop()


class _Call:
    """A hub actor method with its first arguments bound, called as an actor method is."""

    def __init__(self, method: Any, *first: Any) -> None:
        self.method = method
        self.first = first

    def remote(self, *args: Any) -> Any:
        """Call it on the hub actor; returns the call's object ref."""
        return self.method.remote(*self.first, *args)


class HubGroup:
    """The driver's handle on a group the hub hosts: a camera actor's methods, through the hub.

    ``stop`` also forgets the group in the hub; ``end()`` stands for ``ray.kill``
    (the hub itself lives on).
    """

    def __init__(self, hub: Any, group_id: str, holder: str) -> None:
        self.hub = hub
        self.group_id = group_id
        self.holder = holder
        self.ping = _Call(hub.host_call, group_id, "ping")
        self.start = _Call(hub.host_call, group_id, "start")
        self.start_watch = _Call(hub.host_call, group_id, "start_watch")
        self.cancel_watch = _Call(hub.host_call, group_id, "cancel_watch")
        self.apply = _Call(hub.host_call, group_id, "apply")
        self.metrics_text = _Call(hub.host_call, group_id, "metrics_text")
        self.stop = _Call(hub.host_stop, group_id, holder)  # and the hub forgets it

    def end(self) -> None:
        """Stop this generation of the group at once if the hub still has it (a lost group)."""
        self.hub.host_stop.remote(self.group_id, self.holder, 0.0)


def hub_takes(group: Group, head: str, enabled: bool, in_hub: Iterable[str]) -> bool:
    """Whether the hub's process should host ``group``: on, on the head, and none there yet.

    ``in_hub``: the groups the hub hosts now (the group itself may be among them).

    Example:
        >>> g = Group("g1", ("cam1",), "head")
        >>> hub_takes(g, "head", True, []), hub_takes(g, "head", True, ["g2"])
        (True, False)
    """
    others = [gid for gid in in_hub if gid != group.group_id]
    return enabled and group.node_id == head and not others


def end_actor(actor: Any) -> None:
    """Kill a camera actor for good, or stop a group the hub hosts (the hub lives on)."""
    if isinstance(actor, HubGroup):
        actor.end()
        return
    ray.kill(actor, no_restart=True)
