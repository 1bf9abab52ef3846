"""The ``news`` wake policy: wake a watch when its zones hold news for the model.

:class:`NewsPolicy` ties a :class:`~operators.scene.SceneModel` (occupancy of
each picture) to a :class:`~operators.news.NewsTracker` (occupancy against
the picture the model judged last) for one watch; :func:`news_wakes` is the
Rx stage that turns the camera's pictures (and the watch's matching
detections, as evidence) into wakes::

    pictures (the detector's rate) --> occupancy --> news? --> wake (with its reason)
    matching detections ------------> evidence (growth needs one)
    each look's frame --------------> judged: the new reference

Times are frame times (``Frame.wall_time``, ``Detection.time``), so a replay
decoded faster than real time behaves as a live camera would.

Example:
    >>> policy = NewsPolicy(zones=[("drop", drop_zone)])  # doctest: +SKIP
    >>> wakes = news_wakes(policy, camera.frames(5), matches)  # doctest: +SKIP
    >>> # on each look: policy.judged(frame)
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable

from operators.news import Decision, NewsSettings, NewsTracker, ObjectNews
from operators.scene import (
    Chroma,
    Grey,
    Mask,
    Occupancy,
    SceneModel,
    SceneSettings,
    thumbnail,
    zone_mask,
)
from operators.stillness import changed_cells
from operators.wake_policy import WakeContext, WakeDecision
from operators.zone_geometry import ZoneInput
from pipeline.core.detection import Detection
from pipeline.core.frame import Frame


@dataclass(frozen=True, slots=True)
class NewsStats:
    """What the policy did so far (for the watch state, metrics and replays).

    Attributes:
        pictures: pictures measured.
        woken: wakes by reason (``entered``, ``more``, ``less``, ``left``).
        dropped: changes that were not news, by reason (``brief``, ``no detection``).
        area: occupancy of the latest picture.
        reference: occupancy of the picture the model judged last.
        decisions: the latest decisions, oldest first (at most ``keep``).
    """

    pictures: int
    woken: dict[str, int]
    dropped: dict[str, int]
    area: float | None
    reference: float | None
    decisions: tuple[Decision, ...] = field(default=())


NO_NEWS = WakeDecision.drop("no news")
"""What a matching detection gets from the news policy: evidence, not a wake."""
SIGN_KEEP_S = 1.5
"""Seconds a camera is kept current on a first sign of change, when pictures are keyframes.

Long enough for a change to hold ``persist_s`` (0.6 s) over several pictures,
or for a thing to stay ``still_s``, before the next keyframe comes."""


class NewsPolicy:
    """One watch's news bookkeeping: pictures in, wake decisions out (thread-safe).

    It is a wake policy (:mod:`operators.wake_policy`): :meth:`decide` takes each
    matching detection (evidence), :meth:`see` each picture of the camera at
    ``pictures_fps``; the wake stage tells it each judged frame through its
    context. Without pictures (``pictures_fps=None``) the detections
    themselves are judged for news (:class:`~operators.news.ObjectNews`).

    Args:
        zones: the watch's zones as ``(name, ZoneRule or points)`` pairs;
            empty: the whole picture counts.
        settings: the tracker's knobs (:class:`~operators.news.NewsSettings`).
        scene: the background model's knobs (:class:`~operators.scene.SceneSettings`).
        keep: decisions remembered for :meth:`stats` (a replay keeps all of
            them through ``on_decision`` instead).
        on_decision: called with every decision (wake or drop), outside the lock.
        pictures_fps: pictures a second the policy wants from the camera (the
            detector's rate, so that they cost no decoding of their own);
            ``None``: no pictures, news from the detections alone.
        keyframes: the pictures are keyframes (a GOP apart, unless the camera
            is kept current). On a first *sign* of change (a change of
            occupancy not yet decided, or movement in a busy zone) the policy
            then asks the camera to keep current for ``sign_keep_s`` (through
            the context's ``frames.keep_current``, bounded by the camera's
            ``keep_current_share``), so that the change is judged on pictures
            at ``pictures_fps`` instead of a GOP apart.
        sign_keep_s: see ``keyframes``.
    """

    def __init__(
        self,
        zones: Sequence[tuple[str, ZoneInput]] = (),
        settings: NewsSettings | None = None,
        scene: SceneSettings | None = None,
        *,
        keep: int = 32,
        on_decision: Callable[[Decision], None] | None = None,
        pictures_fps: float | None = 5.0,
        keyframes: bool = False,
        sign_keep_s: float = SIGN_KEEP_S,
    ) -> None:
        self.zones = list(zones)
        self.tracker = NewsTracker(settings)
        self.objects = ObjectNews(interest_s=self.tracker.settings.interest_s)
        self.scene = SceneModel(scene)
        self._lock = threading.Lock()
        self._mask_for: tuple[tuple[int, int], tuple[int, int]] | None = None
        self._pictures = 0
        self._keep = keep
        self._decisions: list[Decision] = []
        self._on_decision = on_decision
        self._answer: tuple[object, ...] | None = None
        self._ref: Occupancy | None = None
        self._dismissed: Mask | None = None
        self._dismissed_at = 0.0
        self._last: Occupancy | None = None
        self._pending: tuple[float | None] | None = None
        self.last_wake: Decision | None = None
        self.pictures_fps = pictures_fps
        self.keyframes = keyframes
        self.sign_keep_s = sign_keep_s
        self._sign = False
        self.signs = 0
        """Pictures that showed a first sign of change (with ``keyframes``: kept current)."""

    def _thumb(self, frame: Frame) -> tuple[float, Grey, Chroma | None]:
        thumb, chroma = thumbnail(frame, self.scene.settings.width)
        key = ((thumb.shape[0], thumb.shape[1]), (frame.width, frame.height))
        if key != self._mask_for:
            mask: Mask = zone_mask(self.zones, key[0], key[1])
            self.scene.set_mask(mask)
            self._mask_for = key
        return frame.wall_time, thumb, chroma if self.scene.settings.chroma > 0 else None

    def picture(self, frame: Frame) -> Decision | None:
        """Measure one picture of the camera; return the decision it led to, if any."""
        with self._lock:
            t, thumb, chroma = self._thumb(frame)
            occ = self.scene.observe(thumb, t, chroma=chroma)
            self._pictures += 1
            if self._pending is not None and self.scene.warmed:
                # The first look came before the background knew anything: what is
                # there once it does is what that look saw.
                self.tracker.judged(t, occ.area, self._pending[0])
                self._ref, self._pending = occ, None
            appeared, gone = self._still_change(occ)
            self._last = occ
            decision = self.tracker.observe(t, occ.area, appeared, gone, occ.moving)
            self._sign = self.keyframes and self._is_sign(occ.moving, decision)
            self.signs += self._sign
            if decision is not None:
                self._decisions.append(decision)
                del self._decisions[: -self._keep]
                if decision.wake:
                    self.last_wake = decision
        if decision is not None and self._on_decision is not None:
            self._on_decision(decision)
        return decision

    def _is_sign(self, moving: float, decision: Decision | None) -> bool:
        """Whether this picture shows a change worth pictures closer together than a GOP.

        A change of occupancy that the tracker has not decided yet, or, in a
        busy zone (where only what stays is news), anything moving; and every
        picture until the background model has learnt the scene (its first
        pictures, a GOP apart, would take tens of seconds).
        """
        if not self.scene.warmed:
            return True
        if decision is not None or self.tracker.reference is None:
            return False
        if self.tracker.changing:
            return True
        return self.tracker.busy and moving >= self.tracker.settings.min_area

    def keep_current_on_sign(self, frames: object) -> bool:
        """After :meth:`picture`: keep ``frames`` current if that picture showed a sign of change.

        Only with ``keyframes``, and only where ``frames`` has ``keep_current``
        (a camera or a replayed clip). Returns whether it asked.

        Example::

            policy.picture(frame)
            policy.keep_current_on_sign(camera)   # the next pictures come at pictures_fps
        """
        keep = getattr(frames, "keep_current", None)
        if not self._sign or not callable(keep):
            return False
        keep(self.sign_keep_s)
        return True

    def detection(self, detection: Detection) -> None:
        """A detection that matches the watch's labels and zones: evidence for growth."""
        with self._lock:
            self.tracker.evidence(detection.time)

    def judged(self, frame: Frame | None, next_run_in: float | None = None) -> None:
        """The model judged ``frame`` (``None``: no frame; the latest picture counts).

        ``next_run_in``: what the answer asked for (how interested the model was).
        """
        with self._lock:
            if not self.scene.warmed:
                self._pending = (next_run_in,)  # see picture()
                self.tracker.judged(0.0, None, next_run_in)
                self.tracker.reference = None
                return
            if frame is None:
                self.tracker.judged(0.0, None, next_run_in)
            else:
                t, thumb, chroma = self._thumb(frame)
                occ = self.scene.observe(thumb, t, learn=False, chroma=chroma)
                self.tracker.judged(t, occ.area, next_run_in)
            self._ref = self._last
            self._dismiss(next_run_in)

    def _dismiss(self, next_run_in: float | None) -> None:
        """Remember what was in the zones of the judged picture when the model found it irrelevant.

        Things there (people on the footpath) that stop and stay afterwards are
        no news while they are still around those cells, for ``dismissed_s``
        after the last such answer (see :meth:`_still_change`). An answer
        that shows interest forgets them.
        """
        ref = self._ref
        watching = next_run_in is None or next_run_in <= self.tracker.settings.interest_s
        if watching or ref is None or ref.cells is None:
            self._dismissed = None
            return
        old = self._dismissed
        mask = ref.cells.copy()
        if old is not None and old.shape == mask.shape:
            mask |= old
        self._dismissed = mask
        self._dismissed_at = ref.time

    def _forget_dismissed(self, occ: Occupancy) -> None:
        """Drop dismissed cells that are background now, and all of them ``dismissed_s`` on."""
        seen = self._dismissed
        if seen is None:
            return
        late = occ.time - self._dismissed_at > self.tracker.settings.dismissed_s
        if late or occ.cells is None or occ.cells.shape != seen.shape:
            self._dismissed = None
            return
        seen &= _grown(occ.cells)  # what left the picture is no longer dismissed

    def _still_change(self, occ: Occupancy) -> tuple[float, float]:
        """Shares of the picture still now that looked different at the last look, and gone since.

        *Appeared*: still cells whose look differs from the judged picture's
        (a parcel the model saw, even half hidden by a passer-by then, is no
        news; one set down where a passer-by stood is), and that are not where
        things stood that the model called irrelevant (:meth:`_dismiss`). *Gone*: cells still
        in the judged picture where nothing is in the foreground now.
        """
        ref, still, cells = self._ref, occ.still, occ.cells
        self._forget_dismissed(occ)
        if ref is None or ref.still is None or ref.cells is None or still is None or cells is None:
            return 0.0, 0.0
        if ref.cells.shape != cells.shape:
            return 0.0, 0.0
        total = float(still.size) or 1.0
        appeared = 0
        if still.any() and occ.picture is not None and ref.picture is not None:
            s = self.scene.settings
            new = changed_cells(occ.picture, ref.picture, s.cell, 2 * s.steady, where=still)
            seen = self._dismissed
            if seen is not None and seen.shape == cells.shape:
                new &= ~_grown(seen)
            appeared = int(np.count_nonzero(still & new))
        gone = np.count_nonzero(ref.still & ~_grown(cells))
        return appeared / total, gone / total

    # -- the wake-policy seam (operators.wake_policy) ----------------------------

    def decide(self, detection: Detection, context: WakeContext) -> WakeDecision:
        """A matching detection: evidence for the pictures, never a wake by itself.

        Without pictures (``pictures_fps`` is ``None``: Frigate or MQTT
        detections) the detections are the news: see :class:`~operators.news.ObjectNews`.
        """
        self._sync(context)
        if self.pictures_fps is None:
            with self._lock:
                reason = self.objects.decide(detection)
            return NO_NEWS if reason is None else WakeDecision.now(reason)
        self.detection(detection)
        return NO_NEWS

    def see(self, frame: Frame, context: WakeContext) -> WakeDecision | None:
        """A picture of the camera: a wake when it holds news, else a drop or ``None``."""
        self._sync(context)
        decision = self.picture(frame)
        self.keep_current_on_sign(context.frames)
        if decision is None:
            return None
        if decision.wake:
            return WakeDecision.now(decision.reason)
        return WakeDecision.drop(decision.reason)

    def _sync(self, context: WakeContext) -> None:
        """Take the frame of a look whose answer came since the last call as the new reference.

        An answer is told apart by its wait's start, its frame and its
        ``next_run_in``: the first look's answer comes at the very instant the
        watch started, so the start alone would not show it.
        """
        judged = context.last_judged
        answer = (context.wait_start, None if judged is None else (judged.seq, judged.wall_time),
                  context.last_next_run_in)  # fmt: skip
        if answer != self._answer:
            self._answer = answer
            self.judged(context.last_judged, context.last_next_run_in)
            with self._lock:
                self.objects.judged(context.wait_start, context.last_next_run_in)

    def take_wake(self) -> Decision | None:
        """The wake decision that the next woken look answers (cleared when read)."""
        with self._lock:
            wake, self.last_wake = self.last_wake, None
            return wake

    def stats(self) -> NewsStats:
        """Counts and the latest decisions."""
        with self._lock:
            return NewsStats(
                pictures=self._pictures,
                woken=dict(Counter(self.tracker.woken)),
                dropped=dict(Counter(self.tracker.dropped)),
                area=self.tracker.area,
                reference=self.tracker.reference,
                decisions=tuple(self._decisions),
            )


def _grown(mask: Mask) -> Mask:
    """``mask`` grown by one cell all round (a thing that shifted a little is the same thing)."""
    out = mask.copy()
    out[1:, :] |= mask[:-1, :]
    out[:-1, :] |= mask[1:, :]
    grown = out.copy()
    grown[:, 1:] |= out[:, :-1]
    grown[:, :-1] |= out[:, 1:]
    return grown


def news_wakes(
    policy: NewsPolicy,
    pictures: Observable[Frame],
    matches: Observable[Detection] | None = None,
    frames: object | None = None,
) -> Observable[Decision]:
    """Rx stage: the camera's pictures (and matching detections) in, wakes out.

    Example:
        >>> news_wakes(policy, camera.frames(5), matching).subscribe(sampler_wake)
        ... # doctest: +SKIP

    Args:
        policy: the watch's :class:`NewsPolicy` (the watch tells it each judged frame).
        pictures: the camera's frames at the rate the detector already decodes.
        matches: detections matching the watch's labels and zones (evidence for
            growth); ``None`` when the watch has no detector.
        frames: the camera, kept current on a sign of change when the policy's
            pictures are keyframes (:meth:`NewsPolicy.keep_current_on_sign`).

    Returns:
        A cold observable of wake :class:`~operators.news.Decision` s (drops are
        counted in the policy, not emitted). A failing measurement goes to
        ``on_error``; it completes when ``pictures`` completes.
    """

    def subscribe(
        observer: abc.ObserverBase[Decision], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        def on_picture(frame: Frame) -> None:
            try:
                decision = policy.picture(frame)
                policy.keep_current_on_sign(frames)
            except Exception as exc:
                observer.on_error(exc)
                return
            if decision is not None and decision.wake:
                observer.on_next(decision)

        subs = CompositeDisposable()
        if matches is not None:
            subs.add(matches.subscribe(policy.detection, observer.on_error, scheduler=scheduler))
        subs.add(
            pictures.subscribe(
                on_picture, observer.on_error, observer.on_completed, scheduler=scheduler
            )
        )
        return subs

    return reactivex.create(subscribe)
