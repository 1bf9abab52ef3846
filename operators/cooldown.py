"""The baseline's cooldown (DESIGN.md, behaviour A): the default wake policy.

A watch's wait begins when its last look's answer came. Without zones,
detections are frequent, so no wake comes earlier than ``cooldown_s`` after
the wait began: a match seen before that mark wakes the watch *at* the mark, a
match after it wakes at once, and matches meanwhile are drained. So::

    wake time = max(first match, wait start + cooldown_s)

With zones (rare, meaningful matches) every match wakes at once, which is the
same rule with a cooldown of 0 (:func:`baseline_policy`). It is not "10 s
after the first match".

Example:
    >>> cooldown_wake_time(first_match=3.0, wait_start=0.0, cooldown_s=10.0)
    10.0
    >>> cooldown_wake_time(first_match=14.0, wait_start=0.0, cooldown_s=10.0)
    14.0
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reactivex import Observable, abc
from reactivex import operators as ops

from operators.wake_policy import WAKE_NOW, Wake, WakeContext, WakeDecision
from operators.wakes import wake_signals
from pipeline.core.detection import Detection

DEFAULT_COOLDOWN_S = 10.0


def cooldown_wake_time(first_match: float, wait_start: float, cooldown_s: float) -> float:
    """When the baseline wakes: the first match of a wait, but not before its cooldown mark."""
    return max(first_match, wait_start + cooldown_s)


@dataclass(frozen=True, slots=True)
class CooldownPolicy:
    """The baseline wake policy: wake at ``max(match, wait start + cooldown_s)``.

    Example:
        >>> CooldownPolicy(0.0)   # with zones: every match wakes at once
        CooldownPolicy(cooldown_s=0.0)

    Args:
        cooldown_s: seconds after the wait began before a match may wake the
            watch (>= 0, finite); 0 wakes at once.

    Raises:
        ValueError: a negative or infinite cooldown.
    """

    cooldown_s: float = DEFAULT_COOLDOWN_S

    def __post_init__(self) -> None:
        if not 0 <= self.cooldown_s < math.inf:
            raise ValueError(
                f"The cooldown must be finite and not negative, got {self.cooldown_s} s."
            )

    def decide(self, detection: Detection, context: WakeContext) -> WakeDecision:
        """Wake now once the mark has passed, else at the mark."""
        if self.cooldown_s == 0.0:  # (a float against an int compares 3x slower)
            return WAKE_NOW
        mark = context.wait_start + self.cooldown_s
        if context.now >= mark:
            return WAKE_NOW
        return WakeDecision.later(mark, "cooldown")


def baseline_policy(cooldown_s: float = DEFAULT_COOLDOWN_S, *, zones: bool) -> CooldownPolicy:
    """The baseline's policy for a watch: at once with zones, else after the cooldown.

    Example:
        >>> baseline_policy(10.0, zones=True), baseline_policy(10.0, zones=False)
        (CooldownPolicy(cooldown_s=0.0), CooldownPolicy(cooldown_s=10.0))
    """
    return CooldownPolicy(0.0 if zones else cooldown_s)


def cooldown(
    duration: float,
    *,
    waits: Observable[Any] | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[Detection]], Observable[Detection]]:
    """Rx operator: the baseline's cooldown on a stream of matching detections.

    Example:
        >>> matches.pipe(cooldown(10.0, waits=answers))  # doctest: +SKIP

    Items in: matching detections. Items out: wakes, each the latest match by
    then. A wait starts at subscription and again on each item of ``waits``
    (the answers of your looks); without ``waits``, at each wake (as if each
    wake's look answered at once). Within a wait the first wake comes at
    ``max(first match, wait start + duration)``; later matches of the same
    wait wake at once. ``duration == 0`` passes every match through at once
    (the baseline with zones).

    Args:
        duration: the cooldown in seconds (>= 0).
        waits: items that start a new wait (see above).
        scheduler: time source (default: a timeout scheduler).

    Returns:
        An operator. Errors and completion pass through; a pending wake is
        emitted before completion.

    Raises:
        ValueError: for a negative or infinite duration.
    """
    policy = CooldownPolicy(duration)

    def _op(matches: Observable[Detection]) -> Observable[Detection]:
        wakes = matches.pipe(wake_signals(policy, waits=waits, scheduler=scheduler))
        return wakes.pipe(ops.map(_detection))

    return _op


def _detection(wake: Wake) -> Detection:
    """The detection a wake of :func:`cooldown` carries (its wakes all come from detections)."""
    assert wake.detection is not None
    return wake.detection
