"""Detection streams of the running graph: one per camera, built from its ``detect`` table.

:func:`build_detections` makes a camera's (cold) detection stream: motion or
ONNX on its frames, Frigate or MQTT JSON over the shared MQTT connection.
:func:`resubscribe_on_error` keeps a failing detector from ending the watches
of its camera: it is subscribed again after a backoff. The graph shares each
stream between the camera's watches; a replay builds its own
(:mod:`pipeline.app.replay.engine`).

Example:
    >>> dets = build_detections("front", cfg.detect, camera.frames)  # doctest: +SKIP
    >>> dets = dets.pipe(resubscribe_on_error("detector 'onnx'", "front"))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable
from reactivex.scheduler import TimeoutScheduler

from pipeline.core.backoff import Backoff
from pipeline.core.config import (
    DetectConfig,
    FrigateDetectConfig,
    MotionDetectConfig,
    MqttJsonDetectConfig,
    OnnxDetectConfig,
)
from pipeline.core.detection import Detection
from pipeline.core.frame import Frame
from pipeline.core.logs import log_unexpected
from pipeline.core.redact import redact
from pipeline.net.mqtt_connection import MqttConnection
from sources.frigate import frigate_detections
from sources.motion import motion_detections
from sources.mqtt_json import mqtt_json_detections
from sources.onnx_detector import detect_onnx

log = logging.getLogger("lookout")

DETECTOR_RETRY_S = 1.0
"""First wait before a failed detection stream is subscribed again."""
DETECTOR_RETRY_MAX_S = 60.0
"""Longest wait between two attempts."""


def _extra(camera: str) -> dict[str, Any]:
    return {"camera": camera}


def build_detections(
    camera: str,
    detect: DetectConfig | None,
    frames: Callable[[float | None, bool], Observable[Frame]],
    *,
    mqtt: MqttConnection | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Observable[Detection] | None:
    """The (cold) detection stream of one camera, or ``None`` when it has no detector.

    Example:
        >>> dets = build_detections("front", cfg.detect, camera.frames)  # doctest: +SKIP

    Args:
        camera: the camera's name.
        detect: its ``detect`` table.
        frames: ``(fps, keyframes only) -> frames`` of the camera (a live camera or
            a clip).
        mqtt: the connection Frigate / MQTT JSON detections come over
            (``None``: those detectors give no stream).
        scheduler: the time source of motion and ONNX detection (virtual in replays).
    """
    if isinstance(detect, MotionDetectConfig):
        return motion_detections(frames(detect.fps, detect.keyframes), detect, scheduler=scheduler)
    if isinstance(detect, OnnxDetectConfig):
        # detect_onnx runs inference on its own pool, dropping frames while busy.
        return frames(detect.fps, detect.keyframes).pipe(detect_onnx(detect, scheduler=scheduler))
    if isinstance(detect, FrigateDetectConfig | MqttJsonDetectConfig) and mqtt is not None:
        if isinstance(detect, FrigateDetectConfig):
            return frigate_detections(detect, camera, mqtt.subscribe, mqtt.unsubscribe)
        return mqtt_json_detections(detect, camera, mqtt.subscribe, mqtt.unsubscribe)
    return None


def resubscribe_on_error(
    what: str,
    camera: str,
    *,
    initial_s: float = DETECTOR_RETRY_S,
    max_s: float = DETECTOR_RETRY_MAX_S,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[Detection]], Observable[Detection]]:
    """Rx operator: an error is logged and the source subscribed again after a backoff.

    Example:
        >>> dets = onnx_stream.pipe(resubscribe_on_error("detector", "front"))  # doctest: +SKIP

    A detector that fails (an ONNX runtime error, a motion error) must not end
    the watches of its camera: they keep their timer looks, and detections come
    back when the detector does. The backoff starts again after a detection
    arrives. Completion passes through.

    Args:
        what: what failed, for the log line.
        camera: the camera's name, for the log line.
        initial_s: first wait in seconds.
        max_s: longest wait in seconds.
        scheduler: where the waits run (default: a timeout scheduler).

    Raises:
        ValueError: a wait that is not positive, or ``max_s`` below ``initial_s``.
    """
    if not initial_s > 0 or max_s < initial_s:
        raise ValueError("initial_s must be positive and max_s at least initial_s.")

    def _op(source: Observable[Detection]) -> Observable[Detection]:
        def subscribe(
            observer: abc.ObserverBase[Detection], default: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            sched = scheduler or default or TimeoutScheduler.singleton()
            backoff = Backoff(initial=initial_s, cap=max_s)
            current = SerialDisposable()
            stopped = [False]
            lock = threading.Lock()

            def on_next(d: Detection) -> None:
                backoff.reset()
                observer.on_next(d)

            def on_error(exc: Exception) -> None:
                log_unexpected(log, f"camera {camera}: {what} failed", exc)
                delay = backoff.next_delay()
                log.error(
                    "camera %s: %s failed (%s); trying again in %.0f s",
                    camera,
                    what,
                    redact(f"{type(exc).__name__}: {exc}"),
                    delay,
                    extra=_extra(camera),
                )
                with lock:
                    if not stopped[0]:
                        current.disposable = sched.schedule_relative(delay, again)

            def again(_s: abc.SchedulerBase | None = None, _st: Any = None) -> None:
                with lock:
                    if stopped[0]:
                        return
                inner = source.subscribe(
                    on_next, on_error, observer.on_completed, scheduler=default
                )
                with lock:
                    if stopped[0]:
                        inner.dispose()
                    else:
                        current.disposable = inner

            def stop() -> None:
                with lock:
                    stopped[0] = True
                current.dispose()

            again()
            return CompositeDisposable(Disposable(stop))

        return reactivex.create(subscribe)

    return _op


def no_frames(_fps: float | None, _keyframes: bool = False) -> Observable[Frame]:
    """The frames of a camera whose detector needs none (``build_detections``'s ``frames``)."""
    return reactivex.empty()
