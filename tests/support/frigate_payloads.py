"""Frigate MQTT payloads shaped as Frigate documents them.

Source: Frigate's documentation, "Integrations > MQTT" (docs.frigate.video/integrations/mqtt,
Frigate 0.14 to 0.16): ``frigate/events`` (with ``sub_label`` as ``["John Smith", 0.79]``,
``attributes`` as ``{"face": 0.86}`` and ``current_attributes``), ``frigate/reviews``
(``severity``, ``data.objects``, ``data.sub_labels``, ``data.zones``) and
``frigate/tracked_object_update`` (``type`` ``face``, ``lpr`` or ``description``).
"""

from __future__ import annotations

from typing import Any

import orjson

EVENT_ID = "1607123955.475377-mxklsc"
REVIEW_ID = "1718987129.308396-fqk5ka"


def event(kind: str = "update", camera: str = "front_door", **after: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": EVENT_ID,
        "camera": camera,
        "frame_time": 1607123962.082975,
        "snapshot_time": 1607123961.837752,
        "label": "person",
        "sub_label": ["John Smith", 0.79],
        "top_score": 0.958984375,
        "false_positive": False,
        "start_time": 1607123955.475377,
        "end_time": None,
        "score": 0.87890625,
        "box": [432, 496, 544, 854],
        "area": 40096,
        "ratio": 1.251397,
        "region": [218, 440, 693, 915],
        "current_zones": ["yard", "driveway"],
        "entered_zones": ["yard", "driveway"],
        "thumbnail": None,
        "has_snapshot": False,
        "has_clip": False,
        "active": True,
        "stationary": False,
        "motionless_count": 0,
        "position_changes": 2,
        "attributes": {"face": 0.86},
        "current_attributes": [{"label": "face", "box": [442, 506, 534, 524], "score": 0.86}],
    }
    obj.update(after)
    before = {**obj, "sub_label": None, "attributes": {"face": 0.64}, "current_attributes": []}
    return {"type": kind, "before": before, "after": obj}


def review(
    kind: str = "update",
    camera: str = "front_cam",
    severity: str = "alert",
    **data: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "detections": [
            "1718987128.947436-g92ztx",
            "1718987148.879516-d7oq7r",
            "1718987126.934663-q5ywpt",
        ],
        "objects": ["person", "car"],
        "sub_labels": ["Bob"],
        "zones": ["front_yard"],
        "audio": [],
    }
    body.update(data)
    after = {
        "id": REVIEW_ID,
        "camera": camera,
        "start_time": 1718987129.308396,
        "end_time": None,
        "severity": severity,
        "thumb_path": f"/media/frigate/clips/review/thumb-{camera}-{REVIEW_ID}.webp",
        "data": body,
    }
    before = {**after, "severity": "detection", "data": {**body, "sub_labels": [], "zones": []}}
    return {"type": kind, "before": before, "after": after}


def face(camera: str = "front_door", name: str | None = "John", **more: Any) -> dict[str, Any]:
    return {
        "type": "face",
        "id": EVENT_ID,
        "name": name,
        "score": 0.95,
        "camera": camera,
        "timestamp": 1607123958.748393,
        **more,
    }


def lpr(camera: str = "driveway_cam", **more: Any) -> dict[str, Any]:
    return {
        "type": "lpr",
        "id": "1607123955.475377-plate1",
        "name": "John's Car",
        "plate": "123ABC",
        "score": 0.95,
        "camera": camera,
        "timestamp": 1607123958.748393,
        **more,
    }


def description(camera: str = "front_door") -> dict[str, Any]:
    return {
        "type": "description",
        "id": EVENT_ID,
        "description": "The car is a red sedan moving away from the camera.",
        "camera": camera,
    }


def dumps(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message)
