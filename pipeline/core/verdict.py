"""Verdicts: what one look at a frame concluded."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

MIN_NEXT_RUN_S = 1.0
MAX_NEXT_RUN_S = 300.0
DEFAULT_NEXT_RUN_S = 30.0
RETRY_AFTER_BAD_ANSWER_S = 30.0
RETRY_AFTER_NO_FRAME_S = 10.0
RETRY_AFTER_UNAVAILABLE_S = 30.0


class AnswerKind(StrEnum):
    """How a look ended."""

    MET = "met"
    NOT_MET = "not_met"
    EMPTY = "empty"
    UNPARSEABLE = "unparseable"
    NO_FRAME = "no_frame"
    UNAVAILABLE = "unavailable"
    ERROR = "error"


def clamp_next_run(seconds: float | None, default: float = DEFAULT_NEXT_RUN_S) -> float:
    """Clamp a model's ``next_run_in`` to [1, 300] seconds; ``None`` gives ``default``.

    Example:
        >>> clamp_next_run(0), clamp_next_run(1000), clamp_next_run(None)
        (1.0, 300.0, 30.0)
    """
    if seconds is None:
        seconds = default
    return float(min(MAX_NEXT_RUN_S, max(MIN_NEXT_RUN_S, seconds)))


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one look.

    Use the constructors :meth:`answered` and :meth:`failed` rather than filling
    every field by hand.

    Example:
        >>> v = Verdict.answered(True, 5, "A box is on the mat.", "Package on the porch")
        >>> v.kind, v.next_run_in
        (<AnswerKind.MET: 'met'>, 5.0)
        >>> Verdict.failed(AnswerKind.NO_FRAME, "camera offline").next_run_in
        10.0

    Attributes:
        kind: how the look ended.
        condition_met: the model is confident the condition holds.
        next_run_in: seconds until the next look, already clamped to [1, 300].
        reasoning: the model's one or two sentences.
        notification_message: short phone-friendly text, only when met.
        raw_answer: the model's text as received (for history and debugging).
        error: what went wrong, for the failure kinds.
        confidence: optional score in [0, 1] (zero-shot and ONNX backends).
        latency_s: seconds the backend took.
    """

    kind: AnswerKind
    condition_met: bool
    next_run_in: float
    reasoning: str = ""
    notification_message: str | None = None
    raw_answer: str | None = None
    error: str | None = None
    confidence: float | None = None
    latency_s: float = 0.0

    @classmethod
    def answered(
        cls,
        condition_met: bool,
        next_run_in: float | None,
        reasoning: str = "",
        notification_message: str | None = None,
        *,
        raw_answer: str | None = None,
        confidence: float | None = None,
    ) -> Verdict:
        """A verdict from a valid answer; ``next_run_in`` is clamped."""
        return cls(
            kind=AnswerKind.MET if condition_met else AnswerKind.NOT_MET,
            condition_met=condition_met,
            next_run_in=clamp_next_run(next_run_in),
            reasoning=reasoning,
            notification_message=notification_message if condition_met else None,
            raw_answer=raw_answer,
            confidence=confidence,
        )

    @classmethod
    def failed(cls, kind: AnswerKind, error: str, *, raw_answer: str | None = None) -> Verdict:
        """A verdict for a look that gave no usable answer, with the baseline retry delay."""
        retry = {
            AnswerKind.NO_FRAME: RETRY_AFTER_NO_FRAME_S,
            AnswerKind.UNAVAILABLE: RETRY_AFTER_UNAVAILABLE_S,
        }.get(kind, RETRY_AFTER_BAD_ANSWER_S)
        if kind in (AnswerKind.MET, AnswerKind.NOT_MET):
            raise ValueError("Use Verdict.answered for met / not-met answers.")
        return cls(
            kind=kind, condition_met=False, next_run_in=retry, error=error, raw_answer=raw_answer
        )

    def with_latency(self, seconds: float) -> Verdict:
        """A copy with ``latency_s`` set."""
        return replace(self, latency_s=seconds)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "kind": self.kind.value,
            "condition_met": self.condition_met,
            "next_run_in": self.next_run_in,
            "reasoning": self.reasoning,
            "notification_message": self.notification_message,
            "error": self.error,
            "confidence": self.confidence,
            "latency_s": self.latency_s,
        }
