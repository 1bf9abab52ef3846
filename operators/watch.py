"""One watch, end to end: a short composition of its four stages.

::

    wakes      detections -> filter_labels -> in_zones -> wake policy -> wakes
    looks      wakes -> adaptive_sampler(Looker: frame -> JPEG -> backend) -> looks
    verdicts   look -> LookRecord, state changes, Alert            (operators.verdicts)
    lifecycle  queued, running, success/failed/cancelled, quiet    (operators.lifecycle)

Each stage lives in its own module with its own tests:
:mod:`operators.wakes` (with the seam :mod:`operators.wake_policy`),
:mod:`operators.sampler` and :mod:`operators.look` (with the seam
:mod:`operators.frame_selector`), :mod:`operators.verdicts` and
:mod:`operators.lifecycle`. The answer of each look starts the next wait of
the wake stage. :func:`run_watch` takes plain values (a
:class:`~operators.watch_spec.WatchSpec`, zone rules); the config layer
adapts ``[[watches]]`` to them (:mod:`pipeline.app.watch_setup`).

It is cold: each subscription is one run of the watch (one job id).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.scheduler import TimeoutScheduler
from reactivex.subject import Subject

from operators.backends.base import Backend
from operators.cooldown import baseline_policy
from operators.frame_selector import FrameSelector
from operators.history import History
from operators.lifecycle import WatchRun
from operators.look import FIRST_FRAME_WAIT_S, Look, Looker, RecentMatches
from operators.resume import Resume
from operators.sampler import adaptive_sampler
from operators.token_bucket import TokenBucket
from operators.wake_policy import Answered, Wake, WakePolicy
from operators.wakes import WakeLog, watch_wakes
from operators.watch_spec import WatchSpec
from operators.zone_geometry import ZoneInput
from pipeline.core.detection import Detection
from pipeline.core.events import WatchEvent, WatchStatus
from pipeline.core.frame import Frame, FrameProvider
from pipeline.core.verdict import Verdict

__all__ = ["Look", "WatchSpec", "run_watch"]


def _keeps_current(frames: FrameProvider) -> Callable[[Wake], None]:
    """On each wake the policy accepted: ``frames.keep_current()``, where the camera has it."""
    keep = getattr(frames, "keep_current", None)
    if not callable(keep):
        return lambda _wake: None
    return lambda _wake: keep()


def _forget(backend: Backend, name: str) -> None:
    forget = getattr(backend, "forget", None)
    if callable(forget):
        forget(name)


def run_watch(
    spec: WatchSpec,
    *,
    frames: FrameProvider,
    backend: Backend,
    detections: Observable[Detection] | None = None,
    zones: Mapping[str, ZoneInput] | None = None,
    cancel: Observable[Any] | None = None,
    scheduler: abc.SchedulerBase | None = None,
    look_scheduler: abc.SchedulerBase | None = None,
    job_id: str | None = None,
    first_frame_timeout_s: float = FIRST_FRAME_WAIT_S,
    hold: Callable[[Verdict], float] | None = None,
    wake_policy: WakePolicy | None = None,
    frame_selector: FrameSelector | None = None,
    wake_log: WakeLog | None = None,
    pictures: Observable[Frame] | None = None,
    resume: Resume | None = None,
    thumbnail_height: int | None = None,
) -> Observable[WatchEvent]:
    """Run one watch; emit its state changes, its looks and its alerts.

    Example:
        >>> spec = WatchSpec(name="porch", camera="front", condition="a package",
        ...                  zones=("porch",))
        >>> events = run_watch(spec, frames=camera, backend=vlm, detections=dets,
        ...                    zones={"porch": porch_points})  # doctest: +SKIP
        >>> events.subscribe(print)  # doctest: +SKIP

    What comes out, in order: ``WatchState`` queued, running; then per look a
    ``LookRecord`` (``trigger`` ``start`` for the first look, then ``timer`` or
    ``wake``), an ``Alert`` when the condition is met (and agreed), and a
    ``WatchState``; finally a ``WatchState`` success (``mode = "once"``),
    failed ("timed out after N minutes") or cancelled, and completion.
    ``repeat`` mode never succeeds: after an alert it stays quiet for
    ``quiet_period_s`` (wakes dropped) and then watches again, re-armed: the
    conversation history is cleared and the backend's ``forget(watch)`` (where
    it has one, e.g. the detections backend's streaks) is called.

    Args:
        spec: the watch.
        frames: where the current frame comes from (read on ``look_scheduler``,
            never on the time scheduler's thread). Where it has
            ``keep_current()`` (a :class:`~pipeline.core.frame.FrameSource`),
            every wake the policy accepted calls it, so the camera's decoder
            follows the stream for a few seconds and follow-up looks are cheap.
        backend: judges each look (blocking; never raises for model faults).
        detections: this camera's detections; ``None`` (and no ``pictures``)
            means timer-only.
        zones: the camera's zones by name (:class:`~operators.zones.ZoneRule`
            or point lists).
        cancel: the watch ends as cancelled when this emits.
        scheduler: the time source (virtual in tests and replays).
        look_scheduler: where frame grabs and backend calls run (default: a
            shared thread pool).
        job_id: id of this run; default a fresh uuid.
        first_frame_timeout_s: how long a look waits for a frame while the
            camera has given none yet (a camera still connecting); later
            looks wait ``FRAME_WAIT_S`` (2 s). A look without a frame is
            retried 10 s after it began.
        hold: seconds of ``scheduler`` time each verdict is held back before
            the watch acts on it (a replay's model latency; see
            :func:`operators.sampler.adaptive_sampler`); ``None``: at once.
        wake_policy: turns matching detections into wakes (default: the
            baseline, :func:`operators.cooldown.baseline_policy`).
        frame_selector: which frame each look takes (default: the freshest).
        wake_log: counts (and tells) matches, wakes and dropped wakes.
        pictures: the camera's pictures, for a wake policy that judges them
            (:class:`~operators.wake_policy.PictureWakePolicy`); ``None``: none.
        resume: take over an earlier run of this watch (its job id, counters,
            quiet period and look budget; :mod:`operators.resume`); the
            conversation starts afresh.
        thumbnail_height: each look also makes a thumbnail of its frame this
            many pixels high (``LookRecord.thumbnail``, what the activity store
            keeps); ``None``: none.

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
    zone_map: Mapping[str, ZoneInput] = zones or {}
    missing = [z for z in spec.zones if z not in zone_map]
    if missing:
        raise ValueError(
            f"Watch {spec.name!r} names unknown zone(s) {', '.join(missing)} "
            f"on camera {spec.camera!r}."
        )
    policy = wake_policy
    if policy is None:
        policy = baseline_policy(spec.cooldown_s, zones=bool(spec.zones))

    def subscribe(
        observer: abc.ObserverBase[WatchEvent], default: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        sched = scheduler or default or TimeoutScheduler.singleton()
        jid = resume.job_id if resume is not None else (job_id or uuid.uuid4().hex)
        subs = CompositeDisposable()
        history = History(spec.history_turns, spec.history_images)
        recent = RecentMatches()

        def rearm() -> None:
            history.clear()
            _forget(backend, spec.name)

        budget = TokenBucket(spec.max_looks_per_hour, spec.look_burst)
        if resume is not None and resume.at is not None:
            budget.restore(resume.budget_tokens, resume.at, exhausted_at=resume.budget_exhausted_at,
                           deferred=resume.looks_deferred)  # fmt: skip
        run = WatchRun(spec, jid, sched, observer, budget=budget,
                       on_rearm=rearm, on_end=subs.dispose,
                       on_drop=wake_log.drop if wake_log else None)  # fmt: skip
        looker = Looker(spec, jid, frames=frames, backend=backend, scheduler=sched,
                        history=history, recent=recent, selector=frame_selector,
                        first_frame_timeout_s=first_frame_timeout_s,
                        thumbnail_height=thumbnail_height)  # fmt: skip
        if resume is not None:
            run.resume(resume)
        answers: Subject[Answered] = Subject()
        wakes: Observable[Wake] = reactivex.never()
        if detections is not None or pictures is not None:
            wakes = watch_wakes(detections, policy=policy, labels=spec.labels, zones=zone_map,
                                zone_names=spec.zones, waits=answers, pictures=pictures,
                                frames=frames, scheduler=sched, log=wake_log,
                                remember=recent.add)  # fmt: skip

        def on_look(look: Look) -> None:
            run.on_look(look)
            answers.on_next(Answered(look.frame, run.next_delay(look)))

        run.begin()
        subs.add(run.time_limit())
        if cancel is not None:
            subs.add(cancel.subscribe(lambda _: run.finish(WatchStatus.CANCELLED), run.fail,
                                      scheduler=default))  # fmt: skip
        if not run.ended:
            sampler = adaptive_sampler(
                looker,
                run.next_delay,
                budget=run.budget,
                first_delay=run.quiet.remaining(),  # a resumed run stays quiet
                scheduler=sched,
                look_scheduler=look_scheduler,
                hold=None if hold is None else (lambda lk: hold(lk.verdict)),
                on_drop=wake_log.drop if wake_log else None,
            )
            looks = wakes.pipe(
                ops.filter(run.awake), ops.do_action(_keeps_current(frames)), sampler
            )
            subs.add(looks.subscribe(on_look, run.fail, scheduler=default))
        return CompositeDisposable(subs, Disposable(run.abandon))

    return reactivex.create(subscribe)
