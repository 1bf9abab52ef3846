"""A YOLO-format ONNX object detector (YOLOv5, v8 and 11 output layouts) via onnxruntime.

The model file is the user's (exported with ``yolo export format=onnx`` or
YOLOv5's ``export.py``). Frames are letterboxed to the model's square input
(scaling in swscale for decoder frames), outputs are decoded, filtered by
confidence, reduced with per-class non-maximum suppression and mapped back to
the frame's pixels. Class names come from ``classes`` in the config, else the
model's ``names`` metadata (what Ultralytics writes), else ``class<N>``.
"""

from __future__ import annotations

import ast
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable
from reactivex.scheduler import ThreadPoolScheduler
from reactivex.scheduler.virtualtimescheduler import VirtualTimeScheduler

from pipeline.core.config import OnnxDetectConfig
from pipeline.core.detection import Box, Detection
from pipeline.core.frame import Frame
from pipeline.core.pools import shared_pool
from sources.frame_pace import pace_frames

F32 = npt.NDArray[np.float32]
PAD = 114


def parse_names(value: str | None) -> list[str] | None:
    """Class names from Ultralytics metadata (``"{0: 'person', 1: 'car'}"``) or a list.

    Example:
        >>> parse_names("{0: 'person', 1: 'car'}")
        ['person', 'car']
    """
    if not value:
        return None
    try:
        data = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return None
    if isinstance(data, dict):
        return [str(data[k]) for k in sorted(data, key=int)]
    if isinstance(data, list | tuple):
        return [str(v) for v in data]
    return None


def nms(boxes: F32, scores: F32, iou: float) -> list[int]:
    """Greedy non-maximum suppression; returns kept indexes, best first.

    Example:
        >>> b = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], np.float32)
        >>> nms(b, np.array([0.9, 0.8, 0.7], np.float32), 0.5)
        [0, 2]
    """
    order = np.argsort(-scores)
    keep: list[int] = []
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        union = areas[i] + areas[rest] - inter
        overlap = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
        order = rest[overlap <= iou]
    return keep


def decode_yolo(
    output: npt.NDArray[Any], num_classes: int | None, confidence: float
) -> tuple[F32, F32, npt.NDArray[np.int64]]:
    """Decode one raw YOLO output into ``(xyxy boxes, scores, class ids)`` above ``confidence``.

    Accepts ``(1, 4 + nc, N)`` (YOLOv8/11: no objectness) and ``(1, N, 5 + nc)``
    (YOLOv5: objectness times class score), batch dimension optional.
    """
    out = np.asarray(output, dtype=np.float32)
    if out.ndim == 3:
        out = out[0]
    if out.ndim != 2:
        raise ValueError(f"A YOLO output must be 2-D or 3-D, got shape {output.shape}.")
    nc = num_classes
    if nc is not None and out.shape[0] in (4 + nc, 5 + nc) and out.shape[1] not in (4 + nc, 5 + nc):
        transposed = True
    elif nc is not None and out.shape[1] in (4 + nc, 5 + nc):
        transposed = False
    else:  # class count unknown: anchors outnumber channels in real models
        transposed = out.shape[0] < out.shape[1]
    rows = out.T if transposed else out
    cols = rows.shape[1]
    if nc is not None and cols == 4 + nc:
        v5 = False
    elif nc is not None and cols == 5 + nc:
        v5 = True
    else:
        v5 = not transposed
    if cols < (6 if v5 else 5):
        raise ValueError(f"A YOLO output needs box and class columns, got {cols}.")
    cls_scores = rows[:, 5:] * rows[:, 4:5] if v5 else rows[:, 4:]
    ids = np.argmax(cls_scores, axis=1)
    scores = cls_scores[np.arange(len(rows)), ids]
    keep = scores >= confidence
    cx, cy, w, h = (rows[keep, i] for i in range(4))
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
    return boxes, scores[keep].astype(np.float32), ids[keep].astype(np.int64)


class OnnxDetector:
    """Run a YOLO ONNX model on frames (plain class; thread-safe, blocking).

    Example:
        >>> det = OnnxDetector(OnnxDetectConfig(model="yolov8n.onnx"))  # doctest: +SKIP
        >>> det.detect(frame)  # doctest: +SKIP
        [Detection(label='person', ...)]

    Raises:
        ValueError: the model file is missing or is not a YOLO-shaped model (the
            message names the file, never a secret).
    """

    def __init__(self, config: OnnxDetectConfig) -> None:
        import onnxruntime as ort

        if not config.model.is_file():
            raise ValueError(f"ONNX model file not found: {config.model}")
        self.config = config
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        providers = config.providers or ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(str(config.model), opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ValueError(
                f"Cannot load ONNX model {config.model}: {type(exc).__name__}"
            ) from None
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = list(inp.shape)
        if len(shape) != 4:
            raise ValueError(f"ONNX model {config.model} input must be NCHW, got {shape}.")
        size = config.input_size
        if size is None:
            h, w = shape[2], shape[3]
            if not isinstance(h, int) or not isinstance(w, int):
                size = 640
            elif h != w:
                raise ValueError(f"ONNX model {config.model} input must be square, got {w}x{h}.")
            else:
                size = h
        self.size = int(size)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.names = list(config.classes or parse_names(meta.get("names")) or [])

    def label(self, class_id: int) -> str:
        """Return the name of ``class_id``."""
        return self.names[class_id] if 0 <= class_id < len(self.names) else f"class{class_id}"

    def letterbox(self, frame: Frame) -> tuple[F32, float, float, float]:
        """Return ``(NCHW input, scale, pad_x, pad_y)`` for ``frame``."""
        s = self.size
        r = min(s / frame.width, s / frame.height)
        nw, nh = max(1, round(frame.width * r)), max(1, round(frame.height * r))
        rgb = frame.to_rgb(nw, nh)
        canvas = np.full((s, s, 3), PAD, np.uint8)
        px, py = (s - nw) // 2, (s - nh) // 2
        canvas[py : py + nh, px : px + nw] = rgb
        tensor = canvas.transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        return tensor, r, float(px), float(py)

    def detect(self, frame: Frame) -> list[Detection]:
        """Return the detections in ``frame``, best first."""
        tensor, r, px, py = self.letterbox(frame)
        output = self.session.run(None, {self.input_name: tensor})[0]
        boxes, scores, ids = decode_yolo(output, len(self.names) or None, self.config.confidence)
        out: list[Detection] = []
        if not len(scores):
            return out
        keep: list[int] = []
        for cls in np.unique(ids):
            idx = np.nonzero(ids == cls)[0]
            keep.extend(int(idx[i]) for i in nms(boxes[idx], scores[idx], self.config.iou))
        keep.sort(key=lambda i: -float(scores[i]))
        w, h = frame.width, frame.height
        for i in keep:
            x1, y1, x2, y2 = boxes[i]
            bx1 = float(np.clip((x1 - px) / r, 0, w))
            by1 = float(np.clip((y1 - py) / r, 0, h))
            bx2 = float(np.clip((x2 - px) / r, 0, w))
            by2 = float(np.clip((y2 - py) / r, 0, h))
            out.append(
                Detection(
                    camera=frame.camera,
                    label=self.label(int(ids[i])),
                    score=float(min(1.0, max(0.0, scores[i]))),
                    box=Box(bx1, by1, max(bx1, bx2), max(by1, by2)),
                    time=frame.wall_time,
                    frame_size=(w, h),
                    source="onnx",
                )
            )
        return out


def shared_detect_scheduler() -> ThreadPoolScheduler:
    """Return the process-wide pool where ONNX inference runs by default."""
    return shared_pool("onnx-detect", 4)


def detect_onnx(
    config: OnnxDetectConfig,
    *,
    detector: OnnxDetector | None = None,
    scheduler: abc.SchedulerBase | None = None,
    detect_scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[Frame]], Observable[Detection]]:
    """Rx operator: frames in, ONNX detections out, at most ``config.fps`` frames analysed.

    Example:
        >>> frames.pipe(detect_onnx(OnnxDetectConfig(model="yolo11n.onnx", fps=2)))
        ... # doctest: +SKIP

    The rate counts seconds of the frames' own time (stream time, else arrival
    time: see :func:`sources.frame_pace.pace_frames`), so a file decoded faster
    than real time is analysed at ``config.fps`` frames per second of video.
    Inference never blocks the thread that delivers the frames (a camera's
    decode thread): a frame that passes the rate limit is analysed on
    ``detect_scheduler``, and frames that arrive while one is being analysed
    are dropped, never queued (a slow model lowers the rate, it does not build
    a backlog). With a virtual-time ``scheduler`` (replays, tests) and no
    ``detect_scheduler``, inference runs inline so results are deterministic.

    Args:
        config: ``[cameras.NAME.detect]`` with ``type = "onnx"``.
        detector: a loaded detector to share (default: loaded now from ``config``).
        scheduler: a virtual-time scheduler makes inference run inline (see above).
        detect_scheduler: where inference runs (default: a shared pool of 4
            threads; ``reactivex.scheduler.ImmediateScheduler()`` runs inline).

    Returns:
        An operator from frames to detections; an inference error goes to
        ``on_error``.

    Raises:
        ValueError: the model cannot be loaded (at once, not on subscribe).
    """
    det = detector or OnnxDetector(config)
    inline = detect_scheduler is None and isinstance(scheduler, VirtualTimeScheduler)

    def _op(source: Observable[Frame]) -> Observable[Detection]:
        sampled = source.pipe(pace_frames(config.fps))
        if inline:
            return sampled.pipe(ops.map(det.detect), ops.flat_map(reactivex.from_iterable))

        def subscribe(
            observer: abc.ObserverBase[Detection], default: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            pool = detect_scheduler or shared_detect_scheduler()
            worker = _OneAtATime(observer, det.detect, pool)
            sub = sampled.subscribe(
                worker.on_next, worker.on_error, worker.on_completed, scheduler=default
            )
            return CompositeDisposable(sub, worker.work, Disposable(worker.stop))

        return reactivex.create(subscribe)

    return _op


class _OneAtATime:
    """One subscription's inference: a frame at a time on ``pool``, frames dropped while busy.

    Completion waits for the frame in flight; an inference error ends the
    stream with ``on_error``; after ``stop`` nothing more is sent.
    """

    def __init__(
        self,
        observer: abc.ObserverBase[Detection],
        detect: Callable[[Frame], list[Detection]],
        pool: abc.SchedulerBase,
    ) -> None:
        self._observer = observer
        self._detect = detect
        self._pool = pool
        # Re-entrant: completing disposes the subscription, which takes it again.
        self._lock = threading.RLock()
        self._busy = False
        self._done = False
        self._complete = False
        self.work = SerialDisposable()

    def on_next(self, frame: Frame) -> None:
        with self._lock:
            if self._busy or self._done:
                return  # one frame in flight: drop, never queue
            self._busy = True

        def run(_s: abc.SchedulerBase, _st: Any = None) -> None:
            self._analyse(frame)

        self.work.disposable = self._pool.schedule(run)

    def _analyse(self, frame: Frame) -> None:
        try:
            found = self._detect(frame)
        except Exception as exc:
            with self._lock:
                self._done = True
            self._observer.on_error(exc)
            return
        with self._lock:
            if self._done:
                return
            for d in found:
                self._observer.on_next(d)
            self._busy = False
            if self._complete:  # the frames ended during this analysis
                self._done = True
                self._observer.on_completed()

    def on_completed(self) -> None:
        with self._lock:
            if self._busy:
                self._complete = True  # after the frame in flight
                return
            self._done = True
            self._observer.on_completed()

    def on_error(self, exc: Exception) -> None:
        with self._lock:
            self._done = True
        self._observer.on_error(exc)

    def stop(self) -> None:
        with self._lock:
            self._done = True
