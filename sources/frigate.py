"""Detections from Frigate's MQTT events (``<prefix>/events``).

Frigate publishes JSON like ``{"type": "new" | "update" | "end", "before": {...},
"after": {"id", "camera", "label", "score", "top_score", "box", "frame_time",
"current_zones", "entered_zones", "false_positive", "stationary", ...}}``.
Each ``new``/``update`` event becomes one :class:`~pipeline.core.detection.Detection`
with ``source = "frigate"``, the Frigate event id as ``object_id`` and
Frigate's ``current_zones`` as ``zones``. ``end`` events (the object left) and
false positives are skipped; malformed payloads are skipped and counted.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import orjson
from reactivex import Observable
from reactivex import operators as ops

from pipeline.core.config import FrigateDetectConfig
from pipeline.core.detection import Box, Detection
from sources.mqtt_subscription import Subscribe, Unsubscribe, mqtt_messages

log = logging.getLogger(__name__)


class FrigateEventParser:
    """Parse Frigate event payloads into detections (plain class; counts what it skips).

    Example:
        >>> p = FrigateEventParser(FrigateDetectConfig(), cameras={"front_door": "porch"})
        >>> d = p.parse(b'{"type": "new", "after": {"id": "1.2-abc", "camera": "front_door",'
        ...             b' "label": "person", "score": 0.8, "box": [10, 20, 50, 120],'
        ...             b' "frame_time": 1700000000.5, "current_zones": ["steps"]}}')
        >>> d.camera, d.label, d.zones, d.object_id
        ('porch', 'person', ('steps',), '1.2-abc')

    Boxes are in pixels of Frigate's detect stream; with ``detect_width`` and
    ``detect_height`` set each detection carries that ``frame_size``, so
    relative zones configured here apply to Frigate's boxes too.

    Args:
        config: the detect table (``include_false_positives``, detect size).
        cameras: Frigate camera name -> Lookout camera name; events of other
            cameras are skipped.
    """

    def __init__(self, config: FrigateDetectConfig, cameras: dict[str, str]) -> None:
        self.config = config
        self.cameras = dict(cameras)
        self.malformed = 0
        self._lock = threading.Lock()
        w, h = config.detect_width, config.detect_height
        self._frame_size = (w, h) if w is not None and h is not None else None

    def parse(self, payload: bytes | str) -> Detection | None:
        """Return the detection in ``payload``, or ``None`` when it is skipped."""
        try:
            event = orjson.loads(payload)
            return self._detection(event)
        except (orjson.JSONDecodeError, TypeError, ValueError, KeyError, IndexError) as exc:
            with self._lock:
                self.malformed += 1
            log.debug("skipping malformed Frigate event: %s", type(exc).__name__)
            return None

    def _detection(self, event: Any) -> Detection | None:
        if not isinstance(event, dict):
            raise TypeError("event is not an object")
        kind = event.get("type")
        if kind == "end":
            return None
        after = event.get("after")
        if not isinstance(after, dict):
            raise TypeError("event has no 'after' object")
        camera = self.cameras.get(str(after.get("camera")))
        if camera is None:
            return None
        if after.get("false_positive") and not self.config.include_false_positives:
            return None
        x1, y1, x2, y2 = (float(v) for v in after["box"])
        score = after.get("score")
        if score is None:
            score = after.get("top_score", 1.0)
        zones = after.get("current_zones") or []
        return Detection(
            camera=camera,
            label=str(after["label"]),
            score=min(1.0, max(0.0, float(score))),
            box=Box(x1, y1, x2, y2),
            time=float(after.get("frame_time") or event.get("frame_time") or 0.0),
            frame_size=self._frame_size,
            object_id=str(after["id"]) if after.get("id") is not None else None,
            zones=tuple(str(z) for z in zones),
            source="frigate",
            stationary=bool(after.get("stationary", False)),
            event=str(kind) if kind is not None else None,
            extra={"entered_zones": list(after.get("entered_zones") or [])},
        )


def frigate_detections(
    config: FrigateDetectConfig,
    camera: str,
    subscribe: Subscribe,
    unsubscribe: Unsubscribe | None = None,
) -> Observable[Detection]:
    """Return the detections of one Lookout camera from Frigate's events topic.

    Example:
        >>> dets = frigate_detections(FrigateDetectConfig(camera="front_door"), "porch",
        ...                           conn.subscribe, conn.unsubscribe)  # doctest: +SKIP

    Args:
        config: ``[cameras.NAME.detect]`` with ``type = "frigate"``; its
            ``camera`` is Frigate's name for the camera (default ``camera``).
        camera: the Lookout camera name given to each detection.
        subscribe: ``subscribe(topic, callback)`` of the shared MQTT connection.
        unsubscribe: ``unsubscribe(topic, callback)``, called on dispose.

    Returns:
        A cold observable; each subscription subscribes to ``<prefix>/events``.
        Detections arrive on the MQTT network thread.
    """
    topic = f"{config.topic_prefix.rstrip('/')}/events"
    parser = FrigateEventParser(config, {config.camera or camera: camera})
    return frigate_events(topic, parser, subscribe, unsubscribe)


def frigate_events(
    topic: str,
    parser: FrigateEventParser,
    subscribe: Subscribe,
    unsubscribe: Unsubscribe | None = None,
) -> Observable[Detection]:
    """Return detections of every camera ``parser`` maps, from one events topic."""

    def parse(message: tuple[str, bytes]) -> list[Detection]:
        d = parser.parse(message[1])
        return [d] if d is not None else []

    return mqtt_messages(topic, subscribe, unsubscribe).pipe(ops.flat_map(parse))
