"""Frigate's MQTT messages as detections: tracked objects, review items, faces and plates.

Shapes as Frigate documents them (docs.frigate.video, "MQTT", Frigate 0.14-0.16):

- ``<prefix>/events``: ``{"type": "new"|"update"|"end", "before": {...}, "after":
  {"id", "camera", "label", "sub_label": null | "Bob" | ["Bob", 0.79], "score",
  "box", "frame_time", "current_zones", "attributes": {"face": 0.86},
  "current_attributes": [{"label", "box", "score"}], "recognized_license_plate"...}}``;
- ``<prefix>/reviews``: ``{"type", "before", "after": {"id", "camera", "start_time",
  "end_time", "severity": "alert"|"detection", "data": {"detections": [event ids],
  "objects": ["person", "car"], "sub_labels": ["Bob"], "zones": ["front_yard"]}}}``;
- ``<prefix>/tracked_object_update``: ``{"type": "face", "id", "name", "score",
  "camera", "timestamp"}`` and ``{"type": "lpr", "id", "name", "plate", "score",
  "camera", "timestamp"}`` (``description`` updates carry no detection).

Each becomes :class:`~pipeline.core.detection.Detection` (``source = "frigate"``)
whose ``tags`` let label filters ask for who or what it is: ``person:bob`` (a sub
label: a recognised face, a known plate's name), ``plate:ab123cd`` (a read plate,
letters and digits only, lower case) and the names of Frigate's attributes
(``face``, ``license_plate``). A review item gives one detection per object, with
the review's zones and no box (``Box(0, 0, 0, 0)``): it wakes watches by label and
zone. A face or plate update takes the box and zones of the object's latest event.

Example:
    >>> m = FrigateMessages({"front_door": "porch"})
    >>> d = m.event({"type": "update", "after": {"id": "1.2-abc", "camera": "front_door",
    ...     "label": "person", "sub_label": ["Alice", 0.9], "score": 0.8,
    ...     "box": [10, 20, 50, 120], "frame_time": 5.0, "current_zones": ["steps"]}})
    >>> d.label, d.tags, d.zones
    ('person', ('person:alice',), ('steps',))
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from pipeline.core.detection import Box, Detection

NO_BOX = Box(0.0, 0.0, 0.0, 0.0)
"""The box of a detection that has none (a review item): zones come from Frigate."""
REMEMBERED = 1024
"""Tracked objects whose latest event is kept, for the face and plate updates that follow."""
_PLATE = re.compile(r"[^0-9a-z]")


def plate_tag(plate: str) -> str:
    """The tag of a read licence plate: ``plate:`` and its letters and digits, lower case.

    Example:
        >>> plate_tag("AB-123 CD")
        'plate:ab123cd'
    """
    return "plate:" + _PLATE.sub("", plate.lower())


def _name(value: Any) -> str | None:
    """A sub label or plate as Frigate sends it: null, ``"Bob"`` or ``["Bob", 0.79]``."""
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _attributes(after: dict[str, Any]) -> list[str]:
    """Names of the attributes Frigate saw on an object (``face``, ``license_plate``)."""
    names: list[str] = []
    attrs = after.get("attributes")
    if isinstance(attrs, dict):
        names.extend(str(k) for k in attrs)
    elif isinstance(attrs, list):
        names.extend(str(a.get("label")) for a in attrs if isinstance(a, dict) and a.get("label"))
    for a in after.get("current_attributes") or []:
        if isinstance(a, dict) and a.get("label"):
            names.append(str(a["label"]))
    return names


def event_tags(label: str, after: dict[str, Any]) -> tuple[str, ...]:
    """The tags of one tracked object in an events message.

    Example:
        >>> event_tags("car", {"sub_label": "Dad's car", "recognized_license_plate": "AB123",
        ...                    "attributes": {"license_plate": 0.9}})
        ("car:dad's car", 'plate:ab123', 'license_plate')
    """
    tags: list[str] = []
    sub = _name(after.get("sub_label"))
    if sub:
        tags.append(f"{label}:{sub}".lower())
    plate = _name(after.get("recognized_license_plate"))
    if plate:
        tags.append(plate_tag(plate))
    tags.extend(a.lower() for a in _attributes(after))
    return _unique(tags)


def _unique(tags: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for t in tags if t))


class FrigateMessages:
    """Turn Frigate's three detection topics into detections (plain class, thread-safe enough).

    Args:
        cameras: Frigate camera name -> Lookout camera name; others are skipped.
        frame_size: ``(width, height)`` of Frigate's detect stream per Frigate camera,
            when known (boxes are in its pixels).
        include_false_positives: keep events Frigate marks as false positives.
        reviews: which review items count: ``all``, ``alerts`` or ``off``.
        clock: epoch seconds, the time of a review item (it has no frame time).
    """

    def __init__(
        self,
        cameras: dict[str, str],
        *,
        frame_size: dict[str, tuple[int, int]] | None = None,
        include_false_positives: bool = False,
        reviews: str = "all",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cameras = dict(cameras)
        self.frame_size = dict(frame_size or {})
        self.include_false_positives = include_false_positives
        self.reviews = reviews
        self._clock = clock
        self._latest: OrderedDict[str, Detection] = OrderedDict()
        self._lock = threading.Lock()

    def event(self, message: Any) -> Detection | None:
        """The detection of one ``events`` message (None: skipped).

        Raises:
            TypeError, ValueError, KeyError, IndexError: a malformed message.
        """
        with self._lock:
            return self._event(message)

    def review(self, message: Any) -> list[Detection]:
        """The detections of one ``reviews`` message: one per object (none for ``end``).

        Raises:
            TypeError, ValueError, KeyError: a malformed message.
        """
        with self._lock:
            return self._review(message)

    def object_update(self, message: Any) -> Detection | None:
        """The detection of a ``tracked_object_update`` face or plate (None: other kinds).

        Raises:
            TypeError, ValueError: a malformed message.
        """
        with self._lock:
            return self._object_update(message)

    def _remember(self, d: Detection) -> None:
        if d.object_id is None:
            return
        self._latest[d.object_id] = d
        self._latest.move_to_end(d.object_id)
        while len(self._latest) > REMEMBERED:
            self._latest.popitem(last=False)

    def _event(self, message: Any) -> Detection | None:
        if not isinstance(message, dict):
            raise TypeError("event is not an object")
        kind = message.get("type")
        after = message.get("after")
        if not isinstance(after, dict):
            raise TypeError("event has no 'after' object")
        frigate_camera = str(after.get("camera"))
        camera = self.cameras.get(frigate_camera)
        if camera is None:
            return None
        oid = str(after["id"]) if after.get("id") is not None else None
        if kind == "end":
            if oid is not None:
                self._latest.pop(oid, None)
            return None
        if after.get("false_positive") and not self.include_false_positives:
            return None
        x1, y1, x2, y2 = (float(v) for v in after["box"])
        score = after.get("score")
        if score is None:
            score = after.get("top_score", 1.0)
        label = str(after["label"])
        known = self._latest.get(oid) if oid is not None else None
        tags = event_tags(label, after) + (known.tags if known is not None else ())
        d = Detection(
            camera=camera,
            label=label,
            score=min(1.0, max(0.0, float(score))),
            box=Box(x1, y1, x2, y2),
            time=float(after.get("frame_time") or message.get("frame_time") or 0.0),
            frame_size=self.frame_size.get(frigate_camera),
            object_id=oid,
            zones=tuple(str(z) for z in after.get("current_zones") or []),
            source="frigate",
            stationary=bool(after.get("stationary", False)),
            event=str(kind) if kind is not None else None,
            extra={"entered_zones": list(after.get("entered_zones") or [])},
            tags=_unique(tags),
        )
        self._remember(d)
        return d

    def _review(self, message: Any) -> list[Detection]:
        if not isinstance(message, dict):
            raise TypeError("review is not an object")
        after = message.get("after")
        if not isinstance(after, dict) or not isinstance(after.get("data"), dict):
            raise TypeError("review has no 'after.data' object")
        camera = self.cameras.get(str(after.get("camera")))
        severity = str(after.get("severity"))
        if camera is None or message.get("type") == "end" or self.reviews == "off":
            return []
        if self.reviews == "alerts" and severity != "alert":
            return []
        data = after["data"]
        zones = tuple(str(z) for z in data.get("zones") or [])
        subs = [s for s in (_name(v) for v in data.get("sub_labels") or []) if s]
        now = self._clock()
        return [
            Detection(
                camera=camera,
                label=str(obj),
                score=1.0,
                box=NO_BOX,
                time=now,
                object_id=f"review:{after['id']}:{obj}",
                zones=zones,
                source="frigate",
                event=f"review.{message.get('type')}",
                extra={"severity": severity, "review_id": str(after["id"])},
                tags=_unique(f"{obj}:{s}".lower() for s in subs),
            )
            for obj in dict.fromkeys(str(o) for o in data.get("objects") or [])
        ]

    def _object_update(self, message: Any) -> Detection | None:
        if not isinstance(message, dict):
            raise TypeError("update is not an object")
        kind = message.get("type")
        if kind not in ("face", "lpr"):
            return None
        camera = self.cameras.get(str(message.get("camera")))
        if camera is None:
            return None
        oid = str(message["id"]) if message.get("id") is not None else None
        known = self._latest.get(oid) if oid is not None else None
        label = known.label if known is not None else ("person" if kind == "face" else "car")
        name = _name(message.get("name"))
        tags = [f"{label}:{name}".lower()] if name else []
        if kind == "face":
            tags.append("face")
        else:
            plate = _name(message.get("plate"))
            tags += [plate_tag(plate), "license_plate"] if plate else ["license_plate"]
        score = message.get("score")
        d = Detection(
            camera=camera,
            label=label,
            score=min(1.0, max(0.0, float(score))) if score is not None else 1.0,
            box=known.box if known is not None else NO_BOX,
            time=float(message.get("timestamp") or self._clock()),
            frame_size=known.frame_size if known is not None else None,
            object_id=oid,
            zones=known.zones if known is not None else (),
            source="frigate",
            stationary=known.stationary if known is not None else False,
            event=f"object_update.{kind}",
            tags=_unique([*tags, *(known.tags if known is not None else ())]),
        )
        self._remember(d)
        return d
