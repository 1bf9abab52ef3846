"""A video file played as a camera on a virtual clock.

:class:`ClipReader` demuxes a file with PyAV and hands each video packet to the
decoder at the packet's own time *on a virtual-time scheduler*, so a replay
runs as fast as the work it does: packets are only demuxed (cheap), and frames
are decoded when someone asks for one, a look (:meth:`ClipReader.latest`) or a
detector (:meth:`ClipReader.frames` at its rate). A 10-minute clip looked at
every 5 s replays in seconds.

Example:
    >>> from reactivex.scheduler import HistoricalScheduler
    >>> sched = HistoricalScheduler()
    >>> with ClipReader("porch.mp4", scheduler=sched) as clip:  # doctest: +SKIP
    ...     clip.start()
    ...     sched.advance_to(clip.at(2.5))
    ...     clip.latest().stream_time
    2.5
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from reactivex import Observable
from reactivex.scheduler import HistoricalScheduler

from pipeline.core.frame import Frame
from pipeline.core.redact import redact
from sources.decode import GopDecoder, PacketInfo
from sources.keep_current import KeepCurrent
from sources.source_base import SourceBase
from sources.taps import GapTap

log = logging.getLogger("lookout.replay")


class ClipReader(SourceBase):
    """A video file as a :class:`~pipeline.core.frame.FrameSource` driven by a virtual clock.

    Clip time 0 (the first video packet) is the scheduler's clock when the
    reader is made; each packet is handed to an on-demand
    :class:`~sources.decode.GopDecoder` when the scheduler reaches its time.
    A frame's ``wall_time`` is the scheduler's clock at that packet (epoch
    seconds), its ``stream_time`` the packet's presentation time.

    Everything runs on the thread that advances the scheduler; nothing waits.
    Its state goes online at the first picture and offline ("end of file") at
    the end; holding it (``connect``) changes nothing, the clip plays anyway.

    Args:
        path: the video file.
        scheduler: the virtual clock (a :class:`HistoricalScheduler`).
        camera: camera name put on frames (the watch's camera).
        until_s: stop at this clip time (seconds); ``None`` plays to the end.
        keep_current_s: the camera's ``keep_current_s`` (what :meth:`keep_current` grants).
        keep_current_share: the camera's ``keep_current_share``.
        on_end: called once when the last packet (or ``until_s``) is reached,
            on the scheduler's thread (a replay stops its clock there).

    Raises:
        ValueError: the file cannot be opened or has no video stream, or
            ``until_s`` is not positive.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        scheduler: HistoricalScheduler,
        camera: str = "replay",
        until_s: float | None = None,
        on_end: Callable[[], None] | None = None,
        keep_current_s: float = 5.0,
        keep_current_share: float = 0.2,
    ) -> None:
        if until_s is not None and until_s <= 0:
            raise ValueError(f"until_s must be positive, got {until_s}.")
        super().__init__(camera, clock=lambda: scheduler.now.timestamp())
        self.path = Path(path)
        self.scheduler = scheduler
        self.until_s = until_s
        self._on_end = on_end
        self.origin: datetime = scheduler.now
        """Scheduler time of clip time 0."""
        try:
            self._container: Any = av.open(str(self.path))
        except (av.error.FFmpegError, OSError) as exc:
            raise ValueError(redact(f"Cannot open clip {self.path}: {exc}")) from None
        if not self._container.streams.video:
            self._container.close()
            raise ValueError(f"Clip {self.path} has no video stream.")
        stream = self._container.streams.video[0]
        self._stream = stream
        self.width: int = stream.codec_context.width
        self.height: int = stream.codec_context.height
        rate = stream.average_rate or stream.guessed_rate
        self.fps: float | None = float(rate) if rate else None
        self.duration_s: float | None = _duration(self._container, stream, until_s)
        """Expected length in seconds (from the container; exact once :attr:`ended`)."""
        self._decoder = GopDecoder(camera, stream.codec_context, "on_demand")
        self.current = KeepCurrent(keep_current_s, keep_current_share)
        """When keyframe taps are offered every frame too (:meth:`keep_current`)."""
        self._demuxed = self._container.demux(stream)
        self._when_ready: list[Callable[[], None]] = []
        self.ready = False
        """Whether a first picture has decoded (a live camera is online from then)."""
        self._t0: float | None = None
        self._last_t = 0.0
        self._last_dur = 1.0 / self.fps if self.fps else 0.1
        self._pending: tuple[Any, PacketInfo] | None = None
        self._started = False
        self.packets = 0
        """Video packets handed to the decoder so far."""
        self.ended = False
        """Whether the last packet (or ``until_s``) was reached."""
        self.end_s: float | None = None
        """Clip time of the end, once :attr:`ended`."""

    # ------------------------------------------------------------ clock

    def at(self, clip_s: float) -> datetime:
        """Return the scheduler time of clip time ``clip_s``."""
        return self.origin + timedelta(seconds=clip_s)

    def clip_time(self, when: datetime | None = None) -> float:
        """Return the clip time (seconds) of scheduler time ``when`` (default: now)."""
        return ((when or self.scheduler.now) - self.origin).total_seconds()

    @property
    def start_epoch(self) -> float:
        """Epoch seconds of clip time 0 (what frames' ``wall_time`` counts from)."""
        return self.origin.timestamp()

    @property
    def decoded(self) -> int:
        """Frames decoded so far."""
        return self._decoder.decoded

    # ------------------------------------------------------------ playing

    def start(self) -> None:
        """Schedule the first packet at clip time 0; later ones follow on the scheduler."""
        with self._lock:
            if self._started or self._closed:
                return
            self._started = True
        self._read_next()

    def _read_next(self) -> None:
        """Demux up to the next usable packet and schedule it at its time, or end."""
        while True:
            try:
                packet = next(self._demuxed, None)
            except av.error.FFmpegError as exc:
                log.warning("clip %s: demux error, ending: %s", self.path, redact(str(exc)))
                packet = None
            if packet is None:
                self._end()
                return
            if packet.size == 0:
                continue  # the demuxer's final flush packet
            t = self._packet_time(packet)
            if self.until_s is not None and t >= self.until_s:
                self._end()
                return
            stream_time = _seconds(packet.pts, packet.time_base)
            info = PacketInfo(
                seq=self.packets,
                wall_time=self.at(t).timestamp(),
                stream_time=stream_time,
                keyframe=bool(packet.is_keyframe),
                size=packet.size,
            )
            self.packets += 1
            self._count_packet(info.wall_time)
            self._pending = (packet, info)
            self.scheduler.schedule_absolute(self.at(t), self._publish)
            return

    def _packet_time(self, packet: Any) -> float:
        """Clip time of a packet: decode order (dts), never going backwards."""
        raw = _seconds(packet.dts, packet.time_base)
        if raw is None:
            raw = _seconds(packet.pts, packet.time_base)
        if raw is None:
            t = self._last_t + self._last_dur if self.packets else 0.0
        else:
            if self._t0 is None:
                self._t0 = raw
            t = raw - self._t0
        t = max(t, self._last_t if self.packets else 0.0)
        dur = _seconds(packet.duration, packet.time_base)
        if dur:
            self._last_dur = dur
        self._last_t = t
        return t

    def _publish(self, _s: Any, _state: Any = None) -> None:
        with self._lock:
            if self._closed or self._pending is None:
                return
            packet, info = self._pending
            self._pending = None
            taps = list(self._taps)
        self._decoder.push(packet, info)
        if not self.ready and self._decoder.newest() is not None:
            self._became_ready()
        if taps:
            kept = self.current.active(info.wall_time)
            self._feed(taps, self._micros(), self._decoder.newest, info.keyframe or kept)
        self._read_next()

    def _micros(self) -> int:
        """Clip time now in whole microseconds (the virtual clock's own resolution)."""
        return (self.scheduler.now - self.origin) // timedelta(microseconds=1)

    def when_ready(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on the scheduler) once the first picture has decoded.

        A replayed watch starts then, as a live watch's first look waits for its
        camera's first frame; H.264 decoders hold back their first picture for a
        few packets. Called at once when the reader is already ready.
        """
        with self._lock:
            if not self.ready:
                self._when_ready.append(callback)
                return
        callback()

    def _became_ready(self) -> None:
        with self._lock:
            self.ready = True
            callbacks, self._when_ready = self._when_ready, []
        self._set_state(online=True, last_error=None)
        for callback in callbacks:
            callback()

    def _end(self) -> None:
        with self._lock:
            if self.ended:
                return
            self.ended = True
            end = self._last_t + self._last_dur if self.packets else 0.0
            if self.until_s is not None:
                end = min(end, self.until_s)
            self.end_s = end
            self.duration_s = end
        self._set_state(online=False, last_error="end of file")
        if self._on_end is not None:
            self._on_end()
        self._complete_taps()

    # ------------------------------------------------------------ FrameSource

    def freshest(self, timeout: float | None = None, *, due: float | None = None) -> Frame | None:
        """Decode and return the frame at the scheduler's current time (never waits).

        Decodes forward in the current GOP up to the packet the clock has reached.
        """
        return self._decoder.newest()

    def keyframe(
        self, max_age_s: float, timeout: float | None = None, *, due: float | None = None
    ) -> Frame | None:
        """The picture of the newest keyframe if it is at most ``max_age_s`` old (never waits).

        Decodes that one packet (or returns a newer picture of the same GOP that
        is already decoded); ``None`` when the newest keyframe is older by the
        scheduler's clock. ``timeout`` is ignored: a virtual clock cannot wait
        (and ``due`` too: a replay decodes on one thread, nothing queues).

        Example::

            sched.advance_to(clip.at(15.55))   # GOP of 1 s: keyframe at 15.0
            clip.keyframe(max_age_s=1.0).stream_time   # 15.0, one frame decoded
            clip.keyframe(max_age_s=0.5)               # None: 0.55 s old
        """
        return self._decoder.newest_keyframe(since=self.scheduler.now.timestamp() - max_age_s)

    def keep_current(self, seconds: float | None = None) -> float:
        """Offer every frame to keyframe taps for ``seconds``, as a live camera kept current does.

        Bounded by ``keep_current_share`` as on a live camera
        (:class:`~sources.keep_current.KeepCurrent`), on the scheduler's clock.
        Returns the time (epoch seconds) until which it is kept current.
        """
        return self.current.request(self.scheduler.now.timestamp(), seconds)

    def frames(self, fps: float | None = None, keyframes: bool = False) -> Observable[Frame]:
        """Decoded frames as the clock reaches them, at most ``fps`` a second.

        With ``keyframes`` only keyframes are given, each decoded alone, and
        every frame while kept current (:meth:`keep_current`).

        Example:
            >>> motion_detections(clip.frames(5), MotionDetectConfig())  # doctest: +SKIP

        Frames are at least ``1 / fps`` apart by the scheduler's clock (exactly
        what ``throttle_first(1 / fps, scheduler)`` lets through). Completes at
        the end of the clip.

        Raises:
            ValueError: for a non-positive ``fps``.
        """
        if fps is not None and fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}.")
        gap = self.scheduler.to_timedelta(1.0 / fps) // timedelta(microseconds=1) if fps else None
        return self._tap_observable(lambda observer: GapTap(observer, gap, keyframes=keyframes))

    # ------------------------------------------------------------ SourceBase hooks

    def _finished(self) -> bool:
        return self.ended

    def _refresh_counters(self) -> None:
        frames, seconds = self._decoder.take_totals()
        self._count_decoded(frames, seconds, self._decoder.last_frame_time)

    def _shutdown(self) -> None:
        """Close the file and the decoder; frame subscribers complete."""
        with self._lock:
            self._pending = None
        self._end()
        self._decoder.close()
        self._container.close()


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def _duration(container: Any, stream: Any, until_s: float | None) -> float | None:
    d = _seconds(stream.duration, stream.time_base)
    if d is None and container.duration:
        d = container.duration / 1_000_000
    if d is not None and (math.isnan(d) or d <= 0):
        d = None
    if until_s is not None:
        d = until_s if d is None else min(d, until_s)
    return d
