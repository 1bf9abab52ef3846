"""The one interface every inference backend implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from pipeline.core.detection import Detection
from pipeline.core.frame import Frame
from pipeline.core.verdict import Verdict


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """One earlier look in a watch's conversation.

    Attributes:
        user_text: the user turn's text ("Frame captured at 12:00:05.").
        jpeg: the JPEG sent with it, or ``None`` when older turns are kept as text only.
        assistant_text: the model's raw answer.
    """

    user_text: str
    jpeg: bytes | None
    assistant_text: str


@dataclass(frozen=True, slots=True)
class LookRequest:
    """Everything a backend may use to judge one look.

    Attributes:
        watch: watch name.
        job_id: id of the watch's run that made the look (empty when unknown).
            Backends that keep per-watch state key it by ``(watch, job_id)`` so a
            late look of an ended run never counts toward a restarted one.
        camera: camera name.
        condition: the condition in the user's words.
        labels: object labels the watch focuses on (empty: any).
        zones: zone names the watch focuses on (empty: anywhere).
        frame: the frame to judge (``None`` only for detection-only backends).
        jpeg: the frame as JPEG at the watch's size and quality.
        user_text: the user turn's text, e.g. "Frame captured at 12:00:05."
        history: earlier turns, oldest first, already trimmed to the watch's limit.
        detections: recent detections that match the watch's labels and zones.
        time: scheduler time of the look (epoch seconds, virtual in replays).
        zone_polygons: the watch's zones as ``(name, ((x, y), ...))`` in relative
            coordinates (0..1), for backends that check geometry themselves
            (``onnx`` detectors); empty when the runner does not pass them.
    """

    watch: str
    camera: str
    condition: str
    labels: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()
    frame: Frame | None = None
    jpeg: bytes | None = field(default=None, repr=False)
    user_text: str = ""
    history: tuple[ChatTurn, ...] = ()
    detections: tuple[Detection, ...] = ()
    time: float = 0.0
    zone_polygons: tuple[tuple[str, tuple[tuple[float, float], ...]], ...] = ()
    job_id: str = ""


class BackendError(RuntimeError):
    """Raised by ``describe`` when no answer came (``judge`` returns a failed verdict instead)."""


@dataclass(frozen=True, slots=True)
class Availability:
    """Whether a backend can run here, and why not."""

    available: bool
    reason: str = ""


@runtime_checkable
class Backend(Protocol):
    """An inference backend.

    ``judge`` is blocking and thread-safe; it is called off the decode threads.
    Model faults never raise: they come back as ``Verdict.failed(...)`` with the
    baseline's retry delay, so a watch survives every fault.
    """

    name: str
    type: str
    needs_gpu: bool
    ram_mb: int
    takes_images: bool

    def availability(self) -> Availability:
        """Tell whether this backend can run here (files present, server reachable...)."""
        ...

    def start(self) -> None:
        """Prepare (probe a server, load a model); may be lazy."""
        ...

    def stop(self) -> None:
        """Release everything; the backend may be started again."""
        ...

    def judge(self, request: LookRequest) -> Verdict:
        """Judge one look."""
        ...

    def describe(self, jpeg: bytes, prompt: str) -> str:
        """Free-form description of an image (baseline B's ``describe``)."""
        ...
