"""From Lookout's events to rows of the activity store, as pure functions.

Example:
    >>> from pipeline.core.events import CameraState
    >>> e = camera_entry(CameraState(camera="porch", online=False, last_error="refused", since=5))
    >>> e.kind, e.answer, e.text
    ('camera', 'offline', 'refused')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from pipeline.core.events import Alert, CameraState, Caption, LookRecord, WatchState

PICTURE_NONE = ""
"""``Entry.picture_kind`` of an entry without a picture."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One row to write: what happened, and the JPEG to keep with it (if any).

    Attributes:
        time: epoch seconds (scheduler time for looks; virtual in replays and tests).
        kind: look, alert, state, camera or caption.
        camera, watch, job_id: who it is about (``None`` where it does not apply).
        trigger: what started a look or caption (start, timer, wake).
        answer: a look's answer kind, a state's status, a camera's online/offline.
        text: the reasoning, caption or error: what search finds.
        message: the notification message (alerts, met looks).
        next_look: seconds to the next look.
        latency: seconds the model took.
        data: more fields, stored as JSON.
        jpeg: the picture; kept as a thumbnail (``thumbnail``) or whole.
        thumbnail: True: keep a small copy of ``jpeg`` (looks, captions);
            False: keep ``jpeg`` itself (alerts).
        small: that small copy, when the look made it from its frame
            (``LookRecord.thumbnail``); without it the store shrinks ``jpeg``.
    """

    time: float
    kind: str
    camera: str | None = None
    watch: str | None = None
    job_id: str | None = None
    trigger: str | None = None
    answer: str | None = None
    text: str = ""
    message: str = ""
    next_look: float | None = None
    latency: float | None = None
    data: dict[str, Any] | None = None
    jpeg: bytes | None = field(default=None, repr=False, compare=False)
    thumbnail: bool = True
    small: bytes | None = field(default=None, repr=False, compare=False)

    def data_json(self) -> str | None:
        """``data`` as JSON text (``None`` when empty)."""
        return orjson.dumps(self.data).decode() if self.data else None


def look_entry(look: LookRecord, camera: str | None) -> Entry:
    """A look: its trigger, answer kind, reasoning (or error), next look and latency."""
    v = look.verdict
    camera = camera or (look.frame or {}).get("camera")
    return Entry(
        time=look.time,
        kind="look",
        camera=camera,
        watch=look.watch,
        job_id=look.job_id,
        trigger=look.trigger,
        answer=str(v.kind.value),
        text=v.reasoning or v.error or "",
        message=v.notification_message or "",
        next_look=v.next_run_in,
        latency=v.latency_s,
        data={"error": v.error} if v.error and v.reasoning else None,
        jpeg=look.jpeg,
        small=look.thumbnail,
    )


def alert_entry(alert: Alert) -> Entry:
    """An alert, with its picture kept whole."""
    return Entry(
        time=alert.time,
        kind="alert",
        camera=alert.camera,
        watch=alert.watch,
        job_id=alert.job_id,
        answer="alert",
        text=alert.reasoning,
        message=alert.message,
        data={
            "event_id": alert.event_id,
            "condition": alert.condition,
            "look_count": alert.look_count,
        },
        jpeg=alert.jpeg,
        thumbnail=False,
    )


def state_entry(state: WatchState, time: float) -> Entry:
    """A watch's status change (queued, running, success, failed, cancelled)."""
    return Entry(
        time=time,
        kind="state",
        camera=state.camera,
        watch=state.name,
        job_id=state.id,
        answer=state.status.value,
        text=state.error_message or state.last_reasoning or "",
        message=state.notification_message or "",
        next_look=state.next_look_in,
        data={"condition": state.condition, "iterations": state.iterations, "alerts": state.alerts},
    )


def camera_entry(state: CameraState, time: float | None = None) -> Entry:
    """A camera going online or offline (with why, when offline)."""
    return Entry(
        time=state.since if state.since is not None else (time or 0.0),
        kind="camera",
        camera=state.camera,
        answer="online" if state.online else "offline",
        text=state.last_error or "" if not state.online else "",
        data={"reconnects": state.reconnects},
    )


def caption_entry(caption: Caption) -> Entry:
    """A caption of a camera's picture, with a thumbnail."""
    return Entry(
        time=caption.time,
        kind="caption",
        camera=caption.camera,
        trigger=caption.trigger,
        answer="error" if caption.error else "caption",
        text=caption.text or caption.error or "",
        latency=caption.latency_s,
        data={"backend": caption.backend},
        jpeg=caption.jpeg,
    )
