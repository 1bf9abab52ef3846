"""Run one watch over a video file on virtual time, and record everything it did.

The watch is the real thing (:func:`operators.watch.run_watch` with its
backend, detector, zones, cooldown and adaptive sampling); only the camera and
the clock are replaced: a :class:`~pipeline.app.replay.clip_reader.ClipReader`
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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
from reactivex import Observable
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable
from reactivex.scheduler import HistoricalScheduler

from operators.backends.base import Backend
from operators.cooldown import cooldown
from operators.labels import filter_labels
from operators.watch import run_watch
from operators.zones import in_zones
from pipeline.app.graph import build_detections, is_auto, resolve_backend
from pipeline.app.replay.clip_reader import ClipReader
from pipeline.core.config import CameraConfig, LookoutConfig, WatchConfig
from pipeline.core.detection import Detection
from pipeline.core.events import Alert, LookRecord, WatchEvent, WatchState
from pipeline.core.redact import redact
from pipeline.core.verdict import Verdict

log = logging.getLogger("lookout.replay")

UTC_ZERO = datetime(1970, 1, 1, tzinfo=UTC)

Progress = Callable[[float, "ReplayRun"], None]
"""Called after each slice of clip time with the clip time reached and the run so far."""


@dataclass(frozen=True, slots=True)
class DetectionMark:
    """One detection seen during a replay, in clip seconds.

    Attributes:
        time: clip time of the detection.
        label: its label.
        score: its score.
        box: ``[x1, y1, x2, y2]`` in pixels.
    """

    time: float
    label: str
    score: float
    box: tuple[float, float, float, float]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {"time": self.time, "label": self.label, "score": self.score, "box": self.box}


@dataclass
class ReplayRun:
    """Everything one replay of one watch recorded.

    Times of looks and alerts stay as the watch emitted them (epoch seconds of
    the virtual clock); :meth:`clip_time` turns them into clip seconds. The
    detection marks, zone hits and wakes are already in clip seconds.

    Attributes:
        watch: the watch config that ran.
        clip: the video file.
        backend: name of the backend used.
        backend_type: its type (``openai``, ``detections``...).
        backend_note: why ``auto`` chose it, if it did.
        detector: what fed detections (``motion``, ``onnx``, ``none``, or why none).
        start_epoch: epoch seconds of clip time 0.
        duration_s: length of the clip (or of its first ``until_s`` seconds).
        replayed_s: clip seconds replayed (less than ``duration_s`` when the watch
            ended early).
        width, height, fps: the clip's picture size and frame rate.
        looks: every look (JPEGs kept only for looks that said met).
        alerts: every alert, with its judged JPEG.
        final_state: the watch's last state record.
        detections: every detection of the camera's detector.
        zone_hits: clip times of detections that matched the watch's labels and zones.
        wakes: clip times of wakes after the cooldown (before the quiet period).
        error: why the watch stopped with an error, if it did.
        wall_s: real seconds the replay took.
        packets: video packets read.
        decoded: frames decoded.
        model_latency: how answers were put on the virtual clock: ``none``,
            ``measured`` or a number of seconds (:func:`parse_model_latency`).
    """

    watch: WatchConfig
    clip: Path
    backend: str = ""
    backend_type: str = ""
    backend_note: str = ""
    detector: str = "none"
    start_epoch: float = 0.0
    duration_s: float = 0.0
    replayed_s: float = 0.0
    width: int = 0
    height: int = 0
    fps: float | None = None
    looks: list[LookRecord] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    final_state: WatchState | None = None
    detections: list[DetectionMark] = field(default_factory=list)
    zone_hits: list[float] = field(default_factory=list)
    wakes: list[float] = field(default_factory=list)
    error: str | None = None
    wall_s: float = 0.0
    packets: int = 0
    decoded: int = 0
    model_latency: str = "none"

    def clip_time(self, epoch_s: float) -> float:
        """Clip seconds of an epoch time of the virtual clock (to the microsecond)."""
        return round(epoch_s - self.start_epoch, 6)

    @property
    def ended_at(self) -> float | None:
        """Clip time when the watch ended (success, failure), ``None`` if it ran to the end."""
        st = self.final_state
        if st is None or not st.status.ended or st.ended_at is None:
            return None
        return self.clip_time(st.ended_at)

    @property
    def model_time_s(self) -> float:
        """Seconds the backend spent answering (sum of the verdicts' latencies)."""
        return sum(float(lk.verdict.latency_s) for lk in self.looks)


def clip_creation_epoch(path: str | Path) -> float | None:
    """Return the clip's ``creation_time`` metadata as epoch seconds, if it has one."""
    try:
        with av.open(str(path)) as container:
            raw = container.metadata.get("creation_time")
    except (av.error.FFmpegError, OSError):
        return None
    if not raw:
        return None
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def parse_speed(speed: str | float | None) -> float | None:
    """Return the replay speed as a multiple of real time, ``None`` for as fast as possible.

    Example:
        >>> parse_speed("max"), parse_speed("1x"), parse_speed("2.5x"), parse_speed(4)
        (None, 1.0, 2.5, 4.0)

    Raises:
        ValueError: for anything else, or a speed that is not positive.
    """
    if speed is None or speed == "max":
        return None
    if isinstance(speed, int | float):
        value = float(speed)
    else:
        text = speed.strip().lower().removesuffix("x")
        try:
            value = float(text)
        except ValueError:
            raise ValueError(
                f"Speed must be 'max' or a multiple of real time like '1x', got {speed!r}."
            ) from None
    if value <= 0:
        raise ValueError(f"Speed must be positive, got {speed!r}.")
    return value


def parse_model_latency(latency: str | float | None) -> Callable[[Verdict], float] | None:
    """Return how long a verdict is held on the virtual clock, ``None`` for not at all.

    ``"none"`` (or ``None``): answers arrive at once (the clock stands still
    while the backend answers); ``"measured"``: each verdict's own
    ``latency_s``; a number of seconds (``3``, ``"0.5"``): that, for every look.

    Example:
        >>> from pipeline.core.verdict import AnswerKind
        >>> v = Verdict.failed(AnswerKind.ERROR, "x").with_latency(1.5)
        >>> parse_model_latency("none"), parse_model_latency("measured")(v)
        (None, 1.5)
        >>> parse_model_latency("3")(v)
        3.0

    Raises:
        ValueError: for anything else, or a negative number of seconds.
    """
    if latency is None or latency == "none":
        return None
    if latency == "measured":
        return lambda v: max(0.0, float(v.latency_s))
    try:
        seconds = float(latency)
    except ValueError:
        raise ValueError(
            f"Model latency must be 'measured', 'none' or seconds like '3', got {latency!r}."
        ) from None
    if not 0 <= seconds < float("inf"):
        raise ValueError(f"Model latency must be a finite, non-negative number, got {latency!r}.")
    return lambda _v: seconds


def model_latency_name(latency: str | float | None) -> str:
    """The model latency mode as the report records it: ``none``, ``measured`` or seconds."""
    if latency is None or latency in ("none", "measured"):
        return str(latency or "none")
    return f"{float(latency):g}"


def find_watch(config: LookoutConfig, name: str) -> WatchConfig:
    """Return the ``[[watches]]`` entry called ``name``.

    Raises:
        ValueError: no such watch (the message lists the known ones).
    """
    for w in config.watches:
        if w.name == name:
            return w
    known = ", ".join(w.name for w in config.watches) or "none"
    raise ValueError(f"No watch named {name!r} in the config; watches: {known}.")


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
    if step_s is None:
        step_s = 1.0 if factor is None else 0.1
    if step_s <= 0:
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
        clip, scheduler=sched, camera=wcfg.camera, until_s=until_s, on_end=sched.stop
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

        def clip_s(t: float) -> float:
            return run.clip_time(t)

        def mark(d: Detection) -> None:
            x1, y1, x2, y2 = d.box.as_list()
            run.detections.append(DetectionMark(clip_s(d.time), d.label, d.score, (x1, y1, x2, y2)))

        def hit(d: Detection) -> None:
            run.zone_hits.append(clip_s(d.time))

        def wake(_: Detection) -> None:
            run.wakes.append(clip_s(sched.now.timestamp()))

        detections: Observable[Detection] | None = None
        if source is not None:
            detections = source.pipe(ops.do_action(mark), ops.share())
            # The watch's own wake chain, mirrored to draw zone hits and wakes.
            subs.add(
                detections.pipe(
                    filter_labels(wcfg.labels),
                    in_zones(camera.zones, wcfg.zones),
                    ops.do_action(hit),
                    cooldown(wcfg.cooldown_s, immediate=bool(wcfg.zones), scheduler=sched),
                ).subscribe(wake)
            )

        events = run_watch(
            wcfg,
            frames=reader,
            backend=backend,
            detections=detections,
            zones=camera.zones,
            scheduler=sched,
            look_scheduler=sched,
            job_id=f"replay-{wcfg.name}",
            hold=hold,
        )
        done = [False]

        def on_event(event: WatchEvent) -> None:
            if isinstance(event, LookRecord):
                if event.jpeg is not None and not event.verdict.condition_met:
                    event = dataclasses.replace(event, jpeg=None)
                run.looks.append(event)
            elif isinstance(event, Alert):
                run.alerts.append(event)
            elif isinstance(event, WatchState):
                run.final_state = event

        def on_error(exc: Exception) -> None:
            run.error = redact(f"{type(exc).__name__}: {exc}")
            finish()

        def finish() -> None:
            done[0] = True
            sched.stop()

        # The watch starts at the first decoded picture, as a live watch's first
        # look waits for its camera's first frame.
        reader.when_ready(lambda: subs.add(events.subscribe(on_event, on_error, finish)))
        reader.start()
        wall0 = time.perf_counter()
        k = 0
        while not done[0] and not reader.ended:
            k += 1
            sched.advance_to(reader.at(k * step_s))
            if factor is not None:
                ahead = wall0 + k * step_s / factor - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)
            if progress is not None:
                progress(min(k * step_s, reader.end_s or float("inf")), run)
        if reader.ended and not done[0] and reader.end_s:
            # Work due before the end of the last frame (the reader stopped the clock at EOF).
            sched.advance_to(max(sched.now, reader.at(reader.end_s) - timedelta(microseconds=1)))
        run.wall_s = time.perf_counter() - wall0
        if reader.ended and reader.end_s is not None:
            run.duration_s = run.replayed_s = reader.end_s
        else:
            run.replayed_s = max(0.0, reader.clip_time())
            run.duration_s = max(run.duration_s, run.replayed_s)
        if progress is not None:
            progress(run.replayed_s, run)
    finally:
        subs.dispose()
        run.packets, run.decoded = reader.packets, reader.decoded
        reader.close()
        if own_backend and backend is not None:
            try:
                backend.stop()
            except Exception as exc:
                log.error("backend %s: stop failed: %s", backend.name, redact(str(exc)))
    return run
