"""Run one watch over a video file on virtual time, and record everything it did.

The watch is the real thing (:func:`operators.watch.run_watch` with its
backend, detector, zones, wake policy and adaptive sampling); only the camera
and the clock are replaced: a :class:`~pipeline.app.replay.clip_reader.ClipReader`
plays the file on a :class:`~reactivex.scheduler.HistoricalScheduler`, and the
looks run on that same scheduler, so each look happens at an exact clip time
and the virtual clock stands still while the backend answers (a blocking,
real call). With a model latency (:func:`parse_model_latency`: the verdict's
own ``latency_s``, or a fixed number of seconds) the watch gets each answer
that many virtual seconds after its look started, as a live watch would: the
next look is due later and wakes meanwhile are dropped. Two replays of the
same clip with the same answers give the same looks at the same times.

Example:
    >>> run = replay_watch(load_config("pipeline.toml"), "people_on_walkway",
    ...                    "walkway.mp4")  # doctest: +SKIP
    >>> [run.clip_time(a.time) for a in run.alerts]  # doctest: +SKIP
    [4.0, 14.0]
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reactivex import Observable
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable
from reactivex.scheduler import HistoricalScheduler

from operators.backends.base import Backend
from operators.token_bucket import default_burst
from operators.wake_policy import Wake
from operators.wakes import WakeLog
from operators.watch import run_watch
from pipeline.app.graph import build_detections, is_auto, resolve_backend
from pipeline.app.replay.clip_reader import ClipReader
from pipeline.app.replay.options import (
    clip_creation_epoch,
    find_watch,
    model_latency_name,
    parse_model_latency,
    parse_speed,
)
from pipeline.app.replay.run import DetectionMark, ReplayRun
from pipeline.app.replay.thumbs import thumbnail_jpeg
from pipeline.app.watch_setup import frame_selector, wake_setup, watch_spec, zone_rules
from pipeline.core.config import CameraConfig, LookoutConfig, WatchConfig
from pipeline.core.detection import Detection
from pipeline.core.events import Alert, LookRecord, WatchEvent, WatchState
from pipeline.core.logs import log_unexpected
from pipeline.core.redact import redact
from pipeline.core.verdict import Verdict

__all__ = [
    "DetectionMark",
    "Progress",
    "ReplayRun",
    "clip_creation_epoch",
    "find_watch",
    "model_latency_name",
    "parse_model_latency",
    "parse_speed",
    "replay_backend",
    "replay_detections",
    "replay_watch",
]

log = logging.getLogger("lookout.replay")

UTC_ZERO = datetime(1970, 1, 1, tzinfo=UTC)

Progress = Callable[[float, ReplayRun], None]
"""Called after each slice of clip time with the clip time reached and the run so far."""


def replay_backend(
    config: LookoutConfig, watch: WatchConfig, *, has_detections: bool
) -> tuple[Backend, str]:
    """Build (not start) the watch's backend as the runner would; return it and a note.

    ``auto`` is resolved the runner's way (:func:`pipeline.app.graph.resolve_backend`);
    the note says what it chose and why.

    Raises:
        ValueError: the watch names a backend that is not configured.
    """
    if watch.backend not in config.backends and not is_auto(config, watch.backend):
        known = ", ".join(config.backends) or "none"
        raise ValueError(
            f"Watch {watch.name!r} names backend {watch.backend!r}, which is not configured; "
            f"backends: {known}."
        )
    return resolve_backend(config, watch.backend, has_detections=has_detections)


def replay_detections(
    camera: CameraConfig, reader: ClipReader, scheduler: HistoricalScheduler
) -> tuple[Observable[Detection] | None, str]:
    """The camera's detector run on the clip, and its name (or why there is none).

    ``motion`` and ``onnx`` detectors run on the clip's frames at their own
    rate on the virtual clock (built as the runner builds them,
    :func:`pipeline.app.graph.build_detections`); ``frigate`` and ``mqtt``
    detections only exist live, so a replay of such a camera runs on the timer
    alone.
    """
    detect = camera.detect
    if detect is None:
        return None, "none"
    stream = build_detections(reader.name, detect, reader.frames, scheduler=scheduler)
    if stream is None:
        return None, f"none ({detect.type} detections exist only live; looks follow the timer)"
    return stream, detect.type


def _wake_log(run: ReplayRun, sched: HistoricalScheduler) -> WakeLog:
    """A wake log that records zone hits, wakes and dropped wakes in ``run`` (clip seconds)."""

    def hit(d: Detection) -> None:
        run.zone_hits.append(run.clip_time(d.time))

    def wake(t: float, w: Wake) -> None:
        run.wakes.append(run.clip_time(t))
        run.wake_reasons.append((run.clip_time(t), w.reason))

    def drop(t: float, reason: str) -> None:
        run.dropped_wakes.append((run.clip_time(t), reason))

    return WakeLog(on_match=hit, on_wake=wake, on_drop=drop)


def record_budget(run: ReplayRun, state: WatchState) -> None:
    """Keep the look budget of ``state`` in ``run.budget``, with every time it ran dry."""
    if state.budget_per_hour is None:
        return
    budget = run.budget or {
        "per_hour": state.budget_per_hour,
        "burst": run.watch.look_burst or default_burst(state.budget_per_hour),
        "ran_out_at": [],
    }
    budget["tokens"] = state.budget_tokens
    budget["deferred"] = state.looks_deferred
    if state.budget_exhausted_at is not None:
        t = run.clip_time(state.budget_exhausted_at)
        if t not in budget["ran_out_at"]:
            budget["ran_out_at"].append(t)
    run.budget = budget


def _marked(run: ReplayRun, source: Observable[Detection]) -> Observable[Detection]:
    """``source`` with every detection recorded in ``run.detections``, shared."""

    def mark(d: Detection) -> None:
        x1, y1, x2, y2 = d.box.as_list()
        run.detections.append(
            DetectionMark(run.clip_time(d.time), d.label, d.score, (x1, y1, x2, y2))
        )

    return source.pipe(ops.do_action(mark), ops.share())


def _recorder(run: ReplayRun, done: Callable[[], None]) -> tuple[
    Callable[[WatchEvent], None], Callable[[Exception], None]
]:  # fmt: skip
    """The watch's observer: looks (small copies of not-met ones' JPEGs), alerts, states."""

    def on_event(event: WatchEvent) -> None:
        if isinstance(event, LookRecord):
            if event.jpeg is not None and not event.verdict.condition_met:
                event = dataclasses.replace(event, jpeg=thumbnail_jpeg(event.jpeg))
            run.looks.append(event)
        elif isinstance(event, Alert):
            run.alerts.append(event)
        elif isinstance(event, WatchState):
            run.final_state = event
            record_budget(run, event)

    def on_error(exc: Exception) -> None:
        log_unexpected(log, "replay: the watch failed", exc)
        run.error = redact(f"{type(exc).__name__}: {exc}")
        done()

    return on_event, on_error


@dataclass
class _Pace:
    """How the virtual clock is driven: slices of clip time, held back to a speed."""

    step_s: float
    factor: float | None
    progress: Progress | None


def _drive(reader: ClipReader, sched: HistoricalScheduler, pace: _Pace, run: ReplayRun,
           done: list[bool]) -> None:  # fmt: skip
    """Advance the virtual clock slice by slice until the clip or the watch ends."""
    wall0 = time.perf_counter()
    k = 0
    while not done[0] and not reader.ended:
        k += 1
        sched.advance_to(reader.at(k * pace.step_s))
        if pace.factor is not None:
            ahead = wall0 + k * pace.step_s / pace.factor - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
        if pace.progress is not None:
            pace.progress(min(k * pace.step_s, reader.end_s or float("inf")), run)
    if reader.ended and not done[0] and reader.end_s:
        # Work due before the end of the last frame (the reader stopped the clock at EOF).
        sched.advance_to(max(sched.now, reader.at(reader.end_s) - timedelta(microseconds=1)))
    run.wall_s = time.perf_counter() - wall0
    if reader.ended and reader.end_s is not None:
        run.duration_s = run.replayed_s = reader.end_s
    else:
        run.replayed_s = max(0.0, reader.clip_time())
        run.duration_s = max(run.duration_s, run.replayed_s)
    if pace.progress is not None:
        pace.progress(run.replayed_s, run)


def _replay(
    run: ReplayRun,
    camera: CameraConfig,
    reader: ClipReader,
    sched: HistoricalScheduler,
    backend: Backend,
    source: Observable[Detection] | None,
    hold: Callable[[Verdict], float] | None,
    pace: _Pace,
) -> CompositeDisposable:
    """Run the watch on the clip until it or the clip ends; return what to dispose."""
    wcfg = run.watch
    subs = CompositeDisposable()
    detections = None
    if source is not None:
        detections = _marked(run, source)
        # The detector runs from the clip's start (every detection is marked),
        # not only once the watch subscribes.
        subs.add(detections.subscribe(lambda _: None))
    policy, fps, keyframes = wake_setup(wcfg, camera)
    events = run_watch(
        watch_spec(wcfg),
        wake_policy=policy,
        pictures=None if fps is None else reader.frames(fps, keyframes),
        frames=reader,
        backend=backend,
        detections=detections,
        zones=zone_rules(camera.zones),
        scheduler=sched,
        look_scheduler=sched,
        job_id=f"replay-{wcfg.name}",
        hold=hold,
        wake_log=_wake_log(run, sched),
        frame_selector=frame_selector(camera),
    )
    done = [False]

    def finish() -> None:
        done[0] = True
        sched.stop()

    on_event, on_error = _recorder(run, finish)
    # The watch starts at the first decoded picture, as a live watch's first
    # look waits for its camera's first frame.
    reader.when_ready(lambda: subs.add(events.subscribe(on_event, on_error, finish)))
    reader.start()
    _drive(reader, sched, pace, run, done)
    return subs


def replay_watch(
    config: LookoutConfig,
    watch: str | WatchConfig,
    clip: str | Path,
    *,
    speed: str | float | None = "max",
    until_s: float | None = None,
    start_epoch: float | None = None,
    backend: Backend | None = None,
    progress: Progress | None = None,
    step_s: float | None = None,
    model_latency: str | float | None = "none",
) -> ReplayRun:
    """Replay one watch over ``clip`` as if the clip were its camera, live.

    Example:
        >>> run = replay_watch(cfg, "porch_package", "porch.mp4")  # doctest: +SKIP
        >>> len(run.looks), [run.clip_time(a.time) for a in run.alerts]  # doctest: +SKIP
        (24, [31.5])

    The watch's camera config gives the zones and the detector (``motion`` and
    ``onnx`` run on the clip); its backend is built from ``[backends]``
    (``auto`` resolved as the runner does) unless ``backend`` is given. The
    replay ends at the end of the clip (or ``until_s``), or earlier when the
    watch ends (``once`` mode after its alert, a time-out, an error).

    Args:
        config: the loaded ``pipeline.toml``.
        watch: the watch's name, or a watch config (a variant not in ``config``).
        clip: the video file.
        speed: ``"max"`` (as fast as the work allows) or a multiple of real
            time (``"1x"``, ``2.0``): the virtual clock is held back to it.
        until_s: replay only the first ``until_s`` seconds.
        start_epoch: epoch seconds of clip time 0 (what "Frame captured at"
            says); default the clip's ``creation_time``, else 0.
        backend: use this backend (started and stopped by the caller).
        progress: called after each ``step_s`` of clip time.
        step_s: clip seconds per slice of the virtual clock (progress granularity);
            default 1 s, 0.1 s when paced to real time.
        model_latency: ``"none"`` (answers arrive at once), ``"measured"``
            (each verdict's ``latency_s``) or seconds: how long each answer is
            held on the virtual clock before the watch acts on it.

    Returns:
        The :class:`ReplayRun`.

    Raises:
        ValueError: unknown watch, camera or backend, an unreadable clip, a bad
            speed or model latency.
    """
    wcfg = find_watch(config, watch) if isinstance(watch, str) else watch
    factor = parse_speed(speed)
    hold = parse_model_latency(model_latency)
    pace = _Pace(step_s if step_s is not None else (1.0 if factor is None else 0.1), factor,
                 progress)  # fmt: skip
    if pace.step_s <= 0:
        raise ValueError(f"step_s must be positive, got {step_s}.")
    camera = config.cameras.get(wcfg.camera)
    if camera is None:
        raise ValueError(
            f"Watch {wcfg.name!r} names camera {wcfg.camera!r}, which is not configured."
        )
    if start_epoch is None:
        start_epoch = clip_creation_epoch(clip) or 0.0

    sched = HistoricalScheduler(UTC_ZERO + timedelta(seconds=start_epoch))
    reader = ClipReader(
        clip,
        scheduler=sched,
        camera=wcfg.camera,
        until_s=until_s,
        on_end=sched.stop,
        keep_current_s=camera.keep_current_s,
        keep_current_share=camera.keep_current_share,
    )
    run = ReplayRun(
        watch=wcfg,
        clip=Path(clip),
        start_epoch=reader.start_epoch,
        duration_s=reader.duration_s or 0.0,
        width=reader.width,
        height=reader.height,
        fps=reader.fps,
        model_latency=model_latency_name(model_latency),
    )
    subs = CompositeDisposable()
    own_backend = backend is None
    try:
        source, run.detector = replay_detections(camera, reader, sched)
        if backend is None:
            backend, run.backend_note = replay_backend(
                config, wcfg, has_detections=source is not None
            )
            backend.start()
        run.backend, run.backend_type = backend.name, backend.type
        subs.add(_replay(run, camera, reader, sched, backend, source, hold, pace))
    finally:
        subs.dispose()
        run.packets, run.decoded = reader.packets, reader.decoded
        reader.close()
        if own_backend and backend is not None:
            _stop(backend)
    return run


def _stop(backend: Backend) -> None:
    try:
        backend.stop()
    except Exception as exc:
        log_unexpected(log, f"backend {backend.name}: stop failed", exc)
