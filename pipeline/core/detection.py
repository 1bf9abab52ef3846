"""Detections: what a detector (Frigate, motion, ONNX) saw in a frame."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box in pixels, ``(x1, y1)`` top-left to ``(x2, y2)`` bottom-right.

    Example:
        >>> Box(10, 20, 30, 60).area
        800.0
    """

    x1: float
    y1: float
    x2: float
    y2: float

    def __post_init__(self) -> None:
        if self.x2 < self.x1 or self.y2 < self.y1:
            raise ValueError(
                "A box needs x1 <= x2 and y1 <= y2, "
                f"got ({self.x1}, {self.y1}, {self.x2}, {self.y2})."
            )

    @property
    def width(self) -> float:
        """Width in pixels."""
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        """Height in pixels."""
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        """Area in square pixels."""
        return float(self.width * self.height)

    def as_list(self) -> list[float]:
        """``[x1, y1, x2, y2]``."""
        return [self.x1, self.y1, self.x2, self.y2]


@dataclass(frozen=True, slots=True)
class Detection:
    """One object seen on one camera at one time.

    Example:
        >>> d = Detection(camera="porch", label="person", score=0.8,
        ...               box=Box(0, 0, 10, 20), time=0.0, frame_size=(640, 480))
        >>> d.label
        'person'

    Attributes:
        camera: camera name.
        label: object class (``person``, ``car``, ``motion``...).
        score: confidence in [0, 1].
        box: bounding box in pixels of a ``frame_size`` frame.
        time: epoch seconds (or virtual seconds in replays) when it was seen.
        frame_size: ``(width, height)`` of the frame the box refers to, when known.
        object_id: a tracker id that stays the same across frames, when the source has one.
        zones: zones the source itself says the object is in (Frigate's ``current_zones``).
        source: which detector produced it (``motion``, ``frigate``, ``onnx``, ``mqtt``).
        stationary: the object has not moved for a while (Frigate).
        event: the source's event type (Frigate ``new``/``update``/``end``), if any.
        extra: source-specific details (not compared).
        tags: further names the object answers to, in lower case, for label filters:
            ``person:alice`` (a recognised face or other sub label), ``plate:ab123cd``
            (a read licence plate), ``face`` (an attribute Frigate saw on it).
    """

    camera: str
    label: str
    score: float
    box: Box
    time: float
    frame_size: tuple[int, int] | None = None
    object_id: str | None = None
    zones: tuple[str, ...] = ()
    source: str = ""
    stationary: bool = False
    event: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.label:
            raise ValueError("A detection needs a non-empty label.")
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"A detection score must be within [0, 1], got {self.score}.")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "camera": self.camera,
            "label": self.label,
            "score": self.score,
            "box": self.box.as_list(),
            "time": self.time,
            "frame_size": list(self.frame_size) if self.frame_size else None,
            "object_id": self.object_id,
            "zones": list(self.zones),
            "source": self.source,
            "stationary": self.stationary,
            "tags": list(self.tags),
        }
