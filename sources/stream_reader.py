"""The video packets of one opened input: stream times, real-time pacing, stalls in plain words."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from sources.stream_errors import explain_read_error, say_seconds
from sources.stream_spec import OpenSpec


class StreamStalled(RuntimeError):
    """No video packet arrived for longer than the stall timeout (the text is plain words)."""


class StreamReadError(RuntimeError):
    """Reading an opened stream failed (the text is plain words, free of credentials)."""


@dataclass(frozen=True, slots=True)
class VideoPacket:
    """One video packet and its times.

    Attributes:
        packet: the ``av.Packet``.
        stream_time: presentation time in seconds (plus the loop offset), ``None``
            without ``pts``.
        pace_time: ``stream_time``, or an estimate one frame after the previous
            packet when the packet has no time: never ``None``.
    """

    packet: Any
    stream_time: float | None
    pace_time: float


class StreamReader:
    """Iterate the video packets of one opened container, watching for stalls.

    - Packets of other streams and empty packets are skipped.
    - A file read with ``realtime`` is paced to its own timestamps, like a camera.
    - No video packet for more than ``stall_timeout_s`` (only other streams flow)
      raises :class:`StreamStalled` ("no video for 10 s"), and so does a read
      that timed out, whether FFmpeg raises or hands out the scrap it had (RTSP
      does); a read that fails otherwise raises :class:`StreamReadError`, in
      plain words too (never FFmpeg's errno text).

    A blocked read ends after ``spec.read_timeout_s`` (which
    :func:`~sources.stream_open.open_spec` caps at the stall timeout), so a
    stream where no data arrives at all is detected within ``stall_timeout_s``.

    Example::

        reader = StreamReader(container, spec, stall_timeout_s=20, realtime=True)
        for video in reader:
            decoder.push(video.packet, ...)
        next_offset = reader.end_time   # where a looped file's next pass starts

    Args:
        container: an opened ``av`` input container (see ``open_container``).
        spec: what was opened (its ``safe_url`` goes into messages).
        stall_timeout_s: longest time without a video packet.
        realtime: pace a file (not a live input) to its timestamps.
        offset: added to every stream time (a looped file's previous passes).
        stop: set to end the iteration (and any pacing wait) early.
        keep_going: checked on every packet; ``False`` ends the iteration.
    """

    def __init__(
        self,
        container: Any,
        spec: OpenSpec,
        *,
        stall_timeout_s: float,
        realtime: bool = True,
        offset: float = 0.0,
        stop: threading.Event | None = None,
        keep_going: Callable[[], bool] = lambda: True,
    ) -> None:
        stream = container.streams.video[0]
        self._container = container
        self._spec = spec
        self._index = stream.index
        tb: Fraction | None = stream.time_base
        self._tb = tb
        # pts * num / den: exact enough, and Fraction arithmetic per packet is not free.
        self._tb_num, self._tb_den = (tb.numerator, tb.denominator) if tb else (0, 1)
        rate = stream.average_rate or stream.base_rate or 25
        self.frame_s = float(1 / rate) if rate else 0.04
        self._pace = not spec.live and realtime
        self._stall_s = stall_timeout_s
        self._offset = offset
        self._stop = stop or threading.Event()
        self._keep_going = keep_going
        self.opened = time.monotonic()
        """Monotonic time the reader was made (just after the open)."""
        self._quiet_since = self.opened  # waiting for video since (the open, or the last yield)
        self.last_time = offset
        """``pace_time`` of the newest video packet."""
        self.stopped = False
        """Whether the iteration ended because of ``stop`` or ``keep_going``."""
        self._start_mono: float | None = None
        self._start_t = 0.0

    @property
    def end_time(self) -> float:
        """Stream time just after the last packet: the offset of a looped file's next pass."""
        return self.last_time + self.frame_s

    def __iter__(self) -> Iterator[VideoPacket]:
        packets = iter(self._container.demux())
        while True:
            asked = time.monotonic()
            packet = self._next(packets)
            if packet is None:
                return
            if self._stop.is_set() or not self._keep_going():
                self.stopped = True
                return
            now = time.monotonic()
            quiet = now - self._quiet_since
            if quiet > self._stall_s or now - asked >= self._spec.read_timeout_s:
                # Other streams flow without video, or the read timed out and FFmpeg
                # handed out the scrap it had (RTSP does): no video for too long.
                raise StreamStalled(f"{self._spec.safe_url}: no video for {say_seconds(quiet)} s")
            if packet.stream_index != self._index or packet.size == 0:
                continue
            video = self._times(packet)
            if self._pace and not self._wait_for(video.pace_time):
                self.stopped = True
                return
            yield video
            # The time the consumer spent on the packet (decoding, subscribers) is not
            # the stream's silence: wait for the next video from now on.
            self._quiet_since = time.monotonic()

    def _next(self, packets: Iterator[Any]) -> Any:
        try:
            return next(packets, None)
        except Exception as exc:  # PyAV raises many types; say which in plain words
            idle = time.monotonic() - self._quiet_since
            reason, timed_out = explain_read_error(exc, self._spec, idle)
            if timed_out:
                raise StreamStalled(f"{self._spec.safe_url}: {reason}") from None
            raise StreamReadError(f"{self._spec.safe_url}: {reason}") from None

    def _times(self, packet: Any) -> VideoPacket:
        pts = packet.pts if packet.pts is not None else packet.dts
        stream_time = (
            None
            if pts is None or self._tb is None
            else pts * self._tb_num / self._tb_den + self._offset
        )
        pace_t = stream_time if stream_time is not None else self.last_time + self.frame_s
        self.last_time = pace_t
        return VideoPacket(packet, stream_time, pace_t)

    def _wait_for(self, pace_t: float) -> bool:
        """Wait until ``pace_t`` is due on the wall clock; ``False`` when stopped meanwhile."""
        now = time.monotonic()
        if self._start_mono is None:
            self._start_mono, self._start_t = now, pace_t
        wait = self._start_mono + (pace_t - self._start_t) - now
        return not (wait > 0 and self._stop.wait(wait))
