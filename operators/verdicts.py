"""What a look means, as pure functions: its record, the state changes, and an alert.

The watch's lifecycle (:mod:`operators.lifecycle`) calls :func:`judge_look`
for each :class:`~operators.look.Look` and acts on the :class:`Judgement`:
it publishes the ``LookRecord``, the ``Alert`` if any, and the state
changes. The state tells the truth about the last look: its reasoning is the
model's, or a plain sentence saying why there is none
(:func:`look_reasoning`; "Camera frame unavailable" for a look without a
frame, as the baseline says).

Example:
    >>> from pipeline.core.verdict import AnswerKind, Verdict
    >>> look_reasoning(Verdict.failed(AnswerKind.NO_FRAME, "camera offline"))
    'Camera frame unavailable'
    >>> a = Agreement(looks=2, window=3)
    >>> [a.add(Verdict.answered(m, 5)) for m in (True, False, True)]
    [False, False, True]
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from operators.look import Look
from operators.watch_spec import WatchSpec
from pipeline.core.events import Alert, LookRecord, WatchState
from pipeline.core.verdict import AnswerKind, Verdict

ANSWERED = (AnswerKind.MET, AnswerKind.NOT_MET)
"""Kinds of verdict that carry the model's judgement (and count toward agreement)."""

NO_ANSWER_REASONING: dict[AnswerKind, str] = {
    AnswerKind.NO_FRAME: "Camera frame unavailable",
    AnswerKind.EMPTY: "The model gave an empty answer",
    AnswerKind.UNPARSEABLE: "The model's answer could not be read",
    AnswerKind.UNAVAILABLE: "No model was available for this look",
    AnswerKind.ERROR: "The look failed",
}
"""The state's ``last_reasoning`` for a look that got no judgement from the model."""


def look_reasoning(verdict: Verdict) -> str:
    """The ``last_reasoning`` a look leaves in the state: the model's, or why there is none."""
    if verdict.kind in ANSWERED:
        return verdict.reasoning
    return NO_ANSWER_REASONING.get(verdict.kind, "The look failed")


class Agreement:
    """N-of-M agreement: met only when ``looks`` of the latest ``window`` answers said met.

    Looks without an answer (no frame, bad answer) neither count nor break it.

    Args:
        looks: answers that must say met (>= 1).
        window: among this many latest answers (>= ``looks``).
    """

    def __init__(self, looks: int = 1, window: int = 1) -> None:
        if not 1 <= looks <= window:
            raise ValueError(f"Agreement needs 1 <= looks <= window, got {looks} of {window}.")
        self.looks = looks
        self._latest: deque[bool] = deque(maxlen=window)

    def add(self, verdict: Verdict) -> bool:
        """Count ``verdict``; return whether it alerts (it says met, and enough agree)."""
        if verdict.kind in ANSWERED:
            self._latest.append(verdict.condition_met)
        return verdict.condition_met and sum(self._latest) >= self.looks

    def clear(self) -> None:
        """Start over (after an alert: the next one is earned afresh)."""
        self._latest.clear()


@dataclass(frozen=True, slots=True)
class Judgement:
    """What one look means for the watch.

    Attributes:
        record: the look's record.
        alert: the alert it raises, if any.
        changes: the state fields it changes (``next_look_in`` is the lifecycle's).
    """

    record: LookRecord
    alert: Alert | None
    changes: dict[str, Any]


def look_record(spec: WatchSpec, job_id: str, look: Look) -> LookRecord:
    """The :class:`LookRecord` of ``look`` (with its frame's kind, its lateness and age)."""
    frame, taken = look.frame, look.taken
    lateness = age = None
    if frame is not None and taken is not None:
        age = round(taken - frame.wall_time, 4)
        lateness = None if look.due is None else round(taken - look.due, 4)
    return LookRecord(
        watch=spec.name,
        job_id=job_id,
        time=look.time,
        trigger=look.trigger,
        verdict=look.verdict,
        frame=frame.ref if frame is not None else None,
        jpeg=look.jpeg,
        thumbnail=look.thumbnail,
        frame_kind=None if frame is None else ("keyframe" if frame.keyframe else "inter"),
        lateness_s=lateness,
        frame_age_s=age,
    )


def make_alert(spec: WatchSpec, job_id: str, look: Look, look_count: int) -> Alert:
    """The :class:`Alert` of a met look: the notification message, else the reasoning."""
    v = look.verdict
    return Alert(
        event_id=uuid.uuid4().hex,
        watch=spec.name,
        job_id=job_id,
        camera=spec.camera,
        condition=spec.condition,
        message=v.notification_message or v.reasoning or spec.condition,
        reasoning=v.reasoning,
        time=look.time,
        look_count=look_count,
        frame=look.frame.ref if look.frame is not None else None,
        jpeg=look.jpeg,
    )


def judge_look(
    spec: WatchSpec,
    job_id: str,
    look: Look,
    state: WatchState,
    agreement: Agreement,
    looks_last_hour: int,
) -> Judgement:
    """Judge one look against the run's state; ``agreement`` is updated (cleared on an alert)."""
    v = look.verdict
    iterations = state.iterations + 1
    changes: dict[str, Any] = {
        "iterations": iterations,
        "last_answer": v.kind.value,
        "looks_last_hour": looks_last_hour,
        "condition_met": v.condition_met,
        "last_reasoning": look_reasoning(v),
        # why the last look got no answer ("vlm: unauthorized: check the API key"), else none
        "error_message": None if v.kind in ANSWERED else v.error,
    }
    alert = None
    if agreement.add(v):
        alert = make_alert(spec, job_id, look, iterations)
        changes["alerts"] = state.alerts + 1
        changes["notification_message"] = alert.message
        agreement.clear()
    return Judgement(look_record(spec, job_id, look), alert, changes)
