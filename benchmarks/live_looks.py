"""Looks at a clip as a live camera gets them: random GOP phases, waits, wakes, on a virtual clock.

The decode cost of a look depends on where in the GOP it falls: a look just
after a keyframe decodes a frame or two, one at the end of a 2 s GOP at 30 fps
decodes sixty. Live looks fall anywhere (the model's answer time sets the next
one), so a benchmark that looks at stream times 0, 5, 10 s with a 2 s GOP
(every second look on a keyframe) flatters ``on_demand``. :func:`live_looks`
plays a clip through the same decoder a camera uses
(:class:`~sources.decode.GopDecoder`, fed by
:class:`~pipeline.app.replay.clip_reader.ClipReader` at each packet's own time on
a virtual clock) and makes looks as a watch does:

- timer looks every 4-6 s (uniform, seeded: one look per 5 s on average, each
  at a random GOP phase), the next one due that long after the previous look
  took its frame (the model answers at once here);
- optionally wakes at given times (an accepted wake: a look for the newest
  frame, the camera kept current for ``keep_current_s``, and the timer starts
  again from it, as a watch's does);
- each look's frame chosen by a real frame selector
  (:class:`~operators.timer_keyframes.KeyframeTimerLooks` or
  :class:`~operators.frame_selector.FreshestFrame`).

:class:`LiveClip` adds to the clip reader what a live
:class:`~sources.camera.CameraSource` does and a file on a virtual clock
cannot: a keyframe request waits (moves the clock on) for the next keyframe
when it comes within the wait, and after :meth:`LiveClip.keep_current` each
packet is decoded as it arrives, within the same share of time
(:class:`~sources.keep_current.KeepCurrent`).

Example::

    keys = keyframe_times(clip)
    stats = live_looks(clip, keys, KeyframeTimerLooks(2.0), seed=1)
    stats.frames_per_look, stats.age_p95, stats.lateness_p95
"""

from __future__ import annotations

import bisect
import random
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import av
from reactivex.scheduler import HistoricalScheduler

from operators.frame_selector import FrameSelector
from operators.sampler import Trigger
from pipeline.app.replay.clip_reader import ClipReader
from pipeline.core.frame import Frame
from sources.gop_clock import GopClock
from sources.keep_current import KeepCurrent

LOOK_GAP_S = (4.0, 6.0)
"""Time from one look to the next timer look: uniform in this range (5 s on average)."""
FRAME_WAIT_S = 2.0
"""How long a look may wait for a frame (``operators.look.FRAME_WAIT_S``)."""


def keyframe_times(path: Path) -> list[float]:
    """Clip times (decode order, from the first packet) of the clip's keyframes.

    Read before a measurement starts: a live camera learns them as they arrive,
    which costs nothing beyond the demuxing that is measured anyway.
    """
    times: list[float] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        t0: float | None = None
        for packet in container.demux(stream):
            if not packet.size:
                continue
            stamp = packet.dts if packet.dts is not None else packet.pts
            if stamp is None or packet.time_base is None:
                continue
            t = float(stamp * packet.time_base)
            t0 = t if t0 is None else t0
            if packet.is_keyframe:
                times.append(t - t0)
    return times


class LiveClip(ClipReader):
    """A clip on a virtual clock that waits for keyframes and keeps current, as a live camera.

    Args:
        path: the clip.
        scheduler: the virtual clock.
        keys: the clip times of its keyframes (:func:`keyframe_times`).
        keep: when and how long the decoder is kept current after wakes.
    """

    def __init__(
        self, path: Path, *, scheduler: HistoricalScheduler, keys: list[float], keep: KeepCurrent
    ) -> None:
        super().__init__(path, scheduler=scheduler, camera="bench")
        self._keys = keys
        self.current = keep  # the clip reader's own keep_current() grants from it
        self.kept_current = 0
        """Packets decoded as they arrived because the decoder was kept current."""

    def _epoch(self) -> float:
        return self.scheduler.now.timestamp()

    def keyframe(
        self, max_age_s: float, timeout: float | None = None, *, due: float | None = None
    ) -> Frame | None:
        """As :meth:`sources.camera.CameraSource.keyframe`: waits for the next keyframe."""
        since = self._epoch() - max_age_s
        frame = self._decoder.newest_keyframe(since)
        if frame is not None or not timeout:
            return frame
        now = self.clip_time()
        i = bisect.bisect_right(self._keys, now)
        gop = GopClock()
        for seen in self._keys[max(0, i - 2) : i]:
            gop.keyframe(seen)
        if i >= len(self._keys) or not gop.comes_within(now, timeout):
            return None
        if self._keys[i] - now > timeout:
            return None
        self.scheduler.advance_to(self.at(self._keys[i]))  # the camera waits for it
        return self._decoder.newest_keyframe(since)

    def _publish(self, s: Any, state: Any = None) -> None:
        super()._publish(s, state)
        if self.current.active(self._epoch()) and self._decoder.behind:
            self._decoder.newest()
            self.kept_current += 1


@dataclass
class LookStats:
    """What the looks of one :func:`live_looks` pass cost and got.

    Attributes:
        looks: looks made (timer and wake).
        decoded: frames decoded in all (looks, keeping current, the first picture).
        look_frames: frames each look decoded itself.
        ages: each look's frame age (seconds from the packet's arrival to the look).
        lateness: each look's lateness (frame taken minus due).
        kinds: each look's frame kind (``keyframe`` or ``inter``).
        kept_s: seconds the decoder was kept current.
        seconds: the clip's length.
    """

    looks: int = 0
    decoded: int = 0
    look_frames: list[int] = field(default_factory=list)
    ages: list[float] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    kept_s: float = 0.0
    seconds: float = 0.0

    @staticmethod
    def merged(passes: list[LookStats]) -> LookStats:
        """One :class:`LookStats` of several passes (their looks, frames and seconds summed)."""
        out = LookStats()
        for p in passes:
            out.looks += p.looks
            out.decoded += p.decoded
            out.look_frames += p.look_frames
            out.ages += p.ages
            out.lateness += p.lateness
            out.kinds += p.kinds
            out.kept_s += p.kept_s
            out.seconds += p.seconds
        return out

    @property
    def frames_per_look(self) -> float:
        """Frames decoded in all, per look."""
        return self.decoded / max(1, self.looks)

    def summary(self) -> dict[str, float]:
        """Frames per look, frame age and lateness (median, p95), share of time kept current."""
        return {
            "looks": self.looks,
            "frames_per_look": round(self.frames_per_look, 2),
            "look_frames_median": statistics.median(self.look_frames) if self.look_frames else 0,
            "look_frames_p95": round(p95(self.look_frames), 1),
            "age_median_s": round(statistics.median(self.ages), 3) if self.ages else 0.0,
            "age_p95_s": round(p95(self.ages), 3),
            "lateness_median_s": round(statistics.median(self.lateness), 3)
            if self.lateness
            else 0.0,
            "lateness_p95_s": round(p95(self.lateness), 3),
            "keyframe_share": round(self.kinds.count("keyframe") / max(1, len(self.kinds)), 3),
            "kept_current_share": round(self.kept_s / max(1e-9, self.seconds), 3),
        }


def p95(values: list[float] | list[int]) -> float:
    """The 95th percentile (linear interpolation); 0 for no values."""
    if not values:
        return 0.0
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=20, method="inclusive")[-1])


def live_looks(
    path: Path,
    keys: list[float],
    selector: FrameSelector,
    *,
    seed: int,
    wakes: list[float] | None = None,
    keep: KeepCurrent | None = None,
) -> LookStats:
    """Play ``path`` on a virtual clock and look at it as a watch does; return what it cost.

    Args:
        path: the clip.
        keys: its keyframe times (:func:`keyframe_times`).
        selector: which frame each look takes.
        seed: the random look phases.
        wakes: clip times of accepted wakes (default: none).
        keep: the camera's keep-current setting (default: 5 s within 0.25 of the time).
    """
    rng = random.Random(seed)
    sched = HistoricalScheduler(datetime.fromtimestamp(1_000_000_000.0))
    keep = keep or KeepCurrent(5.0, 0.25)
    stats = LookStats()
    pending = sorted(wakes or [])
    with LiveClip(path, scheduler=sched, keys=keys, keep=keep) as clip:
        clip.start()
        end = clip.duration_s or 0.0
        timer = rng.uniform(0.0, LOOK_GAP_S[1])
        while True:
            trigger: Trigger = "timer"
            due = timer
            if pending and pending[0] <= timer:
                trigger, due = "wake", pending.pop(0)
            if due >= end - FRAME_WAIT_S or clip.ended:
                break
            sched.advance_to(clip.at(max(due, clip.clip_time())))
            if trigger == "wake":
                clip.keep_current()  # what run_watch does on an accepted wake
            before = clip.decoded
            frame = selector.select(clip, trigger, clip.at(due).timestamp(), FRAME_WAIT_S)
            taken = clip.clip_time()
            stats.looks += 1
            stats.look_frames.append(clip.decoded - before)
            stats.lateness.append(round(max(0.0, taken - due), 6))
            if frame is not None:
                stats.ages.append(taken - (frame.wall_time - clip.start_epoch))
                stats.kinds.append("keyframe" if frame.keyframe else "inter")
            timer = taken + rng.uniform(*LOOK_GAP_S)
        if not clip.ended:
            sched.advance_to(clip.at(end + 1.0))  # demux the rest, as a camera would
        stats.decoded = clip.decoded
        stats.seconds = end
        stats.kept_s = min(keep.granted_s, end)
    return stats


def wake_times(seconds: float, every_s: tuple[float, float], seed: int) -> list[float]:
    """Clip times of wakes ``every_s`` apart (uniform in the range, seeded), from a random start."""
    rng = random.Random(seed)
    out: list[float] = []
    t = rng.uniform(0.0, every_s[1])
    while t < seconds:
        out.append(t)
        t += rng.uniform(*every_s)
    return out
