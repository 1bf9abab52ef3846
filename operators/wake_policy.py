"""The wake policy seam: what turns matching detections (and pictures) into wakes.

A watch waits between looks for as long as the model's ``next_run_in`` says;
a *wake* ends the wait early. Which matching detection wakes it, and when, is
the wake policy's decision. The watch's wake stage
(:func:`operators.wakes.wake_signals`) asks the policy once per matching
detection and carries out the answer:

- :meth:`WakeDecision.now`: wake at once;
- :meth:`WakeDecision.later`: wake at scheduler time ``at`` (one pending wake
  per wait: the earliest asked for; it carries the latest match);
- :meth:`WakeDecision.drop`: no wake; counted under its ``reason``.

A new wait (the answer of a look came) cancels a pending wake: the look that
just answered has seen what the pending wake was for.

The policy sees a :class:`WakeContext`: the time the wait started (when the
last look's answer came), the frame the model judged last, the matching
detections since the wait started, and the camera's frames (to compare
pictures; ``latest()`` may decode, so call it sparingly). The default policy,
:class:`operators.cooldown.CooldownPolicy`, is the baseline's (DESIGN.md,
behaviour A).

Example: a policy that wakes only on a new label since the last look::

    class NewLabel:
        def decide(self, detection: Detection, context: WakeContext) -> WakeDecision:
            earlier = {d.label for d in context.matches[:-1]}
            if detection.label in earlier:
                return WakeDecision.drop("label already seen")
            return WakeDecision.now()

    run_watch(spec, frames=camera, backend=vlm, detections=dets,
              wake_policy=NewLabel())  # doctest: +SKIP

A policy that also implements :class:`PictureWakePolicy` (a ``see(frame,
context)`` method) is shown the camera's pictures when the stage is given
them, and may wake the watch on a picture alone. Each wake comes out as a
:class:`Wake` (its reason, and the detection or picture that woke it). A
policy may keep state of its own; give each run of a watch its own instance.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple, Protocol, runtime_checkable

from reactivex import abc

from operators.clock import now_s
from pipeline.core.detection import Detection
from pipeline.core.frame import Frame, FrameProvider

MAX_MATCHES = 64
"""Matching detections kept for the context (the newest; older ones are dropped)."""


class WakeAction(StrEnum):
    """What a wake policy decided about one matching detection."""

    NOW = "now"
    AT = "at"
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class WakeDecision:
    """A wake policy's answer: wake now, wake at a time, or drop (with a reason).

    Example:
        >>> WakeDecision.later(12.5, "cooldown")
        WakeDecision(action=<WakeAction.AT: 'at'>, at=12.5, reason='cooldown')
        >>> WakeDecision.drop("no news").reason
        'no news'

    Attributes:
        action: now, at or drop.
        at: for ``AT``: the scheduler time (epoch seconds) to wake at; a time
            already past wakes at once.
        reason: why (shown in logs and counts; required to drop).
    """

    action: WakeAction
    at: float = 0.0
    reason: str = ""

    @staticmethod
    def now(reason: str = "") -> WakeDecision:
        """Wake at once."""
        return WAKE_NOW if not reason else WakeDecision(WakeAction.NOW, 0.0, reason)

    @staticmethod
    def later(at: float, reason: str = "") -> WakeDecision:
        """Wake at scheduler time ``at`` (epoch seconds), unless the wait ends first."""
        return WakeDecision(WakeAction.AT, float(at), reason)

    @staticmethod
    def drop(reason: str) -> WakeDecision:
        """No wake for this detection; it is counted as dropped under ``reason``.

        Raises:
            ValueError: ``reason`` is blank.
        """
        if not reason.strip():
            raise ValueError("A dropped wake needs a reason.")
        return WakeDecision(WakeAction.DROP, 0.0, reason)


WAKE_NOW = WakeDecision(WakeAction.NOW)
"""The answer most policies give most often (no allocation per detection)."""


class WakeContext:
    """What a wake policy may look at while it decides (one per run of a watch).

    The wake stage updates it under its own lock; read it during
    :meth:`WakePolicy.decide` only.

    Attributes:
        wait_start: scheduler time (epoch seconds) when the current wait began:
            when the last look's answer came (or when the watch started).
        last_judged: the frame the model judged last (``None`` before the
            first answer, or when that look had no frame).
        last_next_run_in: seconds from the last answer to the watch's next
            timer look (the model's ``next_run_in``, clamped, or a retry delay,
            or the rest of a quiet period); ``None`` when unknown. A wake may
            only make the wait shorter than this.
        frames: the camera's frames (``None`` when the stage was given none).
        matches: matching detections since the wait began, oldest first, the
            one being decided last (at most :data:`MAX_MATCHES`).
    """

    __slots__ = ("_scheduler", "frames", "last_judged", "last_next_run_in", "matches", "wait_start")

    def __init__(
        self,
        scheduler: abc.SchedulerBase,
        wait_start: float,
        frames: FrameProvider | None = None,
    ) -> None:
        self._scheduler = scheduler
        self.wait_start = wait_start
        self.frames = frames
        self.last_judged: Frame | None = None
        self.last_next_run_in: float | None = None
        self.matches: deque[Detection] = deque(maxlen=MAX_MATCHES)

    @property
    def now(self) -> float:
        """The scheduler's time now (epoch seconds; virtual in tests and replays)."""
        return now_s(self._scheduler)

    def start_wait(self, at: float, judged: Frame | None, next_run_in: float | None = None) -> None:
        """A new wait begins at ``at`` after the model judged ``judged`` (the stage calls this)."""
        self.wait_start = at
        self.last_judged = judged
        self.last_next_run_in = next_run_in
        self.matches.clear()


class WakePolicy(Protocol):
    """Decides, for each matching detection, whether and when the watch wakes.

    Implementations: :class:`operators.cooldown.CooldownPolicy` (the
    baseline: at once with zones, else not before ``wait start + cooldown``).
    """

    def decide(self, detection: Detection, context: WakeContext) -> WakeDecision:
        """Return what ``detection`` (already matched by label and zone) does to the wait.

        Called on the detections' thread, under the wake stage's lock: keep it
        short. An exception ends the watch's wake stream with that error.
        """
        ...


@runtime_checkable
class PictureWakePolicy(WakePolicy, Protocol):
    """A wake policy that also judges the camera's pictures (given ``pictures`` to the stage).

    A policy that compares each picture with the one the model judged last
    (``context.last_judged``) wakes the watch on news in the picture itself.
    """

    def see(self, frame: Frame, context: WakeContext) -> WakeDecision | None:
        """Return what one picture does to the wait (``None``: nothing, not counted).

        Called on the pictures' thread, under the wake stage's lock.
        """
        ...


class Wake(NamedTuple):
    """A wake signal: why, and what woke the watch.

    Attributes:
        reason: the policy's reason (empty when it gave none).
        detection: the matching detection that woke it (for a wake at a later
            time: the latest match by then), if a detection did.
        frame: the picture that woke it, if a picture did.
    """

    reason: str = ""
    detection: Detection | None = None
    frame: Frame | None = None


@dataclass(frozen=True, slots=True)
class Answered:
    """A look's answer came: the watch's next wait starts (the item a wake stage's ``waits`` carry).

    Attributes:
        frame: the frame the model judged (``None`` for a look without one).
        next_run_in: seconds until the watch's next timer look (see
            :attr:`WakeContext.last_next_run_in`).
    """

    frame: Frame | None = None
    next_run_in: float | None = None
