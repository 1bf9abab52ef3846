"""``[cameras.NAME.captions]``: a backend describes a camera's picture, paced and budgeted.

A small model can caption a camera continuously: every ``every_s`` seconds
and/or when the camera's detector sees something (``on_wake``), never more
often than ``min_gap_s``, never two at once, and within ``max_per_hour`` (a
refilling budget, like a watch's looks). Each caption is a
:class:`~pipeline.core.events.Caption` handed to ``deliver`` (the sink hub: the
activity store keeps it with a thumbnail, the MQTT sink publishes it retained
on ``<prefix>/cameras/<camera>/caption``). A backend that fails gives a caption
with its ``error`` (kept, so the timeline shows why there is none).

Example:
    >>> runner = CameraCaptions("porch", cfg, cam, vlm, hub.send_caption)  # doctest: +SKIP
    >>> runner.start(); ...; runner.stop()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable
from reactivex.scheduler import TimeoutScheduler

from operators.backends.base import Backend, BackendError
from operators.encode import encode_jpeg
from operators.token_bucket import TokenBucket
from pipeline.app.graph import Graph
from pipeline.core.config import CaptionsConfig, LookoutConfig
from pipeline.core.detection import Detection
from pipeline.core.events import Caption
from pipeline.core.frame import FrameSource
from pipeline.core.logs import log_unexpected
from pipeline.core.redact import redact

log = logging.getLogger("lookout.captions")

FRAME_WAIT_S = 5.0
"""How long a caption waits for a picture."""


class CameraCaptions:
    """Caption one camera with one backend.

    Args:
        camera_name: the camera's name.
        config: its ``captions`` table.
        camera: the camera (held open while captions run).
        backend: the backend whose ``describe`` captions.
        deliver: where captions go.
        detections: the camera's detections (for ``on_wake``).
        scheduler: the time source (virtual in tests).
        executor: where describing runs (never on the timer's thread).
        clock: epoch seconds of a caption.
    """

    def __init__(
        self,
        camera_name: str,
        config: CaptionsConfig,
        camera: FrameSource,
        backend: Backend,
        deliver: Callable[[Caption], None],
        detections: Observable[Detection] | None = None,
        *,
        scheduler: abc.SchedulerBase | None = None,
        executor: ThreadPoolExecutor | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = camera_name
        self.config = config
        self.camera = camera
        self.backend = backend
        self.deliver = deliver
        self.detections = detections
        self.scheduler = scheduler or TimeoutScheduler.singleton()
        self._own_executor = executor is None
        self.executor = executor or ThreadPoolExecutor(1, thread_name_prefix="captions")
        self.clock = clock
        self.budget = TokenBucket(config.max_per_hour)
        self.made = 0
        self.skipped = 0
        self._busy = threading.Lock()
        self._subs = CompositeDisposable()

    def triggers(self) -> Observable[str]:
        """``timer`` every ``every_s`` and ``wake`` on detections, at most one per ``min_gap_s``."""
        streams: list[Observable[str]] = []
        if self.config.every_s is not None:
            streams.append(
                reactivex.timer(0.0, self.config.every_s, scheduler=self.scheduler).pipe(
                    ops.map(lambda _: "timer")
                )
            )
        if self.config.on_wake and self.detections is not None:
            streams.append(self.detections.pipe(ops.map(lambda _: "wake")))
        if not streams:
            return reactivex.never()
        merged = reactivex.merge(*streams)
        if self.config.min_gap_s > 0:
            merged = merged.pipe(ops.throttle_first(self.config.min_gap_s, self.scheduler))
        return merged

    def start(self) -> CameraCaptions:
        """Hold the camera and start captioning."""
        self._subs.add(self.camera.connect())
        self._subs.add(self.triggers().subscribe(self._trigger, self._failed))
        log.info("captions: camera %s described by %s", self.name, self.backend.name,
                 extra={"camera": self.name})  # fmt: skip
        return self

    def stop(self) -> None:
        """Stop captioning and let go of the camera (a caption in flight may still finish)."""
        self._subs.dispose()
        if self._own_executor:
            self.executor.shutdown(wait=False, cancel_futures=True)

    def _failed(self, exc: Exception) -> None:
        log_unexpected(log, f"captions: camera {self.name} stopped", exc)

    def _trigger(self, trigger: str) -> None:
        now = self.scheduler.now.timestamp()
        if self.budget.wait(now) > 0 or not self._busy.acquire(blocking=False):
            self.skipped += 1
            return
        self.budget.record(now)
        try:
            self.executor.submit(self._caption, trigger, self.clock())
        except RuntimeError:  # stopped meanwhile
            self._busy.release()

    def _caption(self, trigger: str, at: float) -> None:
        try:
            caption = self.describe(trigger, at)
            if caption is not None:
                self.made += 1
                self.deliver(caption)
        except Exception as exc:
            log_unexpected(log, f"captions: camera {self.name}", exc)
        finally:
            self._busy.release()

    def describe(self, trigger: str = "timer", at: float | None = None) -> Caption | None:
        """Take the camera's picture and describe it now (``None``: no picture).

        ``at``: the caption's time (default: the clock now).
        """
        at = self.clock() if at is None else at
        frame = self.camera.latest(FRAME_WAIT_S)
        if frame is None:
            return None
        jpeg = encode_jpeg(frame, self.config.image_max_height, self.config.jpeg_quality)
        t0 = time.monotonic()
        text, error = "", None
        try:
            text = self.backend.describe(jpeg, self.config.prompt).strip()
        except Exception as exc:  # BackendError and any fault of a backend
            log_unexpected(log, f"captions: camera {self.name}", exc, expected=(BackendError,))
            error = redact(str(exc)) or type(exc).__name__
        return Caption(camera=self.name, time=at, text=text, backend=self.backend.name,
                       trigger=trigger, latency_s=time.monotonic() - t0, error=error,
                       jpeg=jpeg)  # fmt: skip


class Captions:
    """The captions of every camera that has a ``captions`` table.

    Args:
        cameras: camera name -> (its captions table, the camera, the backend, detections).
        deliver: where captions go (the sink hub's ``send_caption``).
    """

    def __init__(
        self,
        cameras: Mapping[
            str, tuple[CaptionsConfig, FrameSource, Backend, Observable[Detection] | None]
        ],
        deliver: Callable[[Caption], None],
    ) -> None:
        self.executor = ThreadPoolExecutor(2, thread_name_prefix="captions")
        self.runners = [
            CameraCaptions(name, cfg, cam, backend, deliver, dets, executor=self.executor)
            for name, (cfg, cam, backend, dets) in cameras.items()
        ]

    def start(self) -> Captions:
        """Start every camera's captions; one that cannot start is logged and skipped."""
        for runner in self.runners:
            try:
                runner.start()
            except Exception as exc:
                log_unexpected(log, f"captions: camera {runner.name} cannot start", exc)
        return self

    def stop(self) -> None:
        """Stop them all."""
        for runner in self.runners:
            runner.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)


def build_captions(
    graph: Graph, config: LookoutConfig, deliver: Callable[[Caption], None]
) -> Captions | None:
    """The captions of ``config``'s cameras on ``graph`` (``None`` when no camera has any)."""
    cameras = {}
    for name, cam in config.cameras.items():
        if cam.captions is None:
            continue
        try:
            detections = graph.detections_of(name)
            backend = graph.backend(cam.captions.backend, has_detections=detections is not None)
            cameras[name] = (cam.captions, graph.camera(name), backend, detections)
        except Exception as exc:
            log_unexpected(log, f"captions: camera {name}", exc)
    return Captions(cameras, deliver).start() if cameras else None
