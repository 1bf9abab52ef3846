"""Detections from Frigate's MQTT topics: ``events``, ``reviews`` and ``tracked_object_update``.

Frigate publishes JSON like ``{"type": "new" | "update" | "end", "before": {...},
"after": {"id", "camera", "label", "score", "top_score", "box", "frame_time",
"current_zones", "entered_zones", "false_positive", "stationary", "sub_label",
"attributes", ...}}`` on ``<prefix>/events``. Each ``new``/``update`` event becomes
one :class:`~pipeline.core.detection.Detection` with ``source = "frigate"``, the
Frigate event id as ``object_id``, Frigate's ``current_zones`` as ``zones`` and
its sub label, plate and attributes as ``tags`` (``person:alice``,
``plate:ab123cd``, ``face``). ``end`` events (the object left) and false
positives are skipped; malformed payloads are skipped and counted. Review items
(``<prefix>/reviews``) and recognised faces and plates
(``<prefix>/tracked_object_update``) are detections too: see
:mod:`sources.frigate_messages`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import orjson
import reactivex
from reactivex import Observable
from reactivex import operators as ops

from pipeline.core.config import FrigateDetectConfig
from pipeline.core.detection import Detection
from sources.frigate_messages import FrigateMessages
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
        size = (w, h) if w is not None and h is not None else None
        self.messages = FrigateMessages(
            self.cameras,
            frame_size={c: size for c in self.cameras} if size is not None else None,
            include_false_positives=config.include_false_positives,
            reviews=config.reviews,
        )

    def parse(self, payload: bytes | str) -> Detection | None:
        """Return the detection in an ``events`` payload, or ``None`` when it is skipped."""
        d = self._parse(self.messages.event, payload)
        return d if isinstance(d, Detection) else None

    def parse_review(self, payload: bytes | str) -> list[Detection]:
        """Return the detections of a ``reviews`` payload (one per object; none when skipped)."""
        found = self._parse(self.messages.review, payload)
        return found if isinstance(found, list) else []

    def parse_object_update(self, payload: bytes | str) -> Detection | None:
        """Return the detection of a ``tracked_object_update`` face or plate payload."""
        d = self._parse(self.messages.object_update, payload)
        return d if isinstance(d, Detection) else None

    def _parse(self, how: Callable[[Any], Any], payload: bytes | str) -> Any:
        try:
            return how(orjson.loads(payload))
        except (orjson.JSONDecodeError, TypeError, ValueError, KeyError, IndexError) as exc:
            with self._lock:
                self.malformed += 1
            log.debug("skipping malformed Frigate message: %s", type(exc).__name__)
            return None


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
        A cold observable; each subscription subscribes to ``<prefix>/events``,
        ``<prefix>/reviews`` (unless ``reviews = "off"``) and
        ``<prefix>/tracked_object_update`` (with ``object_updates``).
        Detections arrive on the MQTT network thread.
    """
    prefix = config.topic_prefix.rstrip("/")
    parser = FrigateEventParser(config, {config.camera or camera: camera})
    streams = [frigate_events(f"{prefix}/events", parser, subscribe, unsubscribe)]
    if config.reviews != "off":

        def review(message: tuple[str, bytes]) -> list[Detection]:
            return parser.parse_review(message[1])

        reviews = mqtt_messages(f"{prefix}/reviews", subscribe, unsubscribe)
        streams.append(reviews.pipe(ops.flat_map(review)))
    if config.object_updates:

        def update(message: tuple[str, bytes]) -> list[Detection]:
            d = parser.parse_object_update(message[1])
            return [d] if d is not None else []

        updates = mqtt_messages(f"{prefix}/tracked_object_update", subscribe, unsubscribe)
        streams.append(updates.pipe(ops.flat_map(update)))
    return reactivex.merge(*streams)


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
