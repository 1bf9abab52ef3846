"""What must outlive a camera actor: every watch's last state, its alerts, its quiet period.

The ledger lives in the hub actor on the head node, next to the sinks (see
:mod:`pipeline.app.cluster.hub` for why there). Camera actors report each
watch state and each alert to it; when an actor is lost and its cameras move,
the new actor asks it where each watch was (:meth:`Ledger.resume`): the same
job id, counters, quiet period and look budget, one more restart. A watch
that ended (``once`` after its alert, timed out) stays ended. An alert is
recorded before it goes to the sinks, and an alert id seen before is not sent
again (:meth:`Ledger.alert`).

Example:
    >>> from pipeline.core.config import WatchConfig
    >>> from pipeline.core.events import WatchState, WatchStatus
    >>> led = Ledger()
    >>> w = WatchConfig(name="gate", camera="c", condition="a van", mode="repeat")
    >>> led.want(w, "config")
    >>> led.state(WatchState(id="j1", name="gate", camera="c", condition="a van",
    ...                      status=WatchStatus.RUNNING, iterations=4), at=100.0)
    >>> r = led.resume(w)
    >>> r.job_id, r.iterations, r.restarts
    ('j1', 4, 1)
"""

from __future__ import annotations

import pickle
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any, Literal

from operators.resume import Resume
from pipeline.core.config import WatchConfig
from pipeline.core.events import Alert, WatchState, WatchStatus

Origin = Literal["config", "runtime"]
MAX_ALERT_IDS = 100_000
"""Alert ids remembered for de-duplication (the oldest are forgotten past this)."""
IMAGE_ALERT_IDS = 2_000
"""Alert ids an image keeps (the newest: those an actor may still resend)."""


def plain(watch: WatchConfig) -> WatchConfig:
    """The watch as a camera actor runs it: a plain ``WatchConfig`` that names no sinks.

    A run-time watch's request (with its webhook) becomes its plain fields;
    routing to sinks is the hub's.
    """
    fields = {k: getattr(watch, k) for k in WatchConfig.model_fields}
    fields["sinks"] = None
    return WatchConfig.model_construct(**fields)


@dataclass
class Entry:
    """One watch the cluster should run, and where its run stands."""

    config: WatchConfig
    origin: Origin
    sinks: tuple[str, ...] | None
    extra: dict[str, Any] = field(default_factory=dict)
    last: WatchState | None = None
    at: float | None = None
    quiet_until: float | None = None
    ended: bool = False
    reported: bool = False
    """Whether the end of the current run was queued for :meth:`Ledger.take_ended`."""
    alerted: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Job id -> (alerts recorded, looks at the latest): ahead of a state still on its way."""


@dataclass(frozen=True, slots=True)
class Ended:
    """A watch run that ended (for control's persistent-watch file)."""

    name: str
    status: str
    origin: Origin
    persistent: bool


class Ledger:
    """The watches of the cluster and the state of their runs (thread-safe)."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._alert_ids: OrderedDict[str, None] = OrderedDict()
        self._ended: list[Ended] = []
        self._lock = threading.Lock()
        self.version = 0
        """Goes up with every change (an image of an older version is out of date)."""
        self._wants_changed_at = 0
        self._wants_version = -1
        self._wants_blob = b""

    def _changed(self, wants: bool = False) -> None:
        """Count a change (under the lock); ``wants``: which watches run, or their configs."""
        self.version += 1
        if wants:
            self._wants_changed_at = self.version

    # ------------------------------------------------------------ image (a restarted hub)

    def image(self) -> tuple[int, bytes]:
        """``(version, bytes)``: everything :meth:`restore` needs to go on from here.

        The watches' configs are pickled again only when they changed; the newest
        :data:`IMAGE_ALERT_IDS` alert ids are kept.
        """
        with self._lock:
            if self._wants_version != self._wants_changed_at:
                self._wants_blob = pickle.dumps(
                    {n: e.config for n, e in self._entries.items()}, protocol=5
                )
                self._wants_version = self._wants_changed_at
            runs = {
                n: (e.origin, e.sinks, dict(e.extra), e.last, e.at, e.quiet_until,
                    e.ended, e.reported, dict(e.alerted))
                for n, e in self._entries.items()
            }  # fmt: skip
            ids = list(islice(reversed(self._alert_ids), IMAGE_ALERT_IDS))[::-1]
            return self.version, pickle.dumps((self._wants_blob, runs, ids), protocol=5)

    @classmethod
    def restore(cls, data: bytes) -> Ledger:
        """A ledger from an :meth:`image` (trusted: written by a hub of this cluster)."""
        wants_blob, runs, ids = pickle.loads(data)  # Ray's own store, this run
        configs: dict[str, WatchConfig] = pickle.loads(wants_blob) if wants_blob else {}
        led = cls()
        led._entries = {n: Entry(c, *runs[n]) for n, c in configs.items() if n in runs}
        led._alert_ids = OrderedDict.fromkeys(ids)
        return led

    # ------------------------------------------------------------ what should run

    def want(
        self,
        watch: WatchConfig,
        origin: Origin,
        sinks: tuple[str, ...] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """The cluster runs ``watch``; a changed watch is a new run (its old state is dropped)."""
        config = plain(watch)
        with self._lock:
            old = self._entries.get(watch.name)
            entry = Entry(config, origin, sinks, dict(extra or {}))
            if old is not None and old.config == config and old.origin == origin:
                entry.last, entry.at = old.last, old.at
                entry.quiet_until, entry.ended = old.quiet_until, old.ended
                entry.reported = old.reported
                entry.alerted = old.alerted
            self._entries[watch.name] = entry
            self._changed(wants=True)

    def restart(self, name: str) -> None:
        """The next run of ``name`` starts afresh (a reload or a request restarted it)."""
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None:
                entry.last = entry.at = entry.quiet_until = None
                entry.ended = entry.reported = False
                entry.alerted = {}
                self._changed()

    def drop(self, name: str) -> None:
        """The watch is gone for good."""
        with self._lock:
            if self._entries.pop(name, None) is not None:
                self._changed(wants=True)

    def sinks_of(self, name: str) -> tuple[str, ...] | None:
        """The sink names the watch's events go to (``None``: every sink)."""
        with self._lock:
            entry = self._entries.get(name)
            return entry.sinks if entry is not None else None

    def names(self, origin: Origin | None = None) -> list[str]:
        """Names of the watches (of one origin)."""
        with self._lock:
            return [n for n, e in self._entries.items() if origin in (None, e.origin)]

    def runtime_watches(self) -> list[WatchConfig]:
        """The run-time watches (plain) that should run, ended ones excluded."""
        with self._lock:
            return [
                e.config for e in self._entries.values() if e.origin == "runtime" and not e.ended
            ]

    # ------------------------------------------------------------ what happened

    def state(self, state: WatchState, at: float) -> None:
        """Record a watch's state (a state of an older run than the recorded one is ignored)."""
        with self._lock:
            entry = self._entries.get(state.name)
            if entry is None:
                return
            if entry.last is not None and entry.last.id != state.id:
                entry.quiet_until = None  # a new run
                entry.ended = entry.reported = False
            entry.last, entry.at = state, at
            self._changed()
            if state.status.ended and not entry.reported:
                entry.ended = entry.reported = True
                self._ended.append(
                    Ended(state.name, state.status.value, entry.origin, entry.config.persistent)
                )

    def alert(self, alert: Alert, at: float) -> bool:
        """Record an alert; False when its id was recorded before (do not send it again).

        ``repeat``: the quiet period runs from now; ``once``: the watch has ended.
        """
        with self._lock:
            if alert.event_id in self._alert_ids:
                return False
            self._alert_ids[alert.event_id] = None
            self._changed()
            while len(self._alert_ids) > MAX_ALERT_IDS:
                self._alert_ids.popitem(last=False)
            entry = self._entries.get(alert.watch)
            if entry is None:
                return True
            if entry.config.mode == "repeat":
                entry.quiet_until = max(alert.time, at) + entry.config.quiet_period_s
            else:
                entry.ended = True
            count, _ = entry.alerted.get(alert.job_id, (0, 0))
            entry.alerted = {alert.job_id: (count + 1, alert.look_count)}
            return True

    def alert_ids(self) -> list[str]:
        """Ids of the alerts recorded (oldest first): every one went to the sinks."""
        with self._lock:
            return list(self._alert_ids)

    def take_ended(self) -> list[Ended]:
        """Runs that ended since the last call."""
        with self._lock:
            out, self._ended = self._ended, []
            return out

    # ------------------------------------------------------------ moving

    def resume(self, watch: WatchConfig) -> Resume | None:
        """Where a run of ``watch`` left off (``None``: start afresh; never for an ended one)."""
        config = plain(watch)
        with self._lock:
            entry = self._entries.get(watch.name)
            if entry is None or entry.config != config or entry.last is None or entry.ended:
                return None
            last = entry.last
            alerts, looks = entry.alerted.get(last.id, (0, 0))
            carried = Resume.from_state(last, quiet_until=entry.quiet_until, at=entry.at)
            return replace(
                carried,
                alerts=max(carried.alerts, alerts),
                iterations=max(carried.iterations, looks),
            )

    def ended_names(self) -> set[str]:
        """Watches whose run ended: a moved group does not start them again."""
        with self._lock:
            return {n for n, e in self._entries.items() if e.ended}

    def listing(self) -> list[dict[str, Any]]:
        """Every watch as ``watches/list`` shows it (the last state the head has)."""
        with self._lock:
            entries = list(self._entries.values())
        out = []
        for e in entries:
            s, w = e.last, e.config
            out.append(
                {
                    "name": w.name,
                    "camera": w.camera,
                    "condition": w.condition,
                    "backend": w.backend,
                    "origin": e.origin,
                    "persistent": w.persistent,
                    "job_id": s.id if s else None,
                    "status": s.status.value if s else WatchStatus.QUEUED.value,
                    "iterations": s.iterations if s else 0,
                    "alerts": s.alerts if s else 0,
                    "restarts": s.restarts if s else 0,
                    "last_reasoning": s.last_reasoning if s else None,
                    "error_message": s.error_message if s else None,
                }
                | e.extra
            )
        return out
