"""The wake stage of a watch: matching detections in, wake signals out, as a wake policy says.

::

    detections -> filter_labels -> in_zones -> wake_signals(policy) -> wakes

:func:`wake_signals` asks a :class:`~operators.wake_policy.WakePolicy` about
each matching detection and carries out its decision on the scheduler's clock
(wake now, wake at a time, drop). The wait that a wake ends starts again on
each item of ``waits`` (a watch feeds the answers of its looks there); without
``waits``, each wake starts the next wait (a consumer that looks at once).
:func:`watch_wakes` is the whole stage as a watch builds it; :class:`WakeLog`
counts what happened (and tells a replay, which draws it).

Example:
    >>> from reactivex.testing import ReactiveTest, TestScheduler
    >>> from operators.cooldown import CooldownPolicy
    >>> from pipeline.core.detection import Box
    >>> s = TestScheduler()
    >>> cat = Detection("c", "cat", 0.9, Box(0, 0, 1, 1), time=0)
    >>> matches = s.create_hot_observable(ReactiveTest.on_next(3.0, cat),
    ...                                   ReactiveTest.on_next(14.0, cat))
    >>> woken = []
    >>> matches.pipe(wake_signals(CooldownPolicy(10.0), scheduler=s)).subscribe(
    ...     lambda _: woken.append(s.clock))  # doctest: +ELLIPSIS
    <...>
    >>> s.advance_to(30.0); woken   # 3 -> the 10 s mark; 14 -> the mark of the wait from 10
    [10.0, 20.0]
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable
from reactivex.scheduler import TimeoutScheduler

from operators.clock import TICK_S, now_s
from operators.labels import filter_labels
from operators.serial import SerialEmitter
from operators.wake_policy import (
    WAKE_NOW,
    Answered,
    PictureWakePolicy,
    Wake,
    WakeAction,
    WakeContext,
    WakeDecision,
    WakePolicy,
)
from operators.zone_geometry import ZoneInput
from operators.zones import in_zones
from pipeline.core.detection import Detection
from pipeline.core.frame import Frame, FrameProvider

_new_tuple = tuple.__new__


class WakeLog:
    """What a watch's wake path did: matches, wakes, and dropped wakes by reason.

    Example:
        >>> log = WakeLog(on_drop=lambda t, why: print(f"{t:g}: {why}"))
        >>> log.drop(5.0, "look in flight")
        5: look in flight
        >>> log.dropped
        Counter({'look in flight': 1})

    The callbacks run on the thread that saw the event, sometimes under a
    stage's lock: keep them short and never call into the watch from them.

    Args:
        on_match: a detection matched the watch's labels and zones.
        on_wake: a wake signal came out of the policy (scheduler time, the
            wake); it may still be dropped later.
        on_drop: a wake was dropped (scheduler time, reason).
    """

    def __init__(
        self,
        on_match: Callable[[Detection], None] | None = None,
        on_wake: Callable[[float, Wake], None] | None = None,
        on_drop: Callable[[float, str], None] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._on_match = on_match
        self._on_wake = on_wake
        self._on_drop = on_drop
        self.matches = 0
        self.wakes = 0
        self.dropped: Counter[str] = Counter()

    def match(self, detection: Detection) -> None:
        """Count (and tell) a matching detection."""
        with self._lock:
            self.matches += 1
        if self._on_match is not None:
            self._on_match(detection)

    def wake(self, time: float, wake: Wake) -> None:
        """Count (and tell) a wake signal."""
        with self._lock:
            self.wakes += 1
        if self._on_wake is not None:
            self._on_wake(time, wake)

    def drop(self, time: float, reason: str) -> None:
        """Count (and tell) a dropped wake."""
        with self._lock:
            self.dropped[reason] += 1
        if self._on_drop is not None:
            self._on_drop(time, reason)


class _WakeStage:
    """One subscription of :func:`wake_signals`: the wait, the pending wake, the policy."""

    def __init__(
        self,
        policy: WakePolicy,
        scheduler: abc.SchedulerBase,
        observer: abc.ObserverBase[Wake],
        frames: FrameProvider | None,
        log: WakeLog | None,
        restart_on_wake: bool,
    ) -> None:
        self.policy = policy
        self.decide = policy.decide
        self.sched = scheduler
        self.out: SerialEmitter[Wake] = SerialEmitter(observer)
        self.ctx = WakeContext(scheduler, now_s(scheduler), frames)
        self.add_match = self.ctx.matches.append  # the deque is cleared, never replaced
        self.log = log
        self.restart_on_wake = restart_on_wake
        self.lock = threading.Lock()
        self.pending = SerialDisposable()
        self.pending_at: float | None = None
        self.latest: Wake | None = None
        self.done = False

    def on_match(self, d: Detection) -> None:
        # On every matching detection of the camera: kept lean. The lock is
        # taken with acquire/release in try/finally, not ``with``: half the
        # cost on CPython 3.11 (``with`` calls ``__exit__(None, None, None)``).
        wake = None
        self.lock.acquire()
        try:
            if self.done:
                return
            if self.log is not None:
                self.log.match(d)
            self.add_match(d)
            try:
                decision = self.decide(d, self.ctx)
            except Exception as exc:
                self._push_error(exc)
            else:
                if decision is WAKE_NOW and self.pending_at is None and self.log is None:
                    # _wake, inlined for the common case (and Wake("", d) without
                    # its keyword-handling constructor: a third of the cost).
                    wake = _new_tuple(Wake, ("", d, None))
                    if not self.out.push_next_first(wake):
                        wake = None
                    if self.restart_on_wake:
                        self.ctx.start_wait(now_s(self.sched), None)
                else:
                    self._carry_out(decision, d, None)
        finally:
            self.lock.release()
        if wake is not None:
            self.out.deliver_first(wake)  # then what other threads queued meanwhile
        else:
            self.out.drain()

    def on_picture(self, frame: Frame) -> None:
        with self.lock:
            if self.done or not isinstance(self.policy, PictureWakePolicy):
                return
            try:
                decision = self.policy.see(frame, self.ctx)
            except Exception as exc:
                self._push_error(exc)
            else:
                if decision is not None:
                    self._carry_out(decision, None, frame)
        self.out.drain()

    def _carry_out(self, decision: WakeDecision, d: Detection | None, frame: Frame | None) -> None:
        """Wake now, later, or count the drop; call with the lock held."""
        action = decision.action
        if action is WakeAction.NOW:
            self._wake(Wake(decision.reason, d, frame))
        elif action is WakeAction.AT:
            self._wake_at(decision.at, Wake(decision.reason, d, frame))
        elif self.log is not None:
            self.log.drop(now_s(self.sched), decision.reason)

    def _wake_at(self, at: float, wake: Wake) -> None:
        """Wake at ``at`` (at once if it is not a clock tick away); call with the lock held."""
        delay = at - now_s(self.sched)
        if delay < TICK_S / 2:
            self._wake(wake)
            return
        self.latest = wake
        if self.pending_at is None or at < self.pending_at:
            self.pending_at = at
            self.pending.disposable = self.sched.schedule_relative(delay, self._fire)

    def _fire(self, _s: abc.SchedulerBase, _state: Any = None) -> None:
        with self.lock:
            wake = self.latest
            if self.done or self.pending_at is None or wake is None:
                return
            self._wake(wake)
        self.out.drain()

    def _wake(self, wake: Wake) -> None:
        """Emit ``wake``; call with the lock held."""
        if self.pending_at is not None:
            self.pending_at = None
            self.latest = None
            self.pending.disposable = Disposable()
        self.out.push_next(wake)
        if self.log is not None or self.restart_on_wake:
            now = now_s(self.sched)
            if self.log is not None:
                self.log.wake(now, wake)
            if self.restart_on_wake:
                self.ctx.start_wait(now, None)

    def on_wait(self, item: Any) -> None:
        with self.lock:
            self.pending_at = None
            self.latest = None
            self.pending.disposable = Disposable()
            if isinstance(item, Answered):
                self.ctx.start_wait(now_s(self.sched), item.frame, item.next_run_in)
            else:
                self.ctx.start_wait(now_s(self.sched), None)

    def on_error(self, exc: Exception) -> None:
        with self.lock:
            self._push_error(exc)
        self.out.drain()

    def _push_error(self, exc: Exception) -> None:
        self._stop()
        self.out.push_error(exc)

    def on_completed(self) -> None:
        with self.lock:
            if self.pending_at is not None and self.latest is not None:
                self.out.push_next(self.latest)  # the wake that was due
            self._stop()
            self.out.push_completed()
        self.out.drain()

    def _stop(self) -> None:
        self.done = True
        self.pending_at = None
        self.pending.dispose()

    def stop(self) -> None:
        with self.lock:
            self._stop()


def wake_signals(
    policy: WakePolicy,
    *,
    waits: Observable[Any] | None = None,
    pictures: Observable[Frame] | None = None,
    frames: FrameProvider | None = None,
    scheduler: abc.SchedulerBase | None = None,
    log: WakeLog | None = None,
) -> Callable[[Observable[Detection]], Observable[Wake]]:
    """Rx operator: matching detections (and pictures) in, wakes out, as ``policy`` decides.

    Example:
        >>> from operators.cooldown import CooldownPolicy
        >>> wakes = matches.pipe(wake_signals(CooldownPolicy(10.0), waits=answers))
        ... # doctest: +SKIP

    Each :class:`~operators.wake_policy.Wake` carries what woke the watch: the
    matching detection decided on (for a wake at a later time, the latest
    match by then) or the picture. At most one wake is pending at a time (the
    earliest asked for); a new wait cancels it.

    Args:
        policy: decides per matching detection (see :mod:`operators.wake_policy`).
        waits: each item starts a new wait at the time it comes (an
            :class:`~operators.wake_policy.Answered` also tells the policy the
            frame judged); ``None``: each wake starts the next wait. The
            first wait starts at subscription.
        pictures: the camera's pictures, shown to a policy that has ``see``
            (a :class:`~operators.wake_policy.PictureWakePolicy`); their
            completion does not end the wakes.
        frames: the camera, for policies that take a picture when they decide.
        scheduler: the time source (default: a timeout scheduler).
        log: counts matches, wakes and drops.

    Returns:
        An operator. An exception from the policy goes to ``on_error``; a
        pending wake is emitted before completion.
    """

    def _op(source: Observable[Detection]) -> Observable[Wake]:
        def subscribe(
            observer: abc.ObserverBase[Wake], default: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            sched = scheduler or default or TimeoutScheduler.singleton()
            stage = _WakeStage(policy, sched, observer, frames, log, waits is None)
            subs = CompositeDisposable(Disposable(stage.stop))
            if waits is not None:
                subs.add(waits.subscribe(stage.on_wait, stage.on_error, scheduler=default))
            if pictures is not None:
                subs.add(pictures.subscribe(stage.on_picture, stage.on_error, scheduler=default))
            subs.add(
                source.subscribe(
                    stage.on_match, stage.on_error, stage.on_completed, scheduler=default
                )
            )
            return subs

        # Observable, not reactivex.create: no auto-detaching wrapper on every
        # detection; the stage's SerialEmitter keeps the grammar (nothing after
        # an error or completion) and ``stop`` ends it.
        return Observable(subscribe)

    return _op


def watch_wakes(
    detections: Observable[Detection] | None,
    *,
    policy: WakePolicy,
    labels: Iterable[str] = (),
    zones: Mapping[str, ZoneInput] | None = None,
    zone_names: Iterable[str] = (),
    waits: Observable[Any] | None = None,
    pictures: Observable[Frame] | None = None,
    frames: FrameProvider | None = None,
    scheduler: abc.SchedulerBase | None = None,
    log: WakeLog | None = None,
    remember: Callable[[Detection], None] | None = None,
) -> Observable[Wake]:
    """A watch's whole wake stage: labels, then zones, then the wake policy.

    Example:
        >>> wakes = watch_wakes(dets, policy=CooldownPolicy(0.0), labels=["person"],
        ...                     zones={"porch": porch}, zone_names=["porch"],
        ...                     waits=answers)  # doctest: +SKIP

    Args:
        detections: the camera's detections (``None``: none; only ``pictures``
            can wake the watch then).
        policy: the wake policy.
        labels: labels that match (empty: any).
        zones: the camera's zones by name (rules or point lists).
        zone_names: zones that matter (empty: anywhere).
        waits: items that start a new wait (as :func:`wake_signals`).
        pictures: the camera's pictures, for a policy that judges them.
        frames: the camera, for policies that take a picture when they decide.
        scheduler: the time source.
        log: counts matches, wakes and drops.
        remember: called with every matching detection (a watch passes the
            recent ones to its backend).

    Raises:
        ValueError: a blank label, an unknown or malformed zone.
    """
    stages: list[Callable[[Observable[Any]], Observable[Any]]] = [
        filter_labels(labels),
        in_zones(zones or {}, zone_names),
    ]
    if remember is not None:
        stages.append(ops.do_action(remember))
    matches: Observable[Detection] = reactivex.never()
    if detections is not None:
        matches = detections.pipe(*stages)
    return matches.pipe(
        wake_signals(
            policy, waits=waits, pictures=pictures, frames=frames, scheduler=scheduler, log=log
        )
    )
