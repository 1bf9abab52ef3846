"""One look of a watch: take a frame, encode it, ask the backend, remember the turn.

:class:`Looker` is the blocking function that
:func:`operators.sampler.adaptive_sampler` calls for each look; what it
returns, a :class:`Look`, goes on to the verdicts. It never raises for a
look's faults: no frame, a model fault or an exception each become a failed
verdict. Until the camera has given a first frame, each look waits up to
``first_frame_timeout_s`` for one (a camera still connecting: the look comes as
soon as a picture is there); after that, ``FRAME_WAIT_S``.

Example:
    >>> looker = Looker(spec, "job1", frames=camera, backend=vlm,
    ...                 scheduler=s)  # doctest: +SKIP
    >>> looker("start", due=0.0).verdict.kind  # doctest: +SKIP
    <AnswerKind.NOT_MET: 'not_met'>
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from reactivex import abc

from operators.backends.base import Backend, LookRequest
from operators.clock import now_s
from operators.encode import encode_jpeg
from operators.frame_selector import FrameSelector, FreshestFrame
from operators.history import History
from operators.sampler import Trigger
from operators.watch_spec import WatchSpec
from pipeline.core.detection import Detection
from pipeline.core.frame import Frame, FrameProvider
from pipeline.core.logs import log_unexpected
from pipeline.core.redact import redact
from pipeline.core.verdict import AnswerKind, Verdict

log = logging.getLogger("lookout.look")

FRAME_WAIT_S = 2.0
"""How long a look waits for a frame before it counts as "no frame"."""
FIRST_FRAME_WAIT_S = 10.0
"""How long a look waits while the camera has given no frame yet (it may still be connecting)."""
RECENT_DETECTIONS_S = 10.0
"""Matching detections this recent are passed to the backend with a look."""
RECENT_DETECTIONS_MAX = 20
THUMBNAIL_QUALITY = 70
"""JPEG quality of a look's thumbnail."""


@dataclass(frozen=True, slots=True)
class Look:
    """What one blocking look produced.

    Attributes:
        trigger: why it looked (``start``, ``timer``, ``wake``).
        time: scheduler time when the look began (epoch seconds).
        verdict: the backend's verdict, or a failed one.
        frame: the frame judged (``None``: there was none).
        jpeg: that frame as sent.
        due: scheduler time the look was due (``time`` when unknown).
        taken: scheduler time the frame was taken (``None``: no frame). The
            look's lateness is ``taken - due``.
        thumbnail: a small JPEG of the frame (``Looker``'s ``thumbnail_height``
            high), for the activity store; ``None`` when not asked for or
            without a frame.
    """

    trigger: str
    time: float
    verdict: Verdict
    frame: Frame | None
    jpeg: bytes | None
    due: float | None = None
    taken: float | None = None
    thumbnail: bytes | None = None


def frame_clock(epoch_s: float) -> str:
    """Return ``HH:MM:SS`` in local time, as in the user turn "Frame captured at HH:MM:SS."."""
    return datetime.fromtimestamp(epoch_s).strftime("%H:%M:%S")


class RecentMatches:
    """The latest matching detections (thread-safe), for the backend's ``LookRequest``.

    Example:
        >>> from pipeline.core.detection import Box
        >>> r = RecentMatches()
        >>> r.add(Detection("c", "cat", 0.9, Box(0, 0, 1, 1), time=1.0))
        >>> len(r.since(0.0)), len(r.since(5.0))
        (1, 0)
    """

    def __init__(self, maxlen: int = RECENT_DETECTIONS_MAX) -> None:
        self._lock = threading.Lock()
        self._items: deque[Detection] = deque(maxlen=maxlen)

    def add(self, detection: Detection) -> None:
        """Remember one matching detection."""
        with self._lock:
            self._items.append(detection)

    def since(self, t: float) -> tuple[Detection, ...]:
        """The remembered detections seen at ``t`` or later."""
        with self._lock:
            return tuple(d for d in self._items if d.time >= t)


class Looker:
    """The blocking look of one watch run (called on the look scheduler, one look at a time).

    Args:
        spec: the watch.
        job_id: the run's id (passed to the backend).
        frames: the camera.
        backend: judges the frame (blocking; never raises for model faults).
        scheduler: the watch's clock (look times).
        history: the conversation so far (a look adds its turn).
        recent: the matching detections to pass along.
        selector: which frame a look takes (default: the freshest).
        first_frame_timeout_s: how long a look waits while the camera has given
            no frame yet.
        thumbnail_height: each look also makes a JPEG of its frame this many
            pixels high (``Look.thumbnail``) for the activity store's timeline;
            ``None``: none.
    """

    def __init__(
        self,
        spec: WatchSpec,
        job_id: str,
        *,
        frames: FrameProvider,
        backend: Backend,
        scheduler: abc.SchedulerBase,
        history: History | None = None,
        recent: RecentMatches | None = None,
        selector: FrameSelector | None = None,
        first_frame_timeout_s: float = FIRST_FRAME_WAIT_S,
        thumbnail_height: int | None = None,
    ) -> None:
        if first_frame_timeout_s < 0:
            raise ValueError(
                f"first_frame_timeout_s must not be negative, got {first_frame_timeout_s}."
            )
        if thumbnail_height is not None and thumbnail_height < 1:
            raise ValueError(f"thumbnail_height must be positive, got {thumbnail_height}.")
        self.thumbnail_height = thumbnail_height
        self.spec = spec
        self.job_id = job_id
        self.frames = frames
        self.backend = backend
        self.sched = scheduler
        if history is None:
            history = History(spec.history_turns, spec.history_images)
        self.history = history
        self.recent = recent if recent is not None else RecentMatches()
        self.selector = selector or FreshestFrame()
        self.first_frame_timeout_s = first_frame_timeout_s
        self.seen_frame = False

    def __call__(self, trigger: Trigger, due: float) -> Look:
        """Look once; never raises (a fault becomes a failed verdict)."""
        t = now_s(self.sched)
        frame: Frame | None = None
        jpeg: bytes | None = None
        taken: float | None = None
        try:
            wait = FRAME_WAIT_S if self.seen_frame else self.first_frame_timeout_s
            frame = self.selector.select(self.frames, trigger, due, wait)
            taken = None if frame is None else now_s(self.sched)
            if frame is None:
                verdict = Verdict.failed(
                    AnswerKind.NO_FRAME, f"no frame from camera {self.spec.camera!r}"
                )
            else:
                self.seen_frame = True
                jpeg = encode_jpeg(frame, self.spec.image_max_height, self.spec.jpeg_quality)
                verdict = self._judge(frame, jpeg, t)
        except Exception as exc:
            log_unexpected(log, f"watch {self.spec.name}: the look failed", exc)
            verdict = Verdict.failed(AnswerKind.ERROR, redact(f"{type(exc).__name__}: {exc}"))
        thumbnail = self._thumbnail(frame) if frame is not None and jpeg is not None else None
        return Look(trigger, t, verdict, frame, jpeg, due, taken, thumbnail)

    def _thumbnail(self, frame: Frame) -> bytes | None:
        """The frame as a small JPEG, made from its decoded picture (no JPEG decoded again)."""
        height = self.thumbnail_height
        if height is None:
            return None
        try:
            return encode_jpeg(frame, height, THUMBNAIL_QUALITY)
        except Exception as exc:  # the look stands without its thumbnail
            log_unexpected(log, f"watch {self.spec.name}: no thumbnail of the look", exc)
            return None

    def _judge(self, frame: Frame, jpeg: bytes, t: float) -> Verdict:
        spec = self.spec
        user_text = f"Frame captured at {frame_clock(frame.wall_time)}."
        request = LookRequest(
            watch=spec.name,
            job_id=self.job_id,
            camera=spec.camera,
            condition=spec.condition,
            labels=tuple(spec.labels),
            zones=tuple(spec.zones),
            frame=frame,
            jpeg=jpeg,
            user_text=user_text,
            history=self.history.turns(),
            detections=self.recent.since(t - RECENT_DETECTIONS_S),
            time=t,
        )
        verdict = self.backend.judge(request)
        self.history.record(user_text, jpeg, verdict)
        return verdict
