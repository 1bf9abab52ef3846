"""The stream side of a camera: one worker thread reading the stream into the decoder.

:class:`CameraStream` owns a camera's connection: it opens the stream while
someone holds the camera (each opening in its turn on the camera's server,
:mod:`sources.open_stagger`), hands every video packet to the
:class:`~sources.decode.GopDecoder` (decoding each one as it arrives while the
camera is kept current), counts keyframes and the GOP's length, announces the
first picture of each connection, gives due frames to ``frames()``
subscribers, and reconnects with backoff. :class:`~sources.camera.CameraSource`
adds what users ask of a camera (``freshest``, ``keyframe``, ``keep_current``,
``frames``); build cameras with that class.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pipeline.core.backoff import Backoff
from pipeline.core.config import CameraConfig
from pipeline.core.frame import Frame
from pipeline.core.logs import log_unexpected
from pipeline.core.redact import redact
from sources.decode import GopDecoder, PacketInfo
from sources.decode_queue import DecodeQueue, shared_decode_queue
from sources.gop_clock import GopClock
from sources.keep_current import KeepCurrent
from sources.open_stagger import OpenStagger, shared_open_stagger, stagger_host
from sources.source_base import Clock, SourceBase
from sources.stream_errors import safe_error
from sources.stream_open import StreamOpenError, open_container
from sources.stream_reader import StreamReader, StreamReadError, StreamStalled
from sources.stream_spec import OpenSpec, open_spec

log = logging.getLogger("lookout.sources.camera")


class StreamUndecodable(RuntimeError):
    """Video packets arrive, but none of them decodes into a picture."""


class _EndOfFile(Exception):
    """A file (not looped) reached its end."""


class CameraStream(SourceBase):
    """A camera's connection and worker thread (the base of :class:`~sources.camera.CameraSource`).

    Its arguments are :class:`~sources.camera.CameraSource`'s (documented there).
    """

    def __init__(
        self,
        name: str,
        config: CameraConfig,
        *,
        clock: Clock = time.time,
        backoff: Backoff | None = None,
        decode_queue: DecodeQueue | None = None,
        stagger: OpenStagger | None = None,
    ) -> None:
        super().__init__(name, clock=clock)
        self.config = config
        self.decode_queue = decode_queue or shared_decode_queue()
        self._stagger = stagger or shared_open_stagger()
        self.current = KeepCurrent(config.keep_current_s, config.keep_current_share)
        """When the decoder follows the stream after wakes (:meth:`keep_current`)."""
        self.kept_current = 0
        """Packets decoded as they arrived because the decoder was kept current."""
        self._backoff = backoff or Backoff(initial=1.0, cap=max(1.0, config.reconnect_max_s))
        self._join_timeout_s = config.open_timeout_s + config.read_timeout_s + 5
        self._spec: OpenSpec | None = None
        self._spec_error: str | None = None
        try:
            self._spec = open_spec(config)
        except Exception as exc:
            log_unexpected(log, f"camera {name}: unusable address", exc, expected=(ValueError,))
            self._spec_error = safe_error(exc)
        self._decoder: GopDecoder | None = None
        self._picture_ready = False  # the current decoder has given a picture
        self._pictures = 0  # first pictures announced (one per connection or file pass)
        self._announced: Frame | None = None  # the latest one announced
        self._hinted = False  # the full-decode hint was logged
        self._keyframes = 0  # keyframe packets read (the condition is notified at each)
        self.gop = GopClock()
        """Keyframe arrivals: the GOP's length, when the next keyframe is due."""
        self._seq = 0

    @property
    def safe_url(self) -> str:
        """The camera's URL without its password."""
        return self._spec.safe_url if self._spec else redact(self.config.url)

    # ------------------------------------------------------------ hooks

    def _on_connect(self) -> None:
        self._start_worker("camera")

    def _refresh_counters(self) -> None:
        with self._lock:
            decoder = self._decoder
        if decoder is not None:
            self._count_decodes(decoder)

    def _shutdown(self) -> None:
        with self._lock:
            self._announced = None

    # ------------------------------------------------------------ worker

    def _work(self) -> None:
        while self._wait_for_holders():
            error: str | None = None
            try:
                self._session()
            except _EndOfFile:
                self._end_of_file()
                continue
            except (StreamOpenError, StreamStalled, StreamReadError, StreamUndecodable) as exc:
                error = redact(str(exc))  # already plain words
            except Exception as exc:
                log_unexpected(log, f"camera {self.name}: {self.safe_url} failed", exc)
                error = f"{self.safe_url}: {safe_error(exc)}"
            if self._stop.is_set():
                break
            with self._lock:
                if self._holders == 0 or error is None:  # released: not a failure
                    self._set_state(online=False, last_error=self._state.last_error)
                    continue
            delay = self._backoff.next_delay()
            log.warning("camera %s: %s; reconnecting in %.1f s", self.name, error, delay)
            self._set_state(online=False, last_error=error, failed=True)
            self._stop.wait(delay)
        self._set_state(online=False, last_error=self._state.last_error)

    def _wait_for_holders(self) -> bool:
        """Wait until someone holds the camera; ``False`` once it is closing."""
        with self._lock:
            while self._holders == 0 and not self._stop.is_set():
                self._lock.wait()
        return not self._stop.is_set()

    def _end_of_file(self) -> None:
        self._set_state(online=False, last_error="end of file")
        self._complete_taps()
        with self._lock:  # a file plays once per hold
            while self._holders > 0 and not self._stop.is_set():
                self._lock.wait()

    def _session(self) -> None:
        if self._spec is None:
            raise StreamOpenError(self._spec_error or "invalid camera URL")
        spec = self._spec
        offset = 0.0
        while True:
            if not self._wait_for_turn(spec):
                return  # released or stopped while waiting
            container = open_container(spec)
            try:
                end = self._demux(container, spec, offset)
            finally:
                with self._lock:
                    decoder, self._decoder = self._decoder, None
                    self._picture_ready = False
                if decoder is not None:
                    self._count_decodes(decoder)
                    decoder.close()
                container.close()
            if end is None:
                return  # released or stopped
            if spec.live:
                raise StreamStalled(f"{spec.safe_url}: the stream ended (the server closed it)")
            if not self.config.loop:
                raise _EndOfFile()
            offset = end

    def _wait_for_turn(self, spec: OpenSpec) -> bool:
        """Wait for this opening's turn on the camera's server; ``False`` if released meanwhile."""
        delay = self._stagger.turn(stagger_host(spec.target))
        if delay > 0 and self._stop.wait(delay):
            return False
        return self.held

    def _demux(self, container: Any, spec: OpenSpec, offset: float) -> float | None:
        """Read packets until released/stopped (``None``) or end of input (last stream time)."""
        codec = container.streams.video[0].codec_context
        decoder = GopDecoder(self.name, codec, self.config.decode, gate=self.decode_queue.slot)
        follow = self.config.decode == "on_demand" and self.current.seconds > 0
        with self._lock:
            self._decoder = decoder
            self._picture_ready = False
        stall_s = self.config.stall_timeout_s
        reader = StreamReader(
            container,
            spec,
            stall_timeout_s=stall_s,
            realtime=self.config.realtime,
            offset=offset,
            stop=self._stop,
            keep_going=lambda: self.held,
        )
        pictured = False  # a picture was decoded on this connection (or pass over a file)
        for video in reader:
            taps = self._current_taps()
            self._seq += 1
            info = PacketInfo(
                seq=self._seq,
                wall_time=self._clock(),
                stream_time=video.stream_time,
                keyframe=bool(video.packet.is_keyframe),
                size=video.packet.size,
            )
            self._count_packet(info.wall_time)
            decoder.push(video.packet, info)
            kept = follow and self.current.active(info.wall_time)
            if kept and decoder.behind:
                decoder.newest(info.wall_time)  # kept current: this packet (after a catch-up)
                self.kept_current += 1
            if info.keyframe:
                with self._lock:
                    self._keyframes += 1
                    self.gop.keyframe(info.wall_time)
                    self._lock.notify_all()  # wake keyframe() callers waiting for one
            if not pictured:
                # Online means a picture was decoded, not merely that packets arrive.
                pictured = self._announce_first_picture(decoder, spec)
                if not pictured and time.monotonic() - reader.opened > stall_s:
                    raise StreamUndecodable(_undecodable(spec, decoder, f"in {stall_s:g} s"))
            if taps:
                # Keyframe taps take what costs no decode of its own: keyframes, and
                # every frame while the decoder is kept current.
                self._feed(taps, video.pace_time, decoder.newest, info.keyframe or kept)
        if reader.stopped:
            return None
        if not pictured:
            raise StreamUndecodable(_undecodable(spec, decoder, "in the whole input"))
        return reader.end_time

    def _announce_first_picture(self, decoder: GopDecoder, spec: OpenSpec) -> bool:
        """Decode the connection's first picture if one is there; go online with it."""
        first = decoder.newest() if decoder.has_picture else None
        if first is None:
            return False
        with self._lock:
            self._picture_ready = True
            self._pictures += 1
            self._announced = first
            self._lock.notify_all()  # wake latest() callers waiting for a picture
        if not self._state.online:
            self._backoff.reset()
            self._set_state(online=True, last_error=None)
            log.info("camera %s: online (%s)", self.name, spec.safe_url)
            hint = full_decode_hint(self.config, first.width, first.height)
            if hint and not self._hinted:
                self._hinted = True
                log.info("camera %s: %s", self.name, hint)
        return True

    def _count_decodes(self, decoder: GopDecoder) -> None:
        frames, seconds = decoder.take_totals()
        self._count_decoded(frames, seconds, decoder.last_frame_time)


HD_PIXELS = 1280 * 720
"""Pictures larger than this cost enough to decode that a detector should take keyframes."""


def full_decode_hint(config: CameraConfig, width: int, height: int) -> str | None:
    """A hint when a detector makes a high-resolution camera decode every frame, else ``None``.

    Example:
        >>> cfg = CameraConfig(url="rtsp://cam/main", detect={"type": "motion"})
        >>> full_decode_hint(cfg, 1920, 1080)[:40]
        'its motion detector decodes every frame '
        >>> full_decode_hint(cfg, 640, 360) is None
        True
    """
    detect = config.detect
    keyframes = getattr(detect, "keyframes", None)
    if keyframes is not False or width * height <= HD_PIXELS:
        return None
    kind = getattr(detect, "type", "")
    return (
        f"its {kind} detector decodes every frame of a {width}x{height} stream; with "
        f"keyframes = true in [cameras.NAME.detect] it decodes about a fifth as many "
        "(keyframes, and every frame only after a sign of change), or use the camera's "
        "low-resolution stream as its url"
    )


def _undecodable(spec: OpenSpec, decoder: GopDecoder, where: str) -> str:
    if decoder.errors:
        why = f"the decoder rejected {decoder.errors} packets"
    elif not decoder.has_picture:
        why = "no keyframe arrived"
    else:
        why = "the decoder gave no picture"
    return (
        f"{spec.safe_url}: the video cannot be decoded ({why} {where}; "
        "corrupt data, or a codec profile this FFmpeg cannot decode)"
    )
