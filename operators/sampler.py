"""Adaptive sampling: look when the model asked to, or earlier when woken.

The sampler owns a watch's rhythm. The first look happens at once; after each
look the next one is due after ``next_delay(result)`` seconds (the model's
``next_run_in``, clamped, or the baseline's fallbacks); a wake ends the wait
early. At most one look is in flight: a wake that arrives during a look is
dropped, never queued, and a wake never starts a look sooner than
``min_gap`` seconds after the previous one ended. An optional ``hold`` keeps a
look's result back for some seconds of the scheduler's clock before it is
emitted (a replay putting the model's answer time on the virtual clock); the
look stays in flight meanwhile. Every timer the sampler sets moves the clock
on by at least one tick (:func:`operators.clock.at_least_a_tick`), so a
``next_delay`` of 0 cannot hold virtual time still. The observer is never
called with the sampler's lock held (see :mod:`operators.serial`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, Literal, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable
from reactivex.scheduler import ThreadPoolScheduler, TimeoutScheduler

from operators.clock import at_least_a_tick, now_s
from operators.serial import SerialEmitter
from operators.token_bucket import Budget
from pipeline.core.pools import shared_pool
from pipeline.core.verdict import MIN_NEXT_RUN_S

__all__ = ["Trigger", "adaptive_sampler", "now_s", "shared_look_scheduler"]

_R = TypeVar("_R")

Trigger = Literal["start", "timer", "wake"]
"""Why a look happens: the watch's first look, the model's timer, or a wake."""

DROP_IN_FLIGHT = "look in flight"
DROP_OVER_BUDGET = "over budget"
"""Reasons the sampler gives for a dropped wake."""


def shared_look_scheduler() -> ThreadPoolScheduler:
    """Return the process-wide thread pool where blocking looks run by default."""
    return shared_pool("looks", 16)


class _Sampler(Generic[_R]):
    """One subscription of :func:`adaptive_sampler` (its timer, its look in flight)."""

    def __init__(
        self,
        look: Callable[[Trigger, float], _R],
        next_delay: Callable[[_R], float],
        observer: abc.ObserverBase[_R],
        sched: abc.SchedulerBase,
        pool: abc.SchedulerBase,
        *,
        min_gap: float,
        budget: Budget | None,
        hold: Callable[[_R], float] | None,
        on_drop: Callable[[float, str], None] | None,
    ) -> None:
        self.look = look
        self.next_delay = next_delay
        self.sched = sched
        self.pool = pool
        self.min_gap = min_gap
        self.budget = budget
        self.hold = hold
        self.on_drop = on_drop
        self.lock = threading.RLock()
        # Never call the observer with ``lock`` held: it may block on locks
        # of its own (a watch, a sink) that a thread waiting here holds.
        self.out: SerialEmitter[_R] = SerialEmitter(observer)
        self.timer = SerialDisposable()
        self.running = SerialDisposable()
        self.in_flight = False
        self.done = False
        self.last_end = float("-inf")

    def schedule(self, delay: float, trigger: Trigger) -> None:
        """Set the timer (replacing any) to start a look after ``delay`` seconds.

        The look is due then: a timer that fires late (a busy machine) makes a
        late look, and its lateness counts from here.
        """
        due = now_s(self.sched) + max(0.0, delay)

        def fire(_s: abc.SchedulerBase, _state: Any = None) -> None:
            self.start(trigger, due)

        if delay <= 0 and trigger == "start":
            self.timer.disposable = self.sched.schedule(fire)
        else:
            self.timer.disposable = self.sched.schedule_relative(at_least_a_tick(delay), fire)

    def start(self, trigger: Trigger, due: float | None = None) -> None:
        """Start a look now unless one is in flight or the budget says wait.

        ``due``: when the look was due (a timer's planned time); default now.
        """
        with self.lock:
            if self.done or self.in_flight:
                return
            now = now_s(self.sched)
            if self.budget is not None:
                wait = self.budget.defer(now)
                if wait > 0:
                    self.schedule(wait, "timer")
                    return
                self.budget.record(now)
            self.in_flight = True
            self.timer.disposable = Disposable()

        planned = now if due is None else min(due, now)

        def work(_s: abc.SchedulerBase, _state: Any = None) -> None:
            self.run(trigger, planned)

        self.running.disposable = self.pool.schedule(work)

    def run(self, trigger: Trigger, due: float) -> None:
        """The look itself (on the look scheduler), then its result, now or after ``hold``."""
        try:
            result = self.look(trigger, due)
            held = 0.0 if self.hold is None else float(self.hold(result))
        except Exception as exc:
            self.on_error(exc)
            return
        if held <= 0:
            self.emit(result)
            return

        def release(_s: abc.SchedulerBase, _state: Any = None) -> None:
            self.emit(result)

        with self.lock:
            if not self.done:
                self.running.disposable = self.sched.schedule_relative(held, release)

    def emit(self, result: _R) -> None:
        """Deliver a look's result, then set the timer for the next look."""
        with self.lock:
            if self.done:
                return
            self.out.push_next(result)
        # Still "in flight" while the result is delivered: wakes are dropped.
        self.out.drain()
        with self.lock:
            self.in_flight = False
            self.last_end = now_s(self.sched)
            if self.done:
                return
            try:
                self.schedule(float(self.next_delay(result)), "timer")
            except Exception as exc:
                self.done = True
                self.out.push_error(exc)
        self.out.drain()

    def on_wake(self, _: Any) -> None:
        """A wake: start a look now (or after ``min_gap``), unless it must be dropped."""
        # Most wakes come while a look is in flight (detections are frequent,
        # looks slow): drop them without taking the lock. A wake racing with a
        # look's end is dropped as if it came earlier.
        if self.in_flight or self.done:
            if self.on_drop is not None:
                self.dropped(DROP_IN_FLIGHT)
            return
        with self.lock:
            if self.done or self.in_flight:
                self.dropped(DROP_IN_FLIGHT)
                return
            now = now_s(self.sched)
            if self.budget is not None and self.budget.wait(now) > 0:
                self.dropped(DROP_OVER_BUDGET)
                return
            gap = self.last_end + self.min_gap - now
            if gap > 0:
                self.schedule(gap, "wake")
                return
        self.start("wake")

    def dropped(self, reason: str) -> None:
        if self.on_drop is not None and not self.done:
            self.on_drop(now_s(self.sched), reason)

    def on_error(self, exc: Exception) -> None:
        """End with ``exc`` (a look, ``hold`` or the wakes failed)."""
        with self.lock:
            self.done = True
            self.timer.dispose()
            self.out.push_error(exc)
        self.out.drain()

    def stop(self) -> None:
        with self.lock:
            self.done = True
        self.timer.dispose()
        self.running.dispose()


def adaptive_sampler(
    look: Callable[[Trigger, float], _R],
    next_delay: Callable[[_R], float],
    *,
    first_delay: float = 0.0,
    min_gap: float = MIN_NEXT_RUN_S,
    budget: Budget | None = None,
    scheduler: abc.SchedulerBase | None = None,
    look_scheduler: abc.SchedulerBase | None = None,
    hold: Callable[[_R], float] | None = None,
    on_drop: Callable[[float, str], None] | None = None,
) -> Callable[[Observable[Any]], Observable[_R]]:
    """Rx operator: wakes in, look results out, with at most one look in flight.

    Example:
        >>> looks = wakes.pipe(adaptive_sampler(lambda trigger, due: take_a_look(trigger),
        ...                                     lambda v: v.next_run_in))  # doctest: +SKIP

    Args:
        look: the blocking look; called with its trigger (``"start"`` for the
            first look, then ``"timer"`` or ``"wake"``) and the scheduler time
            it was due (epoch seconds), on ``look_scheduler``; what it
            returns is emitted.
        next_delay: seconds from a look's end to the next look, given its result
            (called after the result was emitted, so it may read state the
            subscriber updated).
        first_delay: seconds before the first look.
        min_gap: shortest time between a look's end and a woken look.
        budget: a :class:`~operators.token_bucket.Budget` (a refilling token
            bucket); over budget, looks wait and wakes are dropped.
        scheduler: the time source for timers (default: a timeout scheduler).
        look_scheduler: where ``look`` runs (default: a shared thread pool).
        hold: seconds (on ``scheduler``) to keep a result back before emitting
            it, given the result; the look counts as in flight until then, so
            wakes are dropped and the next look's delay starts after it.
            ``None`` (the default) or ``0`` emits at once.
        on_drop: told of each dropped wake (scheduler time, reason:
            ``"look in flight"`` or ``"over budget"``).

    Returns:
        An operator. An exception from ``look``, ``next_delay`` or ``hold``
        goes to ``on_error``; the wakes' completion does not end the looks.

    Raises:
        ValueError: for a negative ``first_delay`` or ``min_gap``.
    """
    if first_delay < 0 or min_gap < 0:
        raise ValueError("first_delay and min_gap must not be negative.")

    def _op(wakes: Observable[Any]) -> Observable[_R]:
        def subscribe(
            observer: abc.ObserverBase[_R], default: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            sampler = _Sampler(
                look,
                next_delay,
                observer,
                scheduler or default or TimeoutScheduler.singleton(),
                look_scheduler or shared_look_scheduler(),
                min_gap=min_gap,
                budget=budget,
                hold=hold,
                on_drop=on_drop,
            )
            sampler.schedule(first_delay, "start")
            sub = wakes.subscribe(
                sampler.on_wake, sampler.on_error, lambda: None, scheduler=default
            )
            return CompositeDisposable(sub, Disposable(sampler.stop))

        return reactivex.create(subscribe)

    return _op
