"""One watch, end to end: wakes, adaptive looks, verdicts, alerts and state.

:func:`run_watch` composes the other operators for one ``[[watches]]`` entry::

    detections -> filter_labels -> in_zones -> cooldown -> wakes
    wakes -> adaptive_sampler( frame -> encode_jpeg -> backend.judge ) -> looks
    looks -> history, LookRecord, WatchState, Alert -> out

It is cold: each subscription is one run of the watch (one job id).
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable
from reactivex.scheduler import TimeoutScheduler

from operators.backends.base import Backend, LookRequest
from operators.budget import LookBudget
from operators.cooldown import cooldown
from operators.encode import encode_jpeg
from operators.history import History
from operators.labels import filter_labels
from operators.sampler import adaptive_sampler, now_s
from operators.serial import SerialEmitter
from operators.zones import in_zones
from pipeline.core.config import WatchConfig, ZoneConfig
from pipeline.core.detection import Detection
from pipeline.core.events import Alert, LookRecord, WatchEvent, WatchState, WatchStatus
from pipeline.core.frame import Frame, FrameProvider
from pipeline.core.redact import redact
from pipeline.core.verdict import AnswerKind, Verdict, clamp_next_run

FRAME_WAIT_S = 2.0
"""How long a look waits for a frame before it counts as "no frame"."""
FIRST_FRAME_WAIT_S = 10.0
"""How long the first look waits: an RTSP camera may still be connecting."""
RECENT_DETECTIONS_S = 10.0
"""Matching detections this recent are passed to the backend with a look."""
RECENT_DETECTIONS_MAX = 20


@dataclass(frozen=True, slots=True)
class Look:
    """What one blocking look produced (internal to the watch, public for tests)."""

    trigger: str
    time: float
    verdict: Verdict
    frame: Frame | None
    jpeg: bytes | None


def frame_clock(epoch_s: float) -> str:
    """Return ``HH:MM:SS`` in local time, as in the user turn "Frame captured at HH:MM:SS."."""
    return datetime.fromtimestamp(epoch_s).strftime("%H:%M:%S")


def run_watch(
    config: WatchConfig,
    *,
    frames: FrameProvider,
    backend: Backend,
    detections: Observable[Detection] | None = None,
    zones: Mapping[str, ZoneConfig] | None = None,
    cancel: Observable[Any] | None = None,
    scheduler: abc.SchedulerBase | None = None,
    look_scheduler: abc.SchedulerBase | None = None,
    job_id: str | None = None,
    first_frame_timeout_s: float = FIRST_FRAME_WAIT_S,
    hold: Callable[[Verdict], float] | None = None,
) -> Observable[WatchEvent]:
    """Run one watch; emit its state changes, its looks and its alerts.

    Example:
        >>> events = run_watch(cfg, frames=camera, backend=vlm, detections=dets,
        ...                    zones=camera_cfg.zones)  # doctest: +SKIP
        >>> events.subscribe(print)  # doctest: +SKIP

    What comes out, in order: ``WatchState`` queued, running; then per look a
    ``LookRecord`` (``trigger`` ``start`` for the first look, then ``timer`` or
    ``wake``), an ``Alert`` when the condition is met (and agreed), and a
    ``WatchState``; finally a ``WatchState`` success (``mode = "once"``),
    failed ("timed out after N minutes") or cancelled, and completion.
    ``repeat`` mode never succeeds: after an alert it stays quiet for
    ``quiet_period_s`` (wakes ignored) and then watches again, re-armed: the
    conversation history is cleared and the backend's ``forget(watch)`` (where
    it has one, e.g. the detections backend's streaks) is called.

    Args:
        config: the ``[[watches]]`` entry.
        frames: where the current frame comes from (``latest()`` is called on
            ``look_scheduler``, never on the time scheduler's thread).
        backend: judges each look (blocking; never raises for model faults).
        detections: this camera's detections; ``None`` means timer-only.
        zones: the camera's zones by name.
        cancel: the watch ends as cancelled when this emits.
        scheduler: the time source (virtual in tests and replays).
        look_scheduler: where frame grabs and backend calls run (default: a
            shared thread pool).
        job_id: id of this run; default a fresh uuid.
        first_frame_timeout_s: how long the first look waits for a frame (a
            camera that is still connecting); later looks wait
            ``FRAME_WAIT_S`` (2 s) and retry in 10 s when there is none.
        hold: seconds of ``scheduler`` time each verdict is held back before
            the watch acts on it (a replay's model latency; see
            :func:`operators.sampler.adaptive_sampler`); ``None``: at once.

    Returns:
        A cold observable of ``WatchState | LookRecord | Alert``. It never
        errors for look faults: each becomes a failed verdict with its retry
        delay; an unexpected internal error ends the watch as failed.

    Raises:
        ValueError: when the watch names zones missing from ``zones``, or for a
            negative ``first_frame_timeout_s``.
    """
    if first_frame_timeout_s < 0:
        raise ValueError(
            f"first_frame_timeout_s must not be negative, got {first_frame_timeout_s}."
        )
    zone_map: Mapping[str, ZoneConfig] = zones or {}
    missing = [z for z in config.zones if z not in zone_map]
    if missing:
        raise ValueError(
            f"Watch {config.name!r} names unknown zone(s) {', '.join(missing)} "
            f"on camera {config.camera!r}."
        )

    def subscribe(
        observer: abc.ObserverBase[WatchEvent], default: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        sched = scheduler or default or TimeoutScheduler.singleton()
        jid = job_id or uuid.uuid4().hex
        lock = threading.RLock()
        # Events are computed under ``lock`` and delivered after it is released:
        # the observer (the runner, its sinks) may block on its own locks.
        out: SerialEmitter[WatchEvent] = SerialEmitter(observer)
        history = History(config.history_turns, config.history_images)
        budget = LookBudget(config.max_looks_per_hour)
        recent: deque[Detection] = deque(maxlen=RECENT_DETECTIONS_MAX)
        agree: deque[bool] = deque(maxlen=config.agree_window)
        subs = CompositeDisposable()
        looks_sub = SerialDisposable()
        subs.add(looks_sub)
        ended = [False]
        quiet_until = [float("-inf")]
        first_look = [True]
        state = [
            WatchState(
                id=jid,
                name=config.name,
                camera=config.camera,
                condition=config.condition,
                labels=tuple(config.labels),
                zones=tuple(config.zones),
                status=WatchStatus.QUEUED,
            )
        ]

        def emit_state(**changes: Any) -> None:
            state[0] = state[0].evolve(**changes)
            out.push_next(state[0])

        def end(status: WatchStatus, error: str | None = None) -> bool:
            """Queue the final state (call with ``lock`` held); False if already ended."""
            if ended[0]:
                return False
            ended[0] = True
            emit_state(status=status, ended_at=now_s(sched), error_message=error)
            out.push_completed()
            return True

        def finish(status: WatchStatus, error: str | None = None) -> None:
            with lock:
                done = end(status, error)
            if done:
                subs.dispose()
            out.drain()

        def remember(d: Detection) -> None:
            with lock:
                recent.append(d)

        def matching_detections(t: float) -> tuple[Detection, ...]:
            with lock:
                return tuple(d for d in recent if t - d.time <= RECENT_DETECTIONS_S)

        def look(trigger: str) -> Look:
            t = now_s(sched)
            frame: Frame | None = None
            jpeg: bytes | None = None
            try:
                wait = first_frame_timeout_s if first_look[0] else FRAME_WAIT_S
                first_look[0] = False
                frame = frames.latest(wait)
                if frame is None:
                    verdict = Verdict.failed(
                        AnswerKind.NO_FRAME, f"no frame from camera {config.camera!r}"
                    )
                else:
                    jpeg = encode_jpeg(frame, config.image_max_height, config.jpeg_quality)
                    user_text = f"Frame captured at {frame_clock(frame.wall_time)}."
                    request = LookRequest(
                        watch=config.name,
                        job_id=jid,
                        camera=config.camera,
                        condition=config.condition,
                        labels=tuple(config.labels),
                        zones=tuple(config.zones),
                        frame=frame,
                        jpeg=jpeg,
                        user_text=user_text,
                        history=history.turns(),
                        detections=matching_detections(t),
                        time=t,
                    )
                    verdict = backend.judge(request)
                    history.record(user_text, jpeg, verdict)
            except Exception as exc:
                verdict = Verdict.failed(AnswerKind.ERROR, redact(f"{type(exc).__name__}: {exc}"))
            return Look(trigger, t, verdict, frame, jpeg)

        def next_delay(lk: Look) -> float:
            now = now_s(sched)
            if quiet_until[0] > now:
                return quiet_until[0] - now
            return clamp_next_run(lk.verdict.next_run_in)

        def on_look(lk: Look) -> None:
            with lock:
                done = judge_look(lk)
            if done:
                subs.dispose()
            out.drain()

        def judge_look(lk: Look) -> bool:
            """Queue what a look means (call with ``lock`` held); True when the watch ended."""
            if ended[0]:
                return False
            v = lk.verdict
            now = now_s(sched)
            iterations = state[0].iterations + 1
            out.push_next(
                LookRecord(
                    watch=config.name,
                    job_id=jid,
                    time=lk.time,
                    trigger=lk.trigger,
                    verdict=v,
                    frame=lk.frame.ref if lk.frame is not None else None,
                    jpeg=lk.jpeg,
                )
            )
            answered = v.kind in (AnswerKind.MET, AnswerKind.NOT_MET)
            if answered:
                agree.append(v.condition_met)
            changes: dict[str, Any] = {
                "iterations": iterations,
                "last_answer": v.kind.value,
                "looks_last_hour": budget.used(now),
                "condition_met": v.condition_met,
            }
            if answered:
                changes["last_reasoning"] = v.reasoning
            alert_now = v.condition_met and sum(agree) >= config.agree_looks
            if alert_now:
                message = v.notification_message or v.reasoning or config.condition
                out.push_next(
                    Alert(
                        event_id=uuid.uuid4().hex,
                        watch=config.name,
                        job_id=jid,
                        camera=config.camera,
                        condition=config.condition,
                        message=message,
                        reasoning=v.reasoning,
                        time=lk.time,
                        look_count=iterations,
                        frame=lk.frame.ref if lk.frame is not None else None,
                        jpeg=lk.jpeg,
                    )
                )
                changes["alerts"] = state[0].alerts + 1
                changes["notification_message"] = message
                agree.clear()
                if config.mode == "once":
                    emit_state(**changes, next_look_in=None)
                    return end(WatchStatus.SUCCESS)
                quiet_until[0] = now + config.quiet_period_s
                # Re-arm: the next alert must be earned afresh, not carried by this one.
                history.clear()
                forget = getattr(backend, "forget", None)
                if callable(forget):
                    forget(config.name)
            changes["next_look_in"] = next_delay(lk)
            emit_state(**changes)
            return False

        def on_error(exc: Exception) -> None:
            finish(WatchStatus.FAILED, redact(f"internal error: {type(exc).__name__}: {exc}"))

        def awake(_: Any) -> bool:
            return now_s(sched) >= quiet_until[0]

        with lock:
            emit_state()
            emit_state(status=WatchStatus.RUNNING, started_at=now_s(sched))
        out.drain()

        if detections is not None:
            wakes: Observable[Any] = detections.pipe(
                filter_labels(config.labels),
                in_zones(zone_map, config.zones),
                ops.do_action(remember),
                cooldown(config.cooldown_s, immediate=bool(config.zones), scheduler=sched),
                ops.filter(awake),
            )
        else:
            wakes = reactivex.never()

        if config.max_duration_minutes > 0:
            minutes = config.max_duration_minutes

            def time_out(_s: abc.SchedulerBase, _st: Any = None) -> None:
                finish(WatchStatus.FAILED, f"timed out after {minutes:g} minutes")

            subs.add(sched.schedule_relative(minutes * 60.0, time_out))

        if cancel is not None:
            subs.add(
                cancel.subscribe(
                    lambda _: finish(WatchStatus.CANCELLED),
                    on_error,
                    scheduler=default,
                )
            )
        if not ended[0]:
            looks_sub.disposable = wakes.pipe(
                adaptive_sampler(
                    look,
                    next_delay,
                    budget=budget,
                    scheduler=sched,
                    look_scheduler=look_scheduler,
                    hold=None if hold is None else (lambda lk: hold(lk.verdict)),
                )
            ).subscribe(on_look, on_error, scheduler=default)
        return CompositeDisposable(subs, Disposable(lambda: ended.__setitem__(0, True)))

    return reactivex.create(subscribe)
