"""What Lookout publishes: alerts, watch state and camera state.

All three are frozen dataclasses that serialize with orjson via ``to_json()``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson


def iso_time(epoch_s: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC string (``None`` stays ``None``).

    Example:
        >>> iso_time(0)
        '1970-01-01T00:00:00+00:00'
    """
    if epoch_s is None:
        return None
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat()


class WatchStatus(StrEnum):
    """The lifecycle of a watch (the baseline's job states)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def ended(self) -> bool:
        """Whether this is a final state."""
        return self in (WatchStatus.SUCCESS, WatchStatus.FAILED, WatchStatus.CANCELLED)


def _json(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)


@dataclass(frozen=True, slots=True)
class Alert:
    """A watch's condition was met.

    Example:
        >>> a = Alert(event_id="e1", watch="porch", job_id="j1", camera="front",
        ...           condition="a package is on the porch", message="Package!",
        ...           reasoning="A box by the door.", time=0.0, look_count=3)
        >>> b'"message":"Package!"' in a.to_json()
        True

    Attributes:
        event_id: unique per alert; the same id on every redelivery.
        watch: watch name.
        job_id: the id of the watch run that alerted.
        camera: camera name.
        condition: the watch's condition, in the user's words.
        message: the notification message, else the reasoning.
        reasoning: the model's reasoning.
        time: epoch seconds of the judged look.
        look_count: looks the watch had made when it alerted.
        frame: reference to the judged frame (camera, seq, times).
        snapshot_path: where a snapshot sink saved the judged frame, if any.
    """

    event_id: str
    watch: str
    job_id: str
    camera: str
    condition: str
    message: str
    reasoning: str
    time: float
    look_count: int
    frame: dict[str, Any] | None = None
    snapshot_path: str | None = None
    jpeg: bytes | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (without the JPEG bytes)."""
        return {
            "event_id": self.event_id,
            "watch": self.watch,
            "job_id": self.job_id,
            "camera": self.camera,
            "condition": self.condition,
            "message": self.message,
            "reasoning": self.reasoning,
            "time": iso_time(self.time),
            "timestamp": self.time,
            "look_count": self.look_count,
            "frame": self.frame,
            "snapshot_path": self.snapshot_path,
        }

    def to_json(self) -> bytes:
        """The alert as JSON bytes."""
        return _json(self.to_dict())

    def frigate_notification(self) -> dict[str, Any]:
        """The baseline's notification payload (Frigate's ``camera_monitoring``)."""
        return {
            "camera": self.camera,
            "condition": self.condition,
            "message": self.message,
            "reasoning": self.reasoning,
            "job_id": self.job_id,
        }

    def with_snapshot(self, path: str) -> Alert:
        """A copy that records where the snapshot was saved."""
        return dataclasses.replace(self, snapshot_path=path)


@dataclass(frozen=True, slots=True)
class WatchState:
    """The state record of one watch run, broadcast on every change.

    Attributes:
        id: the run's job id.
        name: watch name.
        camera, condition, labels, zones: what the watch looks for.
        status: queued, running, success, failed or cancelled.
        started_at, ended_at: epoch seconds.
        iterations: looks made so far.
        last_reasoning: the model's latest reasoning.
        notification_message: the message of the alert, once met.
        error_message: why the run failed; while it runs, why its last look got no
            answer (``vlm: unauthorized: check the API key (HTTP 401)``), else None.
        last_answer: the kind of the latest answer (``met``, ``unparseable``...).
        next_look_in: seconds until the next planned look.
        alerts: alerts sent by this run (more than one in ``repeat`` mode).
        looks_last_hour: looks in the last hour (for the per-watch budget).
        condition_met: whether the latest answer said the condition holds.
        budget_tokens: looks the refilling look budget allows now (``None``
            without a budget, ``max_looks_per_hour``).
        budget_per_hour: its refill rate, looks an hour.
        budget_exhausted_at: epoch seconds when it last ran dry (``None``
            while a look is allowed): looks wait for it from then on.
        looks_deferred: looks that had to wait for the budget so far.
        restarts: times this run was started again elsewhere after its process
            was lost (cluster mode: its node died); the job id stays the same.
    """

    id: str
    name: str
    camera: str
    condition: str
    labels: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()
    status: WatchStatus = WatchStatus.QUEUED
    started_at: float | None = None
    ended_at: float | None = None
    iterations: int = 0
    last_reasoning: str | None = None
    notification_message: str | None = None
    error_message: str | None = None
    last_answer: str | None = None
    next_look_in: float | None = None
    alerts: int = 0
    looks_last_hour: int = 0
    condition_met: bool = False
    budget_tokens: float | None = None
    budget_per_hour: int | None = None
    budget_exhausted_at: float | None = None
    looks_deferred: int = 0
    restarts: int = 0

    def evolve(self, **changes: Any) -> WatchState:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        d = dataclasses.asdict(self)
        d["status"] = self.status.value
        d["labels"] = list(self.labels)
        d["zones"] = list(self.zones)
        d["start_time"] = iso_time(self.started_at)
        d["end_time"] = iso_time(self.ended_at)
        return d

    def to_json(self) -> bytes:
        """The state as JSON bytes."""
        return _json(self.to_dict())


@dataclass(frozen=True, slots=True)
class CameraState:
    """Connection state of one camera (published retained).

    Attributes:
        camera: camera name.
        online: whether frames are flowing.
        reconnects: reconnect attempts since start.
        last_error: the latest error, already free of credentials.
        since: epoch seconds of the latest change.
    """

    camera: str
    online: bool
    reconnects: int = 0
    last_error: str | None = None
    since: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "camera": self.camera,
            "state": "online" if self.online else "offline",
            "online": self.online,
            "reconnects": self.reconnects,
            "last_error": self.last_error,
            "since": iso_time(self.since),
        }

    def to_json(self) -> bytes:
        """The state as JSON bytes."""
        return _json(self.to_dict())


@dataclass(frozen=True, slots=True)
class LookRecord:
    """One look a watch made: when, why, what it saw and concluded (for metrics and replays).

    Attributes:
        watch: watch name.
        job_id: the run's job id.
        time: scheduler time of the look (epoch seconds, or virtual seconds in replays).
        trigger: ``timer`` or ``wake``.
        verdict: the outcome (its ``kind``, ``next_run_in``, latency...).
        frame: reference to the judged frame, if there was one.
        jpeg: the JPEG that was judged (kept for alert snapshots and reports).
        frame_kind: ``keyframe`` when the judged picture was a keyframe's (what
            a timer look takes to spare a decode), ``inter`` for any other
            picture (decoded from its GOP: what a wake takes); ``None`` without
            a frame.
        lateness_s: seconds from when the look was due to when its frame was
            taken (waiting for a decode, or for the next keyframe).
        frame_age_s: how old the frame was when taken (seconds since its
            packet arrived).
        thumbnail: a small JPEG of the judged frame, made from the decoded
            picture by the look (what the activity store keeps; without one it
            shrinks ``jpeg``).
    """

    watch: str
    job_id: str
    time: float
    trigger: str
    verdict: Any  # pipeline.core.verdict.Verdict (kept loose to avoid an import cycle)
    frame: dict[str, Any] | None = None
    jpeg: bytes | None = field(default=None, repr=False, compare=False)
    frame_kind: str | None = None
    lateness_s: float | None = None
    frame_age_s: float | None = None
    thumbnail: bytes | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (without the JPEG bytes)."""
        return {
            "watch": self.watch,
            "job_id": self.job_id,
            "time": self.time,
            "trigger": self.trigger,
            "verdict": self.verdict.to_dict(),
            "frame": self.frame,
            "frame_kind": self.frame_kind,
            "lateness_s": self.lateness_s,
            "frame_age_s": self.frame_age_s,
        }


@dataclass(frozen=True, slots=True)
class Caption:
    """A backend's description of a camera's picture (``[cameras.NAME.captions]``).

    Example:
        >>> c = Caption(camera="porch", time=0.0, text="A cat on the mat.", backend="vlm")
        >>> c.to_dict()["time"]
        '1970-01-01T00:00:00+00:00'

    Attributes:
        camera: camera name.
        time: epoch seconds of the picture.
        text: the description (empty when ``error`` says why there is none).
        backend: the backend that described it.
        trigger: ``timer`` or ``wake``.
        latency_s: seconds the backend took.
        error: why there is no description, if so.
        jpeg: the picture that was described.
    """

    camera: str
    time: float
    text: str
    backend: str = ""
    trigger: str = "timer"
    latency_s: float = 0.0
    error: str | None = None
    jpeg: bytes | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (without the JPEG bytes)."""
        return {
            "camera": self.camera,
            "caption": self.text,
            "time": iso_time(self.time),
            "timestamp": self.time,
            "backend": self.backend,
            "trigger": self.trigger,
            "latency_s": self.latency_s,
            "error": self.error,
        }

    def to_json(self) -> bytes:
        """The caption as JSON bytes."""
        return _json(self.to_dict())


WatchEvent = Alert | WatchState | LookRecord
"""What a running watch emits: its state changes, its looks, and its alerts."""
