"""Reload ``pipeline.toml`` without a restart: diff old and new, and watch the file.

The diff is pure (:func:`plan_reload`): which cameras, backends, sinks and
watches were added, removed or changed, and which watches must restart because
something they use changed. :func:`apply_config` applies the plan to a running
:class:`~pipeline.app.runner.Pipeline`; untouched cameras keep their connections
and untouched watches keep running. :class:`FileWatcher` polls the file
(stdlib only, no inotify) and calls back when its content changes.

Example:
    >>> from pipeline.core.config_loader import load_config_text
    >>> old = load_config_text('[cameras.a]\\nurl = "a.mp4"\\n'
    ...     '[[watches]]\\nname = "w"\\ncamera = "a"\\ncondition = "a cat"\\n')
    >>> new = load_config_text('[cameras.a]\\nurl = "a.mp4"\\n'
    ...     '[[watches]]\\nname = "v"\\ncamera = "a"\\ncondition = "a dog"\\n')
    >>> plan = plan_reload(old, new)
    >>> plan.watches_added, plan.watches_removed, plan.cameras_changed
    (('v',), ('w',), ())
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.app.runner import Pipeline
from pipeline.app.watches import Origin
from pipeline.core.config import LookoutConfig, WatchConfig
from pipeline.core.config_loader import ConfigError, check_references, check_watch_references
from pipeline.core.logs import log_unexpected

log = logging.getLogger("lookout.reload")

RESTART_ONLY = ("mqtt", "metrics", "control", "shutdown")
"""Tables whose changes take effect only at the next start (the reload says so in the log)."""


@dataclass(frozen=True, slots=True)
class Diff:
    """Names added, removed and changed between two tables."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    @property
    def touched(self) -> set[str]:
        """Names removed or changed (what must be stopped)."""
        return set(self.removed) | set(self.changed)


def diff_tables(old: Mapping[str, Any], new: Mapping[str, Any]) -> Diff:
    """Compare two name -> value tables (values compared with ``==``).

    Example:
        >>> diff_tables({"a": 1, "b": 2}, {"b": 3, "c": 4})
        Diff(added=('c',), removed=('a',), changed=('b',))
    """
    return Diff(
        added=tuple(n for n in new if n not in old),
        removed=tuple(n for n in old if n not in new),
        changed=tuple(n for n in new if n in old and old[n] != new[n]),
    )


def watch_uses(watch: WatchConfig, cfg: LookoutConfig) -> tuple[str, str, tuple[str, ...]]:
    """The camera, backend and sink names a watch depends on (``None`` sinks means all)."""
    sinks = tuple(watch.sinks) if watch.sinks is not None else tuple(cfg.sinks)
    return watch.camera, watch.backend, sinks


def depends_on_changes(
    watch: WatchConfig, cfg: LookoutConfig, cameras: set[str], backends: set[str], sinks: set[str]
) -> bool:
    """Whether ``watch`` uses a camera, backend or (explicitly named) sink in the given sets.

    A backend change counts for ``auto`` watches too (the auto choice may differ).
    Sinks are swapped in place, so only a removed sink a watch names matters.
    """
    camera, backend, _ = watch_uses(watch, cfg)
    if camera in cameras:
        return True
    if backend in backends or (backend == "auto" and backends):
        return True
    return bool(watch.sinks and set(watch.sinks) & sinks)


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """What a reload changes.

    Attributes:
        cameras, backends, sinks: per-table differences.
        watches_added: config watches to start.
        watches_removed: config watches to stop.
        watches_changed: config watches to restart (their table or something they use changed).
        restart_only: tables that changed but apply only at the next start.
        log_changed: whether ``[log]`` changed (applied at once).
    """

    cameras: Diff
    backends: Diff
    sinks: Diff
    watches_added: tuple[str, ...]
    watches_removed: tuple[str, ...]
    watches_changed: tuple[str, ...]
    restart_only: tuple[str, ...]
    log_changed: bool

    @property
    def cameras_changed(self) -> tuple[str, ...]:
        """Cameras whose table changed (their watches restart)."""
        return self.cameras.changed

    @property
    def empty(self) -> bool:
        """Nothing to do."""
        return not (
            self.cameras.added
            or self.cameras.touched
            or self.backends.added
            or self.backends.touched
            or self.sinks.added
            or self.sinks.touched
            or self.watches_added
            or self.watches_removed
            or self.watches_changed
            or self.log_changed
        )

    def summary(self) -> str:
        """One line for the log."""
        parts = []
        for label, names in (
            ("watches added", self.watches_added),
            ("removed", self.watches_removed),
            ("restarted", self.watches_changed),
            ("cameras added", self.cameras.added),
            ("cameras removed", self.cameras.removed),
            ("cameras changed", self.cameras.changed),
            ("backends changed", (*self.backends.added, *self.backends.touched)),
            ("sinks changed", (*self.sinks.added, *self.sinks.touched)),
        ):
            if names:
                parts.append(f"{label}: {', '.join(sorted(names))}")
        if self.log_changed:
            parts.append("log settings changed")
        return "; ".join(parts) or "no changes"


def plan_reload(old: LookoutConfig, new: LookoutConfig) -> ReloadPlan:
    """Diff two valid configs into a :class:`ReloadPlan`."""
    cameras = diff_tables(old.cameras, new.cameras)
    backends = diff_tables(old.backends, new.backends)
    sinks = diff_tables(old.sinks, new.sinks)
    old_w = {w.name: w for w in old.watches}
    new_w = {w.name: w for w in new.watches}
    watches = diff_tables(old_w, new_w)
    touched_cams, touched_backends = cameras.touched, backends.touched | set(backends.added)
    changed = list(watches.changed)
    for name, w in new_w.items():
        if (
            name in old_w
            and name not in changed
            and depends_on_changes(w, new, touched_cams, touched_backends, sinks.touched)
        ):
            changed.append(name)
    restart_only = tuple(t for t in RESTART_ONLY if getattr(old, t) != getattr(new, t))
    return ReloadPlan(
        cameras=cameras,
        backends=backends,
        sinks=sinks,
        watches_added=watches.added,
        watches_removed=watches.removed,
        watches_changed=tuple(changed),
        restart_only=restart_only,
        log_changed=old.log != new.log,
    )


def apply_config(p: Pipeline, new: LookoutConfig) -> ReloadPlan:
    """Move a running pipeline to ``new``; untouched cameras and watches are not disturbed.

    Added watches start, removed ones stop, changed ones (or ones whose camera,
    backend or named sink changed) restart. Cameras that stay keep their
    connection even while their watches restart. Run-time watches keep running
    unless their camera went away (stopped) or changed (restarted). Runs under
    the watches' operation lock (one change at a time) and calls no sink while
    holding a lock.

    Raises:
        ConfigError: the new graph is not whole (nothing is changed then).
    """
    problems = check_references(new)
    if problems:
        raise ConfigError(problems)
    with p.runs.ops_lock:
        plan = plan_reload(p.config, new)
        if plan.empty:
            p.config = p.graph.config = new
            return plan
        cams_gone = set(plan.cameras.touched)
        backends_gone = set(plan.backends.touched) | set(plan.backends.added)
        # Hold every camera that stays, so restarting its watches never drops its connection.
        staying = [src for n, src in p.cameras.items() if n not in cams_gone]
        holds = [src.connect() for src in staying if src.held]
        try:
            restart_runtime = _stop_for_reload(p, plan, new, cams_gone, backends_gone)
            for n in cams_gone:
                p.graph.close_camera(n)
            for n in backends_gone:
                p.graph.stop_backend(n)
            if backends_gone:
                p.graph.reset_auto()
            _swap_sinks(p, plan, new)
            p.config = p.graph.config = new
            new_watches = {w.name: w for w in new.watches}
            for n in (*plan.watches_added, *plan.watches_changed):
                _start_logged(p, new_watches[n], "config")
            for w in restart_runtime:
                _start_logged(p, w, "runtime")
        finally:
            for hold in holds:
                hold.dispose()
    log.info("reloaded: %s", plan.summary())
    if plan.restart_only:
        log.warning(
            "reload: changes to [%s] take effect at the next start",
            "], [".join(plan.restart_only),
        )
    return plan


def _stop_for_reload(
    p: Pipeline, plan: ReloadPlan, new: LookoutConfig, cams: set[str], backends: set[str]
) -> list[WatchConfig]:
    """Stop what the plan stops; return the run-time watches to start again."""
    running = p.watches
    for n in (*plan.watches_removed, *plan.watches_changed):
        w = running.get(n)
        if w is not None and w.origin == "config":
            p.cancel_watch(n, forget=n in plan.watches_removed)
    restart: list[WatchConfig] = []
    for n, w in p.watches.items():
        if w.origin != "runtime" or w.done.is_set():
            continue
        cfg = w.config
        if check_watch_references(new, cfg, f"watch {n}"):
            log.warning(
                "watch %s: stopped; the reloaded config lacks what it uses",
                n,
                extra={"camera": cfg.camera, "watch": n},
            )
            p.cancel_watch(n, forget=True)
        elif depends_on_changes(cfg, new, cams, backends, set(plan.sinks.touched)):
            p.cancel_watch(n)
            restart.append(cfg)
    return restart


def _start_logged(p: Pipeline, watch: WatchConfig, origin: Origin) -> None:
    try:
        p.start_watch(watch, origin)
    except Exception as exc:
        log_unexpected(log, f"watch {watch.name}: cannot start", exc)


def _swap_sinks(p: Pipeline, plan: ReloadPlan, new: LookoutConfig) -> None:
    from sinks.registry import build_sink

    sinks = dict(p.sinks.sinks)
    for n in plan.sinks.touched:
        old = sinks.pop(n, None)
        if old is not None:
            try:
                old.close()
            except Exception as exc:
                log_unexpected(log, f"sink {n}: close failed", exc)
    for n in (*plan.sinks.added, *plan.sinks.changed):
        try:
            sink = build_sink(n, new.sinks[n], p.mqtt)
            sink.open()
            sinks[n] = sink
        except Exception as exc:
            log_unexpected(log, f"sink {n}: cannot open", exc)
    p.sinks.replace({n: sinks[n] for n in new.sinks if n in sinks})


def file_fingerprint(path: Path) -> str | None:
    """SHA-256 of the file's bytes, or ``None`` when it cannot be read."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class FileWatcher:
    """Call ``on_change()`` when a file's content changes (polled; editors that replace work).

    Example:
        >>> w = FileWatcher(Path("pipeline.toml"), lambda: print("changed"))  # doctest: +SKIP
        >>> w.start(); ...; w.stop()  # doctest: +SKIP

    A file that disappears (an editor's save in progress) is not a change: the
    next readable content is compared with the last one seen.

    Args:
        path: the file.
        on_change: called on the watcher's thread; errors are logged.
        interval_s: seconds between checks.
    """

    def __init__(self, path: Path, on_change: Callable[[], None], interval_s: float = 1.0) -> None:
        if not interval_s > 0:
            raise ValueError(f"The poll interval must be positive, got {interval_s}.")
        self.path = path
        self.on_change = on_change
        self.interval_s = interval_s
        self._last = file_fingerprint(path)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def mark_current(self) -> None:
        """Take the file's content now as seen (after a reload by other means)."""
        fp = file_fingerprint(self.path)
        if fp is not None:
            self._last = fp

    def start(self) -> FileWatcher:
        """Start polling in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="config-watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling and wait for the thread."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            fp = file_fingerprint(self.path)
            if fp is None or fp == self._last:
                continue
            self._last = fp
            try:
                self.on_change()
            except Exception as exc:
                log_unexpected(log, f"reload after a change of {self.path} failed", exc)
