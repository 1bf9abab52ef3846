"""The ``onnx`` backend: a local image classifier or detector decides the condition.

The condition is met when one of ``match_classes`` passes ``threshold``; for a
detector the box must also be inside one of the watch's zones (its bottom
centre, as with Frigate) when the watch has zones. No language model is
involved: the condition text is only used in messages.

Classifiers: one output ``[1, C]`` (probabilities or logits; logits get a
softmax). Detectors: YOLOv8/11 ``[1, 4 + C, N]`` or ``[1, N, 4 + C]``, or
YOLOv5 ``[1, N, 5 + C]`` (with objectness), boxes as centre x, centre y, width,
height in input pixels. Class names come from ``labels`` or the model's
metadata (``names`` as written by Ultralytics, or ``labels``/``classes`` as a
JSON list or comma-separated text). Frames are stretched to the square input
size, scaled to 0..1 and normalized with ``mean``/``std``.

Example:
    >>> point_in_polygon((0.5, 0.5), ((0, 0), (1, 0), (1, 1), (0, 1)))
    True
"""

from __future__ import annotations

import ast
import contextlib
import json
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from operators.backends.base import Availability, BackendError, LookRequest
from operators.backends.hardware import probe_hardware
from operators.backends.image_input import image_tensor
from pipeline.core.config import OnnxBackendConfig
from pipeline.core.logs import log_unexpected
from pipeline.core.verdict import AnswerKind, Verdict

log = logging.getLogger("lookout.backends.onnx")

FloatArray = npt.NDArray[np.float32]


def point_in_polygon(point: tuple[float, float], polygon: Sequence[tuple[float, float]]) -> bool:
    """Tell whether a point is inside a polygon (ray casting; edges count as inside)."""
    x, y = point
    inside = False
    n = len(polygon)
    for i in range(n):
        x1, y1 = polygon[i]
        x2, y2 = polygon[(i + 1) % n]
        if min(y1, y2) <= y <= max(y1, y2) and min(x1, x2) <= x <= max(x1, x2):
            cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
            if abs(cross) < 1e-12:
                return True  # on an edge
        if (y1 > y) != (y2 > y):
            x_at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < x_at:
                inside = not inside
    return inside


def labels_from_metadata(meta: dict[str, str]) -> list[str] | None:
    """Read class names from ONNX metadata (Ultralytics ``names``, or ``labels``/``classes``).

    Example:
        >>> labels_from_metadata({"names": "{0: 'person', 1: 'car'}"})
        ['person', 'car']
        >>> labels_from_metadata({"labels": "cat, dog"})
        ['cat', 'dog']
    """
    for key in ("names", "labels", "classes"):
        raw = meta.get(key)
        if not raw:
            continue
        value: Any
        try:
            value = json.loads(raw)
        except ValueError:
            try:
                value = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                value = [part.strip() for part in raw.split(",") if part.strip()]
        if isinstance(value, dict):
            return [str(value[k]) for k in sorted(value, key=lambda k: int(k))]
        if isinstance(value, list | tuple):
            return [str(v) for v in value]
    return None


def softmax_if_logits(scores: FloatArray) -> FloatArray:
    """Return probabilities: the scores themselves when they already are, else their softmax."""
    if scores.size and scores.min() >= 0 and scores.max() <= 1 and abs(scores.sum() - 1) < 1e-3:
        return scores
    shifted: FloatArray = np.exp(scores - scores.max()).astype(np.float32)
    result: FloatArray = (shifted / shifted.sum()).astype(np.float32)
    return result


def yolo_rows(output: FloatArray, num_classes: int) -> tuple[FloatArray, FloatArray]:
    """Split a YOLO output into boxes ``[N, 4]`` (cx, cy, w, h) and class scores ``[N, C]``.

    Raises:
        ValueError: the shape fits neither YOLOv8 nor YOLOv5 with ``num_classes`` classes.
    """
    out = np.asarray(output, dtype=np.float32)
    if out.ndim == 3:
        out = out[0]
    if out.ndim != 2:
        raise ValueError(f"Expected a [1, 4 + C, N] or [1, N, 5 + C] output, got {output.shape}.")
    if out.shape[0] == 4 + num_classes and out.shape[1] != 4 + num_classes:
        out = out.T
    if out.shape[1] == 4 + num_classes:
        return out[:, :4], out[:, 4:]
    if out.shape[1] == 5 + num_classes:
        return out[:, :4], out[:, 5:] * out[:, 4:5]
    raise ValueError(
        f"A detector output of shape {output.shape} does not fit {num_classes} classes."
    )


class OnnxBackend:
    """A local ONNX classifier or detector as a backend (onnxruntime, CUDA when present).

    Thread-safe (onnxruntime sessions are); the model loads on :meth:`start`
    or the first look.
    """

    type = "onnx"
    needs_gpu = False
    takes_images = True

    def __init__(self, name: str, config: OnnxBackendConfig) -> None:
        self.name = name
        self.config = config
        self.ram_mb = config.ram_mb
        self._lock = threading.Lock()
        self._session: Any = None
        self._input_name = ""
        self._nhwc = False
        self.input_size = config.input_size or 0
        self.labels: list[str] = list(config.labels or [])

    def availability(self) -> Availability:
        """Available when onnxruntime, the model file and its class names are here."""
        if not self.config.model.is_file():
            return Availability(False, f"model file {self.config.model} not found")
        hw = probe_hardware()
        if hw.available_ram_mb and hw.available_ram_mb < self.ram_mb and not hw.cuda:
            return Availability(
                False, f"needs about {self.ram_mb} MB of RAM, {hw.available_ram_mb} MB free"
            )
        try:
            self._load()
        except BackendError as exc:
            return Availability(False, str(exc))
        where = "CUDA" if "CUDAExecutionProvider" in self._providers() else "CPU"
        return Availability(True, f"{self.config.model.name} ({self.config.task}, {where})")

    def _providers(self) -> list[str]:
        if self.config.providers:
            return list(self.config.providers)
        hw = probe_hardware()
        return (["CUDAExecutionProvider"] if hw.cuda else []) + ["CPUExecutionProvider"]

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            try:
                import onnxruntime as ort
            except ImportError:
                raise BackendError("onnxruntime is not installed") from None
            try:
                session = ort.InferenceSession(str(self.config.model), providers=self._providers())
            except Exception as exc:  # onnxruntime raises its own exception types
                raise BackendError(f"cannot load {self.config.model.name}: {exc}") from None
            inp = session.get_inputs()[0]
            shape = list(inp.shape)
            self._nhwc = len(shape) == 4 and shape[-1] == 3 and shape[1] != 3
            dims = shape[1:3] if self._nhwc else shape[2:4]
            if not self.input_size:
                fixed = [d for d in dims if isinstance(d, int) and d > 0]
                self.input_size = fixed[0] if fixed else 224
            if not self.labels:
                meta = dict(session.get_modelmeta().custom_metadata_map)
                self.labels = labels_from_metadata(meta) or []
            if not self.labels:
                raise BackendError(
                    f"{self.config.model.name} has no class names; set labels in the config"
                )
            missing = [c for c in self.config.match_classes if c not in self.labels]
            if missing:
                raise BackendError(
                    f"match_classes {missing} are not among the model's classes "
                    f"({', '.join(self.labels[:20])}{'...' if len(self.labels) > 20 else ''})"
                )
            self._input_name = inp.name
            self._session = session

    def start(self) -> None:
        """Load the model (errors come back as failed verdicts on looks, not here)."""
        with contextlib.suppress(BackendError):
            self._load()

    def stop(self) -> None:
        """Drop the session; it loads again on the next look."""
        with self._lock:
            self._session = None

    def preprocess(self, request: LookRequest) -> FloatArray | None:
        """Turn the look's frame (or JPEG) into the model's input tensor."""
        x = image_tensor(request, self.input_size, self.config.mean, self.config.std)
        if x is None:
            return None
        if not self._nhwc:
            x = x.transpose(2, 0, 1)
        return np.ascontiguousarray(x[None], dtype=np.float32)

    def judge(self, request: LookRequest) -> Verdict:
        """Run the model on the look's frame and decide from the matching classes."""
        t0 = time.monotonic()
        try:
            self._load()
        except BackendError as exc:
            return Verdict.failed(AnswerKind.UNAVAILABLE, f"{self.name}: {exc}")
        x = self.preprocess(request)
        if x is None:
            return Verdict.failed(AnswerKind.NO_FRAME, "no frame to judge")
        try:
            output = np.asarray(self._session.run(None, {self._input_name: x})[0], np.float32)
            if self.config.task == "classify":
                verdict = self._classify(output, request)
            else:
                verdict = self._detect(output, request)
        except Exception as exc:  # a model with an unexpected output must not kill the watch
            log_unexpected(log, f"backend {self.name}: the model's output", exc)
            return Verdict.failed(AnswerKind.ERROR, f"{self.name}: {exc}")
        return verdict.with_latency(time.monotonic() - t0)

    def _classify(self, output: FloatArray, request: LookRequest) -> Verdict:
        scores = softmax_if_logits(output.reshape(-1)[: len(self.labels)])
        ranked = np.argsort(scores)[::-1][:3]
        top = ", ".join(f"{self.labels[i]} {scores[i]:.2f}" for i in ranked)
        wanted = [(scores[self.labels.index(c)], c) for c in self.config.match_classes]
        score, cls = max(wanted)
        met = bool(score >= self.config.threshold)
        return Verdict.answered(
            met,
            self.config.next_run_in_s,
            f"Top classes: {top}.",
            f"{cls} seen on {request.camera}" if met else None,
            confidence=float(score),
        )

    def _detect(self, output: FloatArray, request: LookRequest) -> Verdict:
        boxes, scores = yolo_rows(output, len(self.labels))
        size = float(self.input_size)
        zones = {name: poly for name, poly in request.zone_polygons if name in request.zones}
        best: tuple[float, str, str] | None = None
        visible = 0
        for c in self.config.match_classes:
            col = self.labels.index(c)
            for i in np.nonzero(scores[:, col] >= self.config.threshold)[0]:
                visible += 1
                cx, cy, _w, h = boxes[i]
                anchor = (float(cx) / size, float(cy + h / 2) / size)
                where = ""
                if zones:
                    inside = [n for n, poly in zones.items() if point_in_polygon(anchor, poly)]
                    if not inside:
                        continue
                    where = f" in {', '.join(inside)}"
                score = float(scores[i, col])
                if best is None or score > best[0]:
                    best = (score, c, where)
        if best is None:
            if visible:
                why = f"{visible} matching object(s), none inside {', '.join(zones)}."
                return Verdict.answered(False, min(3.0, self.config.next_run_in_s), why)
            return Verdict.answered(
                False, self.config.next_run_in_s, "No matching objects.", confidence=0.0
            )
        score, cls, where = best
        return Verdict.answered(
            True,
            self.config.next_run_in_s,
            f"{cls} detected{where} (score {score:.2f}).",
            f"{cls} seen on {request.camera}{where}",
            confidence=score,
        )

    def describe(self, jpeg: bytes, prompt: str) -> str:
        """List the top classes (or detections) in an image; ``prompt`` is ignored."""
        verdict = self.judge(
            LookRequest(watch="describe", camera="image", condition=prompt, jpeg=jpeg)
        )
        if verdict.error:
            raise BackendError(verdict.error)
        return verdict.reasoning
