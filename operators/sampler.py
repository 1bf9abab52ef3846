"""Adaptive sampling: look when the model asked to, or earlier when woken.

The sampler owns a watch's rhythm. The first look happens at once; after each
look the next one is due after ``next_delay(result)`` seconds (the model's
``next_run_in``, clamped, or the baseline's fallbacks); a wake ends the wait
early. At most one look is in flight: a wake that arrives during a look is
dropped, never queued, and a wake never starts a look sooner than
``min_gap`` seconds after the previous one ended. An optional ``hold`` keeps a
look's result back for some seconds of the scheduler's clock before it is
emitted (a replay putting the model's answer time on the virtual clock); the
look stays in flight meanwhile. The observer is never called with the
sampler's lock held (see :mod:`operators.serial`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable
from reactivex.scheduler import ThreadPoolScheduler, TimeoutScheduler

from operators.budget import LookBudget
from operators.serial import SerialEmitter
from pipeline.core.pools import shared_pool
from pipeline.core.verdict import MIN_NEXT_RUN_S

_R = TypeVar("_R")


def shared_look_scheduler() -> ThreadPoolScheduler:
    """Return the process-wide thread pool where blocking looks run by default."""
    return shared_pool("looks", 16)


def now_s(scheduler: abc.SchedulerBase) -> float:
    """Return the scheduler's clock as epoch seconds (virtual seconds on test schedulers)."""
    return scheduler.now.timestamp()


def adaptive_sampler(
    look: Callable[[str], _R],
    next_delay: Callable[[_R], float],
    *,
    first_delay: float = 0.0,
    min_gap: float = MIN_NEXT_RUN_S,
    budget: LookBudget | None = None,
    scheduler: abc.SchedulerBase | None = None,
    look_scheduler: abc.SchedulerBase | None = None,
    hold: Callable[[_R], float] | None = None,
) -> Callable[[Observable[Any]], Observable[_R]]:
    """Rx operator: wakes in, look results out, with at most one look in flight.

    Example:
        >>> looks = wakes.pipe(adaptive_sampler(take_a_look, lambda v: v.next_run_in))
        ... # doctest: +SKIP

    Args:
        look: the blocking look; called with its trigger (``"start"`` for the
            first look, then ``"timer"`` or ``"wake"``) on ``look_scheduler``;
            what it returns is emitted.
        next_delay: seconds from a look's end to the next look, given its result
            (called after the result was emitted, so it may read state the
            subscriber updated).
        first_delay: seconds before the first look.
        min_gap: shortest time between a look's end and a woken look.
        budget: a :class:`LookBudget`; over budget, looks wait and wakes are ignored.
        scheduler: the time source for timers (default: a timeout scheduler).
        look_scheduler: where ``look`` runs (default: a shared thread pool).
        hold: seconds (on ``scheduler``) to keep a result back before emitting
            it, given the result; the look counts as in flight until then, so
            wakes are dropped and the next look's delay starts after it.
            ``None`` (the default) or ``0`` emits at once.

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
            sched = scheduler or default or TimeoutScheduler.singleton()
            pool = look_scheduler or shared_look_scheduler()
            lock = threading.RLock()
            # Never call the observer with ``lock`` held: it may block on locks
            # of its own (a watch, a sink) that a thread waiting here holds.
            out: SerialEmitter[_R] = SerialEmitter(observer)
            timer = SerialDisposable()
            running = SerialDisposable()
            st = {"in_flight": False, "done": False, "last_end": float("-inf")}

            def schedule(delay: float, trigger: str) -> None:
                def fire(_s: abc.SchedulerBase, _state: Any = None) -> None:
                    start(trigger)

                timer.disposable = sched.schedule_relative(max(0.0, delay), fire)

            def start(trigger: str) -> None:
                with lock:
                    if st["done"] or st["in_flight"]:
                        return
                    if budget is not None:
                        wait = budget.wait(now_s(sched))
                        if wait > 0:
                            schedule(wait, "timer")
                            return
                        budget.record(now_s(sched))
                    st["in_flight"] = True
                    timer.disposable = Disposable()

                def work(_s: abc.SchedulerBase, _state: Any = None) -> None:
                    run(trigger)

                running.disposable = pool.schedule(work)

            def run(trigger: str) -> None:
                try:
                    result = look(trigger)
                    held = 0.0 if hold is None else float(hold(result))
                except Exception as exc:
                    with lock:
                        st["done"] = True
                        out.push_error(exc)
                    out.drain()
                    return
                if held > 0:

                    def release(_s: abc.SchedulerBase, _state: Any = None) -> None:
                        emit(result)

                    with lock:
                        if not st["done"]:
                            running.disposable = sched.schedule_relative(held, release)
                    return
                emit(result)

            def emit(result: _R) -> None:
                with lock:
                    if st["done"]:
                        return
                    out.push_next(result)
                # Still "in flight" while the result is delivered: wakes are dropped.
                out.drain()
                with lock:
                    st["in_flight"] = False
                    st["last_end"] = now_s(sched)
                    if st["done"]:
                        return
                    try:
                        schedule(float(next_delay(result)), "timer")
                    except Exception as exc:
                        st["done"] = True
                        out.push_error(exc)
                out.drain()

            def on_wake(_: Any) -> None:
                # Most wakes come while a look is in flight (detections are
                # frequent, looks slow): drop them without taking the lock. A
                # wake racing with a look's end is dropped as if it came earlier.
                if st["in_flight"] or st["done"]:
                    return
                with lock:
                    if st["done"] or st["in_flight"]:
                        return
                    if budget is not None and budget.wait(now_s(sched)) > 0:
                        return
                    gap = st["last_end"] + min_gap - now_s(sched)
                    if gap > 0:
                        schedule(gap, "wake")
                        return
                start("wake")

            def on_error(exc: Exception) -> None:
                with lock:
                    st["done"] = True
                    timer.dispose()
                    out.push_error(exc)
                out.drain()

            def stop() -> None:
                with lock:
                    st["done"] = True
                timer.dispose()
                running.dispose()

            schedule(first_delay, "start")
            sub = wakes.subscribe(on_wake, on_error, lambda: None, scheduler=default)
            return CompositeDisposable(sub, Disposable(stop))

        return reactivex.create(subscribe)

    return _op
