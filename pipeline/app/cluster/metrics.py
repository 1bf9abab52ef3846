"""Metrics and health of a cluster: per node, per actor, and every single-process family.

Each camera actor and the hub expose the single-process families
(:func:`pipeline.app.metrics.pipeline_metrics`); :func:`merge_texts` puts them
in one exposition with ``node`` and ``group`` labels (the hub's are
``group="hub"``). :func:`cluster_metrics` adds the cluster's own families:
which cameras run where, nodes alive and dead, actors' memory and CPU,
groups lost and moved, the last recovery time, backend slots in use.

Example:
    >>> print(merge_texts([({"node": "n1"}, '# HELP x X.\\n# TYPE x gauge\\nx{a="1"} 2\\n')]),
    ...       end="")
    # HELP x X.
    # TYPE x gauge
    x{node="n1",a="1"} 2
"""

from __future__ import annotations

import platform
import time
from collections.abc import Iterable, Mapping
from typing import Any

import ray
from ray.exceptions import RayError

from pipeline import __version__
from pipeline.app.cluster.nodes import live_nodes
from pipeline.app.cluster.runtime import ClusterRuntime
from pipeline.app.prometheus import Health, MetricsText, format_labels

OWN = ("lookout_up", "lookout_build_info", "lookout_start_time_seconds")
"""Families the driver states once for the whole cluster (dropped from the parts)."""
SCRAPE_TIMEOUT_S = 5.0
"""The longest wait for an actor's figures at a scrape (a slow actor is left out)."""


def merge_texts(parts: Iterable[tuple[Mapping[str, str], str]], skip: Iterable[str] = ()) -> str:
    """Merge Prometheus texts into one, each part's samples labelled with its labels.

    A family keeps the ``HELP`` and ``TYPE`` of its first appearance; its
    samples from every part follow them.
    """
    dropped = set(skip)
    order: list[str] = []
    heads: dict[str, list[str]] = {}
    samples: dict[str, list[str]] = {}
    for labels, text in parts:
        inject = format_labels(labels)[1:-1] if labels else ""
        family = ""
        for line in text.splitlines():
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                family = line.split(" ", 3)[2]
                if family not in heads:
                    order.append(family)
                    heads[family], samples[family] = [], []
                if len(heads[family]) < 2 and line not in heads[family]:
                    heads[family].append(line)
                continue
            if not line or line.startswith("#") or family in dropped or not family:
                continue
            samples[family].append(_label(line, inject))
    lines = []
    for family in order:
        if family in dropped:
            continue
        lines += heads[family] + samples[family]
    return "\n".join(lines) + ("\n" if lines else "")


def _label(sample: str, inject: str) -> str:
    if not inject:
        return sample
    name, brace, rest = sample.partition("{")
    if brace:
        return f"{name}{{{inject},{rest}" if not rest.startswith("}") else f"{name}{{{inject}{rest}"
    name, _, value = sample.partition(" ")
    return f"{name}{{{inject}}} {value}"


def _gather(calls: Mapping[str, Any]) -> dict[str, Any]:
    """Results of remote calls by key; a call that fails or is late is left out."""
    refs = {ref: key for key, ref in calls.items()}
    ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=SCRAPE_TIMEOUT_S)
    out = {}
    for ref in ready:
        try:
            out[refs[ref]] = ray.get(ref)
        except RayError:
            continue
    return out


def cluster_metrics(rt: ClusterRuntime) -> str:
    """The Prometheus text of the whole cluster (see the module docstring)."""
    with rt.lock:
        hosts = dict(rt.hosts)
    calls = {gid: h.actor.metrics_text.remote() for gid, h in hosts.items() if h.actor}
    calls["@hub"] = rt.hub.metrics_text.remote()
    calls["@slots"] = rt.hub.slots_stats.remote()
    got = _gather(calls)
    t = MetricsText()
    t.add("lookout_up", "gauge", "1 while the pipeline runs.", [({}, 1)])
    t.add(
        "lookout_build_info",
        "gauge",
        "Always 1; the labels say which Lookout and which Python run.",
        [({"version": __version__, "python": platform.python_version()}, 1)],
    )
    t.add("lookout_start_time_seconds", "gauge", "Start time (epoch).", [({}, rt.started_at)])
    _placement_families(t, rt, hosts)
    slots: dict[str, dict[str, int]] = got.get("@slots", {})
    for key, kind, text in (
        ("limit", "gauge", "Slots of the backend for the whole cluster (max_concurrency)."),
        ("leased", "gauge", "Slots of the backend leased to camera actors now."),
        ("in_use", "gauge", "Slots of the backend taken by looks at the actors' last renewals."),
        ("peak", "gauge", "Most slots of the backend leased or in use at once (within the limit)."),
        ("waits", "counter", "Looks that had to wait for a slot."),
    ):
        t.add(
            f"lookout_cluster_backend_slots_{key}" + ("_total" if kind == "counter" else ""),
            kind,
            text,
            [({"backend": b}, s[key]) for b, s in sorted(slots.items())],
        )
    head = {"node": rt.node_id[:8], "group": "hub"}
    parts: list[tuple[Mapping[str, str], str]] = [(head, str(got.get("@hub", "")))]
    parts += [
        ({"node": h.group.node_id[:8], "group": gid}, str(got[gid]))
        for gid, h in sorted(hosts.items())
        if gid in got
    ]
    return t.render() + merge_texts(parts, OWN)


def _placement_families(t: MetricsText, rt: ClusterRuntime, hosts: Mapping[str, Any]) -> None:
    nodes = live_nodes(rt.config, rt.node_id)
    t.add(
        "lookout_cluster_nodes",
        "gauge",
        "Ray nodes by state (alive, dead).",
        [
            ({"state": s}, sum(1 for n in nodes if n.alive == (s == "alive")))
            for s in ("alive", "dead")
        ],
    )
    placed: dict[str, int] = {}
    for h in hosts.values():
        placed[h.group.node_id] = placed.get(h.group.node_id, 0) + len(h.group.cameras)
    t.add(
        "lookout_cluster_node_cameras",
        "gauge",
        "Cameras placed on each live node, and its capacity.",
        [
            ({"node": n.node_id[:8], "address": n.address, "of": k}, v)
            for n in nodes
            if n.alive
            for k, v in (("placed", placed.get(n.node_id, 0)), ("capacity", n.capacity))
        ],
    )
    t.add(
        "lookout_cluster_camera_info",
        "gauge",
        "Always 1: which group and node host each camera now.",
        [
            ({"camera": c, "group": gid, "node": h.group.node_id[:8]}, 1)
            for gid, h in sorted(hosts.items())
            for c in h.group.cameras
        ],
    )
    with_stats = [(gid, h) for gid, h in sorted(hosts.items()) if h.stats is not None]
    t.add(
        "lookout_cluster_actor_memory_bytes",
        "gauge",
        "Resident memory of each camera actor.",
        [({"group": g, "node": h.group.node_id[:8]}, h.stats.rss_bytes) for g, h in with_stats],
    )
    t.add(
        "lookout_cluster_actor_cpu_seconds_total",
        "counter",
        "CPU time each camera actor's process used.",
        [({"group": g, "node": h.group.node_id[:8]}, h.stats.cpu_seconds) for g, h in with_stats],
    )
    t.add(
        "lookout_cluster_group_restarts_total",
        "counter",
        "Times each group's actor was lost and started again (on another node if its node died).",
        [({"group": g}, h.restarts) for g, h in sorted(hosts.items())],
    )
    recoveries = rt.figures.recoveries
    t.add(
        "lookout_cluster_last_recovery_seconds",
        "gauge",
        "Seconds from a lost actor to its group running again, for the latest loss.",
        [({}, recoveries[-1])] if recoveries else [],
    )


def cluster_health(rt: ClusterRuntime) -> Health:
    """``/healthz``: the hub's sinks and MQTT, every actor's cameras, groups not running."""
    problems: list[str] = []
    now = time.monotonic()
    with rt.lock:
        hosts = dict(rt.hosts)
    try:
        problems += ray.get(rt.hub.health.remote(), timeout=SCRAPE_TIMEOUT_S)
    except RayError as exc:
        problems.append(f"hub: no answer ({type(exc).__name__})")
    for gid, h in sorted(hosts.items()):
        if h.lost_at is not None and now - h.lost_at > rt.config.cluster.lost_after_s:
            problems.append(
                f"group {gid} (cameras {', '.join(h.group.cameras)}): not running for "
                f"{now - h.lost_at:.0f} s"
            )
        if h.stats is not None:
            problems += [
                f"group {gid} on node {h.group.node_id[:8]}: {p}" for p in h.stats.problems
            ]
    return Health(not problems, tuple(problems))
