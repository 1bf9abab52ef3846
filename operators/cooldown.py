"""Turn a stream of matching detections into wakes, with the baseline's cooldown.

With zones, every match wakes at once (zone matches are rare and meaningful).
Without zones, detections are frequent: the first match starts a cooldown
window (10 s by default), matches inside it are drained, and one wake comes
when the window has passed, carrying the latest match. The next match after
that starts a new window. So two wakes are never closer than the cooldown.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, SerialDisposable
from reactivex.scheduler import TimeoutScheduler

_T = TypeVar("_T")


def cooldown(
    duration: float,
    *,
    immediate: bool = False,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Rx operator: wake at most once per ``duration`` seconds, at the end of each window.

    Example:
        >>> matches.pipe(cooldown(10.0))                  # no zones  # doctest: +SKIP
        >>> matches.pipe(cooldown(10.0, immediate=True))  # with zones # doctest: +SKIP

    Items in: matching detections (or anything). Items out: wakes, each the
    latest item of its window. ``duration == 0`` or ``immediate=True`` passes
    every item through at once.

    Args:
        duration: window length in seconds (>= 0).
        immediate: wake at once on every item (the baseline's behaviour with zones).
        scheduler: time source (default: a timeout scheduler).

    Returns:
        An operator. Errors and completion pass through; a pending wake is
        emitted before completion.

    Raises:
        ValueError: for a negative duration.
    """
    if duration < 0:
        raise ValueError(f"The cooldown must not be negative, got {duration} s.")

    def _op(source: Observable[_T]) -> Observable[_T]:
        if immediate or duration == 0:
            return source

        def subscribe(
            observer: abc.ObserverBase[_T], default: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            sched = scheduler or default or TimeoutScheduler.singleton()
            lock = threading.RLock()
            timer = SerialDisposable()
            latest: list[_T] = []
            window_open = [False]

            def fire(_: abc.SchedulerBase, __: Any = None) -> None:
                with lock:
                    window_open[0] = False
                    if latest:
                        item = latest.pop()
                        latest.clear()
                        observer.on_next(item)

            def on_next(item: _T) -> None:
                with lock:
                    latest[:] = [item]
                    if not window_open[0]:
                        window_open[0] = True
                        timer.disposable = sched.schedule_relative(duration, fire)

            def on_completed() -> None:
                with lock:
                    timer.dispose()
                    if latest:
                        observer.on_next(latest.pop())
                    observer.on_completed()

            def on_error(exc: Exception) -> None:
                with lock:
                    timer.dispose()
                    observer.on_error(exc)

            sub = source.subscribe(on_next, on_error, on_completed, scheduler=default)
            return CompositeDisposable(sub, timer)

        return reactivex.create(subscribe)

    return _op
