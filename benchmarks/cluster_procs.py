"""CPU and memory of a process tree from ``/proc``, each process sorted into Lookout's or Ray's.

The cluster benchmark counts every process it started (its descendants): in
one process, Lookout; on a cluster, Lookout's (the driver, the camera actors,
the hub) and Ray's own (raylets, the control store, log and
autoscaler monitors, dashboard and runtime-env agents, idle workers).

Example:
    >>> kind_of("ray::CameraHost.ping")
    'CameraHost'
    >>> kind_of("/venv/lib/python3.11/site-packages/ray/core/src/ray/raylet/raylet --x")
    'raylet'
    >>> owner("CameraHost"), owner("raylet"), owner("pipeline")
    ('lookout', 'ray', 'lookout')
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
LOOKOUT = ("pipeline", "CameraHost", "Hub", "HostingHub")
"""Kinds of process that are Lookout's (``pipeline``: ``python -m pipeline run``)."""


def cmdline(pid: int) -> str:
    """The command line of ``pid`` with spaces between arguments ("" once gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def kind_of(command: str) -> str:
    """What a process is, from its command line."""
    if command.startswith("ray::"):
        return command.removeprefix("ray::").split(".")[0].split(" ")[0]
    words = command.split(" ")
    if "-m" in words and words.index("-m") + 1 < len(words):
        return words[words.index("-m") + 1]
    for word in words:
        name = Path(word).name
        if name in ("raylet", "gcs_server") or name.endswith(".py"):
            return name.removesuffix(".py")
    return Path(words[0]).name or "gone"


def owner(kind: str) -> str:
    """``lookout`` or ``ray``."""
    return "lookout" if kind in LOOKOUT else "ray"


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of a process so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_bytes(pid: int) -> int:
    """Resident memory of a process; 0 once it is gone."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except OSError:
        return 0


def descendants(root: int) -> list[int]:
    """Every process below ``root`` (children, their children...)."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children[ppid].append(int(entry.name))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


@dataclass
class Sample:
    """CPU seconds and memory of each process of a tree at one moment."""

    cpu: dict[int, float]
    rss: dict[int, int]
    kinds: dict[int, str]

    @classmethod
    def take(cls, pids: list[int]) -> Sample:
        """Sample ``pids`` now."""
        kinds = {p: kind_of(cmdline(p)) for p in pids}
        return cls({p: cpu_seconds(p) for p in pids}, {p: rss_bytes(p) for p in pids}, kinds)


def usage(before: Sample, after: Sample, seconds: float) -> dict[str, dict[str, float]]:
    """CPU share (cores) and memory (MB) per kind of process, over ``seconds``.

    A process that started in between counts from its start; one that ended
    counts up to the first sample.
    """
    cpu: dict[str, float] = defaultdict(float)
    mem: dict[str, float] = defaultdict(float)
    for pid, kind in after.kinds.items():
        cpu[kind] += max(0.0, after.cpu[pid] - before.cpu.get(pid, 0.0)) / seconds
        mem[kind] += after.rss[pid] / 2**20
    return {k: {"cpu": round(cpu[k], 4), "rss_mb": round(mem[k], 1)} for k in sorted(cpu)}
