"""Is there news for the model? Occupancy now against occupancy when the model last looked.

A look is worth its cost when the picture holds something the model has not
seen. :class:`NewsTracker` keeps the occupancy (see :mod:`operators.scene`)
of the picture the model judged last and compares each new picture with it:

- **entered** / **more**: the zones hold clearly more than at the last look
  (something arrived, a second person joined): occupancy grew by
  ``min_area`` and by the ``factor``;
- **left** / **less**: clearly less (something went away): it shrank by
  ``min_area`` and by the ``factor``;
- **still** / **gone**: a thing that *stays* (foreground cells that kept
  their look for the scene's ``still_s``, and look different from the
  picture the model judged) of at least ``min_area`` is news at once, in a
  crowded zone as in an empty one; so is the going of one the model saw;
- a person walking about, leaves moving, a passing shadow: occupancy about
  the same as at the last look, **no news**, whatever the detector says.

A change that moves is weaker news than one that stays:

- in a **busy zone** (things moving in it more than ``busy_share`` of the
  time, over about the last ``busy_halflife_s`` seconds: a footpath, a road)
  arriving, leaving, more and less are the zone's normal, not news (dropped
  as **busy zone**); only what stays and what goes wakes the watch there;
- **passers-by**: once the model has called a look woken by an arrival
  nothing relevant (``next_run_in`` over ``interest_s``: someone crossing a
  parcel zone), an arrival must stay ``linger_s`` before it is news (one that
  leaves sooner is dropped as **passing**), until the model finds an
  arrival relevant again. The model's own answers tell a watch for people
  on the lawn from a watch for parcels on it.

- **dismissed**: things that were in the zones of a picture the model called
  nothing relevant (people on a footpath) and then stop and stay there are no
  news for ``dismissed_s`` (while they stay around those cells); a thing that
  stays anywhere else is.

Shrinking is news only while the model was *watching* something: when its
last answer asked for the next look within ``interest_s`` (met, forming or
something relevant in view, by DESIGN.md's guidance for ``next_run_in``).
When it said the scene holds nothing relevant (60 s and more), what leaves
the picture cannot change its answer: dropped as **nothing watched left**,
and what is left becomes the reference (so that something arriving later is
growth again).

A change must hold for ``persist_s`` seconds (and two pictures at least)
before it is news; one that fades sooner is dropped as **brief**. When the
watch has a detector, growth also needs a matching detection in the last
``evidence_s`` seconds (the detector says *what* it is: a ``person``
detector does not wake a person watch for a car). Shrinking needs none (what
left cannot be detected any more).

Pure bookkeeping, times in seconds; the Rx wrapper is
:func:`operators.news_wakes.news_wakes`.

Example:
    >>> t = NewsTracker(NewsSettings(min_area=0.01, persist_s=0.4, evidence_s=None))
    >>> t.judged(0.0, 0.0)
    >>> [t.observe(x, a) for x, a in [(1.0, 0.0), (1.2, 0.05), (1.4, 0.05), (1.6, 0.05)]]
    [None, None, None, Decision(time=1.6, wake=True, reason='entered', area=0.05, reference=0.0)]
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from pipeline.core.detection import Detection

WAKE_REASONS = ("entered", "more", "still", "less", "left", "gone")
"""Why a wake was taken: what changed in the zones since the last look."""
DROP_REASONS = ("no news", "brief", "passing", "busy zone", "no detection",
                "nothing watched left")  # fmt: skip
"""Why a change was not a wake (the sampler adds its own: in flight, quiet, budget)."""
BUSY_PRIOR_S = 10.0
"""Quiet seconds counted on top of what was seen, when telling whether a zone is busy."""
ARRIVALS = ("entered", "more")
"""Changes of occupancy that mean something came (what a passer-by makes)."""
OCCUPANCY = ("entered", "more", "less", "left")
"""Changes of how much of the zones is covered (the normal of a busy zone)."""


@dataclass(frozen=True, slots=True)
class NewsSettings:
    """Knobs of :class:`NewsTracker`.

    Attributes:
        min_area: least change of occupancy, as a share of the picture, that
            can be news (two cells of the 160-pixel thumbnail: about a person
            30 m away on a 90-degree camera).
        factor: occupancy must grow to ``factor`` times (or shrink to
            ``1 / factor`` of) what it was at the last look.
        persist_s: seconds a change must hold before it is news.
        evidence_s: with a detector, growth needs a matching detection this
            recent; ``None``: no detector, the picture alone decides.
        repeat_s: while news waits for a look (one in flight, the budget), it
            is signalled again at most this often.
        interest_s: a last answer asking for the next look within this many
            seconds means the model was watching something, so that its
            leaving is news.
        linger_s: after the model called an arrival nothing relevant,
            arrivals must hold this long (passers-by do not).
        busy_share: a zone with something moving in it more than this share
            of the time is busy: changes of occupancy there are no news.
        busy_halflife_s: half-life of that share.
        dismissed_s: after an answer that found nothing relevant (``next_run_in``
            over ``interest_s``), what was in the zones of that picture (people
            on a footpath) is no news when it stops and stays there, for this
            many seconds (and while it is still around those cells): see
            :class:`~operators.news_wakes.NewsPolicy`.
    """

    min_area: float = 0.0015
    factor: float = 2.0
    persist_s: float = 0.6
    evidence_s: float | None = 2.0
    repeat_s: float = 1.0
    interest_s: float = 30.0
    linger_s: float = 3.0
    busy_share: float = 0.5
    busy_halflife_s: float = 30.0
    dismissed_s: float = 30.0

    def __post_init__(self) -> None:
        if not 0 < self.min_area < 1:
            raise ValueError(f"min_area must be between 0 and 1, got {self.min_area}.")
        if self.factor < 1:
            raise ValueError(f"factor must be at least 1, got {self.factor}.")
        if self.persist_s < 0 or self.repeat_s <= 0:
            raise ValueError("persist_s must not be negative and repeat_s must be positive.")
        if self.evidence_s is not None and self.evidence_s <= 0:
            raise ValueError(f"evidence_s must be positive, got {self.evidence_s}.")
        if self.dismissed_s < 0:
            raise ValueError(f"dismissed_s must not be negative, got {self.dismissed_s}.")
        if self.linger_s < 0 or not 0 < self.busy_share <= 1 or self.busy_halflife_s <= 0:
            raise ValueError(
                "linger_s must not be negative, busy_share must be in (0, 1] and "
                "busy_halflife_s positive."
            )


@dataclass(frozen=True, slots=True)
class Decision:
    """One verdict of the tracker: a wake (with what changed) or a dropped change.

    Attributes:
        time: when (seconds).
        wake: ``True``: look now; ``False``: a change that is not news.
        reason: one of :data:`WAKE_REASONS` or :data:`DROP_REASONS`.
        area: occupancy now.
        reference: occupancy of the picture the model judged last.
    """

    time: float
    wake: bool
    reason: str
    area: float
    reference: float


def change_kind(area: float, reference: float, settings: NewsSettings) -> str | None:
    """What kind of change ``area`` is against ``reference``, ``None`` when none.

    Example:
        >>> s = NewsSettings(min_area=0.01)
        >>> change_kind(0.02, 0.0, s), change_kind(0.05, 0.02, s), change_kind(0.03, 0.02, s)
        ('entered', 'more', None)
        >>> change_kind(0.0, 0.02, s), change_kind(0.012, 0.03, s)
        ('left', 'less')
    """
    grow = area - reference
    if grow >= settings.min_area and area >= reference * settings.factor:
        return "entered" if reference < settings.min_area else "more"
    if -grow >= settings.min_area and area * settings.factor <= reference:
        return "left" if area < settings.min_area else "less"
    return None


class NewsTracker:
    """Occupancy against the last look, with persistence; counts what it dropped.

    Call :meth:`judged` whenever the model is given a picture (with that
    picture's occupancy, or ``None`` for the latest observed), :meth:`observe`
    for each new picture's occupancy, and :meth:`evidence` for each matching
    detection. ``observe`` returns a :class:`Decision` when there is
    something to say: a wake, or a change dropped as brief, passing, in a busy
    zone or without a detection; ``None`` otherwise.

    Attributes:
        dropped: count of dropped changes by reason.
        woken: count of wakes by reason.
        passers: whether arrivals must linger (the model called one nothing relevant).
    """

    def __init__(self, settings: NewsSettings | None = None) -> None:
        self.settings = settings or NewsSettings()
        self.reference: float | None = None
        self.area: float | None = None
        self._since: float | None = None
        self._seen: float | None = None
        self._kind: str | None = None
        self._signalled: float | None = None
        self._evidence: float | None = None
        self._samples = 0
        self._no_detection = False
        self._watching = True
        self._woke: str | None = None
        self.passers = False
        self._busy_time = 0.0
        self._seen_time = 0.0
        self._busy_t: float | None = None
        self._was_moving = False
        self.dropped: Counter[str] = Counter()
        self.woken: Counter[str] = Counter()

    @property
    def busy_share(self) -> float:
        """Share of the recent time something moved in the zones (see ``busy_halflife_s``).

        Time-weighted with a half-life, counting ``BUSY_PRIOR_S`` quiet seconds
        on top: a zone is not called busy on its first few pictures.
        """
        return self._busy_time / (self._seen_time + BUSY_PRIOR_S)

    @property
    def busy(self) -> bool:
        """Whether the zones are busy: something moving in them most of the time lately."""
        return self.busy_share >= self.settings.busy_share

    def judged(self, t: float, area: float | None = None, next_run_in: float | None = None) -> None:
        """The model was given the picture of time ``t`` (occupancy ``area``; default: latest).

        ``next_run_in``: what its answer asked for (``None``: unknown, taken as
        watching); see ``interest_s``. When the look was woken by an arrival,
        the answer also says whether arrivals are passers-by (see ``linger_s``).
        """
        if area is None:
            area = self.area if self.area is not None else 0.0
        self.reference = area
        self._watching = next_run_in is None or next_run_in <= self.settings.interest_s
        if self._woke in ARRIVALS:
            self.passers = not self._watching
        self._woke = None
        self._since = self._kind = self._signalled = None
        self._no_detection = False

    def evidence(self, t: float) -> None:
        """A detection matching the watch's labels and zones was seen at ``t``."""
        if self._evidence is None or t > self._evidence:
            self._evidence = t

    @property
    def changing(self) -> bool:
        """Whether a change is under way that is neither news yet nor dropped."""
        return self._kind is not None and self._signalled is None and not self._no_detection

    def pending(self) -> bool:
        """Whether news was signalled and no look has judged it yet."""
        return self._signalled is not None

    def _count_busy(self, t: float, moving: float) -> None:
        """Keep the time something moved in the zones, and the time seen, both fading."""
        s = self.settings
        # Each gap between pictures counts as the earlier picture showed (at most 2 s of it).
        dt = 0.0 if self._busy_t is None else min(2.0, max(0.0, t - self._busy_t))
        self._busy_t = t
        keep = 0.5 ** (dt / s.busy_halflife_s)
        self._seen_time = self._seen_time * keep + dt
        self._busy_time = self._busy_time * keep + (dt if self._was_moving else 0.0)
        self._was_moving = moving >= s.min_area

    def _change(self, area: float, ref: float, appeared: float, gone: float) -> str | None:
        s = self.settings
        if appeared >= s.min_area:
            return "still"
        kind = change_kind(area, ref, s)
        if kind is None and gone >= s.min_area:
            return "gone"
        return kind

    def _held_for(self, kind: str) -> float:
        """Seconds ``kind`` must hold: none for what stays (it has already), more for passers-by."""
        s = self.settings
        if kind == "still":
            return 0.0
        if kind in ARRIVALS and self.passers:
            return max(s.persist_s, s.linger_s)
        return s.persist_s

    def observe(
        self, t: float, area: float, appeared: float = 0.0, gone: float = 0.0,
        moving: float | None = None,
    ) -> Decision | None:  # fmt: skip
        """Take the occupancy of the picture of time ``t``; say whether it is news.

        ``appeared``: share of the picture that is still where the judged
        picture looked different; ``gone``: share that was still then and is
        background now; ``moving``: share covered by things that are not still
        (default ``area``), for how busy the zones are.
        """
        self.area = area
        self._count_busy(t, area if moving is None else moving)
        ref = self.reference
        if ref is None:  # nothing judged yet: the first look will see it all
            return None
        kind = self._change(area, ref, appeared, gone)
        if kind is None:
            return self._fade(t, area, ref)
        if self._kind is None or _direction(kind) != _direction(self._kind):
            self._since, self._signalled, self._no_detection = t, None, False
            self._samples = 1
        else:
            self._samples += 1
        self._kind, self._seen = kind, t
        assert self._since is not None
        if t - self._since < self._held_for(kind) - 1e-6 or (self._samples < 2 and kind != "still"):
            return None
        unwanted = self._unwanted(t, kind)
        if unwanted is not None:
            return self._drop(t, area, ref, unwanted)
        if self._signalled is not None and t - self._signalled < self.settings.repeat_s - 1e-6:
            return None
        first = self._signalled is None
        self._signalled = t
        if first:
            self.woken[kind] += 1
            self._woke = self._woke or kind
        return Decision(t, True, kind, area, ref)

    def _unwanted(self, t: float, kind: str) -> str | None:
        if kind in OCCUPANCY and self.busy:
            return "busy zone"
        if _direction(kind) > 0 and not self._has_evidence(t):
            return "no detection"
        if _direction(kind) < 0 and not self._watching:
            return "nothing watched left"
        return None

    def _drop(self, t: float, area: float, ref: float, reason: str) -> Decision | None:
        """Count a change that is not news (once per change)."""
        if self._no_detection:
            return None
        self._no_detection = True  # count once per change, not once per picture
        self.dropped[reason] += 1
        if reason == "nothing watched left":
            # What is left of a scene with nothing relevant holds nothing relevant
            # either: it is the new reference (a parcel arriving later is growth).
            self.reference = area
            self._since = self._kind = None
            self._no_detection = False
        return Decision(t, False, reason, area, ref)

    def _has_evidence(self, t: float) -> bool:
        s = self.settings
        if s.evidence_s is None:
            return True
        return self._evidence is not None and t - self._evidence <= s.evidence_s + s.persist_s

    def _fade(self, t: float, area: float, ref: float) -> Decision | None:
        if self._kind is None:
            return None
        kind, since, seen = self._kind, self._since, self._seen
        counted = self._signalled is not None or self._no_detection
        self._since = self._kind = self._signalled = None
        self._no_detection = False
        if counted:
            return None
        # Held for persist_s (from its first picture to its last) but not linger_s: a passer-by.
        held = (
            since is not None
            and seen is not None
            and seen - since >= self.settings.persist_s - 1e-6
        )
        reason = "passing" if kind in ARRIVALS and self.passers and held else "brief"
        self.dropped[reason] += 1
        return Decision(t, False, reason, area, ref)


def _direction(kind: str) -> int:
    return 1 if kind in ("entered", "more", "still") else -1


class ObjectNews:
    """News from detections alone, for cameras whose pictures the watch does not measure.

    Frigate and MQTT detections come with what a picture would have to
    recover: an ``object_id``, a ``stationary`` flag and ``end`` events. The
    objects seen in the ``recent_s`` seconds before the model's last look are
    what it has seen; news is an object it has not (**entered**; **new label**
    for boxes without an id, told apart by label), one that stopped moving
    since (**stationary**), or one that went (an ``end`` event: **left**, only
    while the model was watching something, as for pictures).

    Example:
        >>> from pipeline.core.detection import Box, Detection
        >>> car = Detection("c", "car", 0.9, Box(0, 0, 1, 1), time=1.0, object_id="7")
        >>> news = ObjectNews()
        >>> news.judged(0.0, next_run_in=60)
        >>> news.decide(car), news.decide(car)
        ('entered', 'entered')
        >>> news.judged(2.0, next_run_in=5)
        >>> news.decide(car) is None
        True
    """

    def __init__(self, recent_s: float = 2.0, interest_s: float = 30.0) -> None:
        self.recent_s = recent_s
        self.interest_s = interest_s
        self._seen: dict[str, tuple[float, bool]] = {}
        self._judged: dict[str, bool] = {}
        self._watching = True

    def judged(self, t: float, next_run_in: float | None = None) -> None:
        """The model looked at ``t``: the objects seen shortly before are no news any more."""
        self._seen = {k: v for k, v in self._seen.items() if t - v[0] <= 60.0}
        self._judged = {k: st for k, (seen, st) in self._seen.items() if t - seen <= self.recent_s}
        self._watching = next_run_in is None or next_run_in <= self.interest_s

    def decide(self, d: Detection) -> str | None:
        """What ``d`` is news of (a reason), or ``None``."""
        key = d.object_id or f"label:{d.label.lower()}"
        if d.event == "end":
            self._seen.pop(key, None)
            return "left" if key in self._judged and self._watching else None
        self._seen[key] = (d.time, d.stationary)
        if key not in self._judged:
            return "entered" if d.object_id else "new label"
        if d.stationary and not self._judged[key]:
            return "stationary"
        return None
