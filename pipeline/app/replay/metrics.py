"""Figures of a replay against its labels: pure functions over clip times.

Every time is in clip seconds. Only the ``event`` intervals of the labels
(when the condition holds) are counted; ``forming`` and ``relevant`` ones tell
a scripted model what to answer. An alert counts for an interval when it falls
in ``[start, end + tolerance]``; ``tolerance`` (default 0) lets a late but
fair alert count. Intervals that start after the watch ended (``once`` mode
after its alert, a time-out) are *not reached*, not missed. A look is judged
(``look_agreement``) at the time of the frame it judged, not when it ran.

Example:
    >>> ivs = [Interval(4, 8), Interval(13, 16)]
    >>> time_to_first_alert(ivs, [5.0, 11.0])
    [1.0, None]
    >>> false_alerts(ivs, [5.0, 11.0]), missed_intervals(ivs, [5.0, 11.0])
    ([11.0], [Interval(start=13.0, end=16.0, note='', kind='event')])
    >>> precision_recall(ivs, [5.0, 11.0])
    (0.5, 0.5)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.app.replay.engine import ReplayRun
from pipeline.app.replay.labels import Interval, events
from pipeline.core.events import LookRecord


def _r(x: float) -> float:
    """Round to the microsecond, the virtual clock's resolution."""
    return round(x, 6)


def interval_index(intervals: Sequence[Interval], t: float, tolerance: float = 0.0) -> int | None:
    """Return the index of the first interval that counts time ``t``, else ``None``.

    Example:
        >>> interval_index([Interval(4, 8)], 8.5, tolerance=1.0)
        0
    """
    for i, iv in enumerate(intervals):
        if iv.contains(t, tolerance):
            return i
    return None


def reached(intervals: Sequence[Interval], until: float | None) -> list[Interval]:
    """Return the intervals that started before the watch ended (``until``; ``None``: all)."""
    if until is None:
        return list(intervals)
    return [iv for iv in intervals if iv.start <= until]


def time_to_first_alert(
    intervals: Sequence[Interval], alerts: Sequence[float], tolerance: float = 0.0
) -> list[float | None]:
    """Seconds from each interval's start to its first alert (``None``: no alert in it).

    Example:
        >>> time_to_first_alert([Interval(4, 8)], [3.0, 6.5, 7.0])
        [2.5]
    """
    out: list[float | None] = []
    for iv in intervals:
        inside = [t for t in alerts if iv.contains(t, tolerance)]
        out.append(_r(min(inside) - iv.start) if inside else None)
    return out


def false_alerts(
    intervals: Sequence[Interval], alerts: Sequence[float], tolerance: float = 0.0
) -> list[float]:
    """Return the alert times outside every interval.

    Example:
        >>> false_alerts([Interval(4, 8)], [2.0, 5.0, 9.0], tolerance=0.5)
        [2.0, 9.0]
    """
    return [t for t in alerts if interval_index(intervals, t, tolerance) is None]


def missed_intervals(
    intervals: Sequence[Interval],
    alerts: Sequence[float],
    tolerance: float = 0.0,
    until: float | None = None,
) -> list[Interval]:
    """Return the reached intervals (see :func:`reached`) without any alert.

    Example:
        >>> missed_intervals([Interval(4, 8), Interval(20, 30)], [5.0], until=10.0)
        []
    """
    return [
        iv for iv in reached(intervals, until) if not any(iv.contains(t, tolerance) for t in alerts)
    ]


def precision_recall(
    intervals: Sequence[Interval],
    alerts: Sequence[float],
    tolerance: float = 0.0,
    until: float | None = None,
) -> tuple[float | None, float | None]:
    """Return precision and recall over intervals.

    Precision is the share of alerts inside an interval, recall the share of
    reached intervals with an alert; ``None`` where there is nothing to count.

    Example:
        >>> precision_recall([Interval(4, 8), Interval(13, 16)], [5.0, 6.0, 14.0, 20.0])
        (0.75, 1.0)
        >>> precision_recall([], [])
        (None, None)
    """
    true = [t for t in alerts if interval_index(intervals, t, tolerance) is not None]
    precision = len(true) / len(alerts) if alerts else None
    considered = reached(intervals, until)
    hit = [iv for iv in considered if any(iv.contains(t, tolerance) for t in alerts)]
    recall = len(hit) / len(considered) if considered else None
    return precision, recall


def mean_time_to_alert(
    intervals: Sequence[Interval], alerts: Sequence[float], tolerance: float = 0.0
) -> float | None:
    """Mean seconds from each interval's start to its first alert, a miss counting its length.

    ``None`` without intervals. Unlike the mean over the alerted intervals
    only, a policy cannot look better by missing the hard ones.

    Example:
        >>> mean_time_to_alert([Interval(4, 8), Interval(10, 16)], [5.0])
        3.5
    """
    if not intervals:
        return None
    ttfa = time_to_first_alert(intervals, alerts, tolerance)
    charged = [iv.length if t is None else t for iv, t in zip(intervals, ttfa, strict=True)]
    return _r(sum(charged) / len(charged))


def woken_reasons(
    looks: Sequence[tuple[float, str]], wakes: Sequence[tuple[float, str]]
) -> dict[str, int]:
    """Count the woken looks by the reason of the wake that started each one.

    ``looks`` are ``(time, trigger)``, ``wakes`` ``(time, reason)`` in time
    order; a woken look answers the latest wake at or before it (reason
    ``wake`` when the wake gave none).

    Example:
        >>> woken_reasons([(0, "start"), (5, "wake"), (9, "wake")],
        ...               [(4.8, "entered"), (8.5, "")])
        {'entered': 1, 'wake': 1}
    """
    out: dict[str, int] = {}
    i, reason = 0, "wake"
    for t, trigger in looks:
        while i < len(wakes) and wakes[i][0] <= t + 1e-9:
            reason = wakes[i][1] or "wake"
            i += 1
        if trigger == "wake":
            out[reason] = out.get(reason, 0) + 1
    return out


def looks_per_minute(looks: int, seconds: float) -> float:
    """Looks per minute of clip time (0 for an empty clip).

    Example:
        >>> looks_per_minute(12, 60.0), looks_per_minute(3, 0.0)
        (12.0, 0.0)
    """
    return _r(looks * 60.0 / seconds) if seconds > 0 else 0.0


def look_agreement(
    intervals: Sequence[Interval], looks: Sequence[tuple[float, bool | None]]
) -> float | None:
    """Share of answered looks whose answer (met or not) agrees with the labels.

    ``looks`` are ``(time, condition_met)``; ``None`` marks a look without an
    answer (no frame, error), which is left out.

    Example:
        >>> look_agreement([Interval(4, 8)], [(0.0, False), (5.0, True), (6.0, False), (7.0, None)])
        0.666667
    """
    answered = [(t, met) for t, met in looks if met is not None]
    if not answered:
        return None
    good = sum(1 for t, met in answered if met == (interval_index(intervals, t) is not None))
    return _r(good / len(answered))


@dataclass(frozen=True)
class Figures:
    """Every figure of one replay (what the JSON report and the comparison show).

    Attributes:
        watch: watch name.
        mode: ``once`` or ``repeat``.
        backend: backend name and type, e.g. ``vlm (openai)``.
        detector: what fed detections.
        duration_s: clip seconds.
        replayed_s: clip seconds the watch ran (less when it ended early).
        ended_at_s: clip time when the watch ended, if it did.
        status: the watch's final status.
        looks: looks made.
        looks_per_minute: looks per minute of ``replayed_s``.
        looks_by_trigger: ``timer`` / ``wake`` counts.
        answers: count of looks per answer kind.
        model_time_s: seconds the backend spent answering (sum of latencies).
        detections: detections seen; ``zone_hits``: those matching the watch.
        wakes: wake signals that came out of the wake policy.
        looks_woken: looks that a wake started (``looks_by_trigger["wake"]``).
        wake_reasons: woken looks by the reason of their wake (the news
            policy's ``entered``, ``more``, ``less``, ``left``...).
        wakes_dropped: dropped wakes by reason (``no news``, ``brief``,
            ``look in flight``, ``quiet period``, ``over budget``...).
        budget: the look budget at the end (tokens, rate, burst, when it ran
            dry, looks deferred), ``None`` without one.
        alerts: alerts sent; ``alert_times``: their clip times.
        intervals: labelled intervals (``None`` without labels, then the
            figures below are ``None`` too).
        time_to_first_alert_s: per interval, seconds to its first alert.
        mean_time_to_first_alert_s: mean over the intervals with an alert.
        mean_time_to_alert_s: mean over every interval, a miss counting its length.
        false_alerts: clip times of alerts outside every interval.
        missed_intervals: reached intervals without an alert.
        not_reached: intervals that started after the watch ended.
        precision, recall: over intervals, for ``repeat`` watches.
        look_agreement: share of answered looks that agree with the labels.
        tolerance_s: seconds after an interval's end an alert still counts.
        wall_s: real seconds the replay took; ``speed``: clip seconds per real second.
        raw_decode_s: real seconds a plain PyAV decode of every frame of the
            same clip (the replayed part) took, when measured.
        speed_vs_raw_decode: ``raw_decode_s / wall_s``: above 1, the replay ran
            faster than merely decoding the clip would.
        model_latency: how answers were put on the virtual clock (``none``,
            ``measured`` or seconds).
        error: why the watch stopped with an error, if it did.
    """

    watch: str
    mode: str
    backend: str
    detector: str
    duration_s: float
    replayed_s: float
    ended_at_s: float | None
    status: str
    looks: int
    looks_per_minute: float
    looks_by_trigger: dict[str, int]
    answers: dict[str, int]
    model_time_s: float
    detections: int
    zone_hits: int
    wakes: int
    alerts: int
    alert_times: list[float]
    looks_woken: int = 0
    wake_reasons: dict[str, int] = field(default_factory=dict)
    wakes_dropped: dict[str, int] = field(default_factory=dict)
    budget: dict[str, Any] | None = None
    intervals: list[dict[str, Any]] | None = None
    time_to_first_alert_s: list[float | None] | None = None
    mean_time_to_first_alert_s: float | None = None
    mean_time_to_alert_s: float | None = None
    false_alerts: list[float] | None = None
    missed_intervals: list[dict[str, Any]] | None = None
    not_reached: list[dict[str, Any]] | None = None
    precision: float | None = None
    recall: float | None = None
    look_agreement: float | None = None
    tolerance_s: float = 0.0
    wall_s: float = 0.0
    speed: float | None = None
    raw_decode_s: float | None = None
    speed_vs_raw_decode: float | None = None
    error: str | None = None
    model_latency: str = "none"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return asdict(self)


def frame_time(run: ReplayRun, look: LookRecord) -> float:
    """Clip time of the frame a look judged (the look's own time when it had none)."""
    ref = look.frame or {}
    wall = ref.get("wall_time")
    return run.clip_time(float(wall)) if isinstance(wall, int | float) else run.clip_time(look.time)


def evaluate(
    run: ReplayRun,
    intervals: Sequence[Interval] | None = None,
    tolerance: float = 0.0,
    raw_decode_s: float | None = None,
) -> Figures:
    """Compute the :class:`Figures` of a replay, against ``intervals`` when given.

    ``raw_decode_s``: seconds a plain PyAV decode of the same clip took (see
    :func:`raw_decode_seconds`), for the replay's speed against it.

    Raises:
        ValueError: for a negative ``tolerance``.
    """
    if tolerance < 0:
        raise ValueError(f"The tolerance must not be negative, got {tolerance} s.")
    alerts = [run.clip_time(a.time) for a in run.alerts]
    looks = [(run.clip_time(lk.time), lk) for lk in run.looks]
    wakes = list(run.wake_reasons)
    dropped = Counter(reason for _, reason in run.dropped_wakes)
    budget = run.budget
    state = run.final_state
    ended = run.ended_at
    base: dict[str, Any] = {
        "watch": run.watch.name,
        "mode": run.watch.mode,
        "backend": f"{run.backend} ({run.backend_type})" if run.backend_type else run.backend,
        "detector": run.detector,
        "duration_s": _r(run.duration_s),
        "replayed_s": _r(run.replayed_s),
        "ended_at_s": ended,
        "status": state.status.value if state is not None else "queued",
        "looks": len(looks),
        "looks_per_minute": looks_per_minute(len(looks), run.replayed_s),
        "looks_by_trigger": dict(Counter(lk.trigger for _, lk in looks)),
        "answers": dict(Counter(lk.verdict.kind.value for _, lk in looks)),
        "model_time_s": round(run.model_time_s, 3),
        "detections": len(run.detections),
        "zone_hits": len(run.zone_hits),
        "wakes": len(run.wakes),
        "looks_woken": sum(1 for _, lk in looks if lk.trigger == "wake"),
        "wake_reasons": woken_reasons([(t, lk.trigger) for t, lk in looks], wakes),
        "wakes_dropped": dict(dropped.most_common()),
        "budget": budget,
        "alerts": len(alerts),
        "alert_times": alerts,
        "tolerance_s": tolerance,
        "wall_s": round(run.wall_s, 3),
        "speed": round(run.replayed_s / run.wall_s, 1) if run.wall_s > 0 else None,
        "raw_decode_s": None if raw_decode_s is None else round(raw_decode_s, 3),
        "speed_vs_raw_decode": (
            round(raw_decode_s / run.wall_s, 2) if raw_decode_s and run.wall_s > 0 else None
        ),
        "error": run.error or (state.error_message if state is not None else None),
        "model_latency": run.model_latency,
    }
    if intervals is None:
        return Figures(**base)
    ivs = events(list(intervals))
    ttfa = time_to_first_alert(ivs, alerts, tolerance)
    found = [x for x in ttfa if x is not None]
    precision, recall = precision_recall(ivs, alerts, tolerance, ended)
    answered: list[tuple[float, bool | None]] = [
        (
            frame_time(run, lk),
            lk.verdict.condition_met if lk.verdict.kind.value in ("met", "not_met") else None,
        )
        for _, lk in looks
    ]
    reached_ids = {id(iv) for iv in reached(ivs, ended)}
    return Figures(
        **base,
        intervals=[iv.to_dict() for iv in ivs],
        time_to_first_alert_s=ttfa,
        mean_time_to_first_alert_s=_r(sum(found) / len(found)) if found else None,
        mean_time_to_alert_s=mean_time_to_alert(
            [iv for iv in ivs if id(iv) in reached_ids], alerts, tolerance
        ),
        false_alerts=false_alerts(ivs, alerts, tolerance),
        missed_intervals=[iv.to_dict() for iv in missed_intervals(ivs, alerts, tolerance, ended)],
        not_reached=[iv.to_dict() for iv in ivs if id(iv) not in reached_ids],
        precision=precision if run.watch.mode == "repeat" else None,
        recall=recall if run.watch.mode == "repeat" else None,
        look_agreement=look_agreement(ivs, answered),
    )
