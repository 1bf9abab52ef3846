"""Detections as JSON on any MQTT topic, for detectors Lookout does not know.

Schema of a message (one object, a list of objects, or ``{"detections": [...]}``
with optional top-level ``camera``/``time``/``frame_size`` shared by the items)::

    {
      "camera": "porch",            # optional: defaults to the camera the source is for;
                                    #   items for other cameras are skipped
      "label": "person",            # required, non-empty
      "score": 0.87,                # optional, 0..1 (default 1.0)
      "box": [x1, y1, x2, y2],      # required: pixels of frame_size, or relative 0..1
      "frame_size": [1920, 1080],   # optional: [width, height] the box refers to
      "box_units": "pixels",        # optional: "pixels" | "relative" (default: relative
                                    #   when every box value is <= 1)
      "time": 1700000000.25,        # optional epoch seconds (default: time of receipt)
      "object_id": "42",            # optional tracker id (used by zone inertia)
      "zones": ["driveway"],        # optional zones the detector already computed
      "stationary": false           # optional
    }

A relative box is scaled to ``frame_size`` when given; without one it is kept
as is with ``frame_size = (1, 1)``, so relative zones still apply. Malformed
items are skipped and counted.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.scheduler import TimeoutScheduler

from pipeline.core.config import MqttJsonDetectConfig
from pipeline.core.detection import Box, Detection
from sources.mqtt_subscription import Subscribe, Unsubscribe, mqtt_messages

log = logging.getLogger(__name__)


class JsonDetection(BaseModel):
    """One detection item of the MQTT JSON schema (see the module docstring)."""

    model_config = ConfigDict(extra="ignore")

    camera: str | None = Field(None, description="Camera name; default the source's camera.")
    label: str = Field(min_length=1, description="Object label.")
    score: float = Field(1.0, ge=0, le=1, description="Confidence.")
    box: tuple[float, float, float, float] = Field(description="[x1, y1, x2, y2].")
    frame_size: tuple[int, int] | None = Field(None, description="[width, height] of the box.")
    box_units: str | None = Field(None, description="pixels or relative.")
    time: float | None = Field(None, description="Epoch seconds.")
    object_id: str | int | None = Field(None, description="Tracker id.")
    zones: list[str] = Field(default_factory=list, description="Zones the detector computed.")
    stationary: bool = Field(False, description="Object not moving.")

    @field_validator("box_units")
    @classmethod
    def _units(cls, v: str | None) -> str | None:
        if v not in (None, "pixels", "relative"):
            raise ValueError("must be 'pixels' or 'relative'")
        return v


class JsonDetectionParser:
    """Parse MQTT JSON detection payloads (plain class; counts malformed items).

    Example:
        >>> p = JsonDetectionParser("porch")
        >>> [d.label for d in p.parse(b'{"label": "cat", "box": [0.1, 0.1, 0.2, 0.3]}', 5.0)]
        ['cat']
    """

    def __init__(self, camera: str) -> None:
        self.camera = camera
        self.malformed = 0
        self._lock = threading.Lock()

    def _bad(self, why: str) -> None:
        with self._lock:
            self.malformed += 1
        log.debug("skipping malformed detection JSON: %s", why)

    def parse(self, payload: bytes | str, now: float) -> list[Detection]:
        """Return the detections in ``payload`` for this camera (``now``: default time)."""
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self._bad("not JSON")
            return []
        shared: dict[str, Any] = {}
        if isinstance(data, dict) and isinstance(data.get("detections"), list):
            shared = {k: data[k] for k in ("camera", "time", "frame_size") if k in data}
            items = data["detections"]
        elif isinstance(data, list):
            items = data
        else:
            items = [data]
        out: list[Detection] = []
        for item in items:
            if not isinstance(item, dict):
                self._bad("item is not an object")
                continue
            try:
                j = JsonDetection.model_validate({**shared, **item})
                d = self._detection(j, now)
            except (ValidationError, ValueError) as exc:
                self._bad(type(exc).__name__)
                continue
            if d is not None:
                out.append(d)
        return out

    def _detection(self, j: JsonDetection, now: float) -> Detection | None:
        if j.camera is not None and j.camera != self.camera:
            return None
        units = j.box_units
        if units is None:
            units = "relative" if max(j.box) <= 1.0 else "pixels"
        x1, y1, x2, y2 = j.box
        size = j.frame_size
        if units == "relative":
            if size is not None:
                x1, x2 = x1 * size[0], x2 * size[0]
                y1, y2 = y1 * size[1], y2 * size[1]
            else:
                size = (1, 1)
        return Detection(
            camera=self.camera,
            label=j.label,
            score=j.score,
            box=Box(x1, y1, x2, y2),
            time=j.time if j.time is not None else now,
            frame_size=size,
            object_id=str(j.object_id) if j.object_id is not None else None,
            zones=tuple(j.zones),
            source="mqtt",
            stationary=j.stationary,
        )


def mqtt_json_detections(
    config: MqttJsonDetectConfig,
    camera: str,
    subscribe: Subscribe,
    unsubscribe: Unsubscribe | None = None,
    *,
    scheduler: abc.SchedulerBase | None = None,
) -> Observable[Detection]:
    """Return the detections of ``camera`` published as JSON on ``config.topic``.

    Example:
        >>> dets = mqtt_json_detections(MqttJsonDetectConfig(topic="yolo/porch"), "porch",
        ...                             conn.subscribe, conn.unsubscribe)  # doctest: +SKIP

    Args:
        config: ``[cameras.NAME.detect]`` with ``type = "mqtt"``.
        camera: the Lookout camera name.
        subscribe: ``subscribe(topic, callback)`` of the shared MQTT connection.
        unsubscribe: called on dispose.
        scheduler: clock for items without ``time`` (default: a timeout scheduler).
    """
    parser = JsonDetectionParser(camera)
    clock = scheduler or TimeoutScheduler.singleton()

    def parse(message: tuple[str, bytes]) -> list[Detection]:
        return parser.parse(message[1], clock.now.timestamp())

    return mqtt_messages(config.topic, subscribe, unsubscribe).pipe(ops.flat_map(parse))
