"""The record of one replay: every look, alert, detection and wake, in clip time.

Example:
    >>> run = ReplayRun(watch=cfg, clip=Path("yard.mp4"), start_epoch=100.0)  # doctest: +SKIP
    >>> run.clip_time(104.5)  # doctest: +SKIP
    4.5
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.config import WatchConfig
from pipeline.core.events import Alert, LookRecord, WatchState


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
        wakes: clip times of wakes that came out of the wake policy (before the
            quiet period and the look in flight could drop them).
        dropped_wakes: ``(clip time, reason)`` of every dropped wake (the
            policy's reasons, ``look in flight``, ``over budget``, ``quiet period``).
        wake_reasons: ``(clip time, reason)`` of every wake, as ``wakes``.
        budget: the look budget as the watch state last showed it, with
            ``ran_out_at`` (clip times it ran dry); ``None`` without one.
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
    dropped_wakes: list[tuple[float, str]] = field(default_factory=list)
    wake_reasons: list[tuple[float, str]] = field(default_factory=list)
    budget: dict[str, Any] | None = None
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
