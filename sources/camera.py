"""A camera as a hot, shared, reference-counted source of frames (PyAV in a worker thread)."""

from __future__ import annotations

import logging
import time
from typing import Any

import reactivex

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
from sources.taps import SteadyTap

log = logging.getLogger("lookout.sources.camera")


class StreamUndecodable(RuntimeError):
    """Video packets arrive, but none of them decodes into a picture."""


class _EndOfFile(Exception):
    """A file (not looped) reached its end."""


class CameraSource(SourceBase):
    """One camera: one connection, one demuxing thread and one decoder, shared by all users.

    A :class:`~pipeline.core.frame.FrameSource`. The stream runs while someone
    holds it: :meth:`connect` returns a disposable hold, and every ``frames()``
    subscription holds it too. When the last hold is released the container is
    closed (the thread waits, idle, for the next hold). :meth:`latest` gives the
    newest frame, decoding on demand according to ``config.decode``; it never
    opens the stream by itself.

    Opening and reading are always bounded (``open_timeout_s``, ``read_timeout_s``);
    a stream without video packets for ``stall_timeout_s`` is reconnected (a
    stream where no data arrives at all is noticed within ``stall_timeout_s``);
    failures reconnect with exponential backoff and jitter (about 1 s up to
    ``reconnect_max_s``) for as long as the camera is held. Every opening (the
    first and each reconnect) waits for its turn on the camera's server
    (:mod:`sources.open_stagger`), so cameras of one server never open at the
    same instant. Every decode takes a slot of the process-wide
    :mod:`~sources.decode_queue` (one per core, earliest due first). After
    :meth:`keep_current` the decoder follows the stream for a few seconds, as
    ``keep_current_s`` and ``keep_current_share`` allow. Every text it logs or
    publishes is in plain words and free of credentials.

    Example::

        camera = CameraSource("porch", CameraConfig(url="rtsp://u:pw@cam.lan/live"))
        hold = camera.connect()
        frame = camera.latest(timeout=10)        # newest picture, or None
        motion_input = camera.frames(fps=5)       # steady 5 fps for a detector
        camera.states.subscribe(print)            # online/offline changes
        camera.stats().decode_seconds             # counters for metrics
        camera.keep_current()                     # a wake: follow the stream for a while
        hold.dispose(); camera.close()

    Args:
        name: the camera's name in ``pipeline.toml`` (put on every frame).
        config: its ``[cameras.NAME]`` table.
        clock: wall clock for ``Frame.wall_time`` and state times (epoch seconds).
        backoff: reconnect delays; default ``Backoff(1.0, config.reconnect_max_s)``.
        decode_queue: where decodes wait for a core; default the process-wide one.
        stagger: opening turns per server; default the process-wide one.
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
        self._keyframes = 0  # keyframe packets read (the condition is notified at each)
        self.gop = GopClock()
        """Keyframe arrivals: the GOP's length, when the next keyframe is due."""
        self._seq = 0

    # ------------------------------------------------------------ public API

    def __repr__(self) -> str:
        return f"CameraSource({self.name!r}, {self.safe_url!r}, decode={self.config.decode!r})"

    @property
    def safe_url(self) -> str:
        """The camera's URL without its password."""
        return self._spec.safe_url if self._spec else redact(self.config.url)

    @property
    def decoded_frames(self) -> int:
        """Frames decoded over the source's life (all connections); ``stats().frames_decoded``."""
        return self.stats().frames_decoded

    def freshest(self, timeout: float | None = None, *, due: float | None = None) -> Frame | None:
        """Return the newest frame (decoded now if the strategy defers decoding), or ``None``.

        Waits up to ``timeout`` seconds for a first frame when the camera is held
        but has none yet: not only for the first keyframe but for the first
        decoded picture (an H.264 decoder with B-frames gives its first picture
        a few packets after the keyframe). Returns ``None`` at once when nobody
        holds the camera, and ``None`` while it is offline. ``timeout=None`` or
        ``0`` does not wait. ``due`` (epoch seconds; default now) is when the
        picture was wanted: its place in the decode queue.
        """
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        with self._lock:
            seen = self._pictures
        while True:
            decoder, ready, announced = self._wait_for_picture(deadline, seen)
            if announced is not None:
                return announced
            if decoder is None:
                return None
            frame = decoder.newest(due)  # without the lock: decoding must not block the demuxer
            self._count_decodes(decoder)
            if frame is not None or not ready:
                return frame
            # A decoder that has given a picture returns None only once closed
            # (reconnect or release): wait for the next connection's picture.
            with self._lock:
                if self._decoder is decoder:
                    self._picture_ready = False

    def keyframe(
        self, max_age_s: float, timeout: float | None = None, *, due: float | None = None
    ) -> Frame | None:
        """A picture no older than ``max_age_s`` seconds, for about the cost of one decode.

        The picture of the newest keyframe when it arrived at most ``max_age_s``
        before the call: decoding that one packet, not the GOP up to now (or, free, a newer
        picture of the same GOP that is already decoded). When the newest
        keyframe is older, waits up to ``timeout`` seconds for the next one (at
        most one GOP) and returns its picture; when the keyframes so far say the
        next one comes later than that, returns ``None`` at once. What a timer look takes; a wake
        look takes :meth:`freshest`. ``due`` places the decode in the decode
        queue, as for :meth:`freshest`.

        Example::

            frame = camera.keyframe(max_age_s=2.0, timeout=2.5)  # 2 s GOP: never waits long

        Returns:
            The picture, or ``None`` when the camera is not held, closed, or no
            keyframe fresh enough came within ``timeout``.
        """
        deadline = time.monotonic() + max(0.0, timeout or 0.0)
        since = self._clock() - max_age_s  # as old as it may be when asked
        while True:
            with self._lock:
                if self._holders == 0 or self._closed:
                    return None
                decoder, seen = self._decoder, self._keyframes
            frame = decoder.newest_keyframe(since, due) if decoder is not None else None
            if decoder is not None:
                self._count_decodes(decoder)
            if frame is not None:
                return frame
            with self._lock:
                while self._keyframes == seen and self._holders and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not self._keyframe_within(remaining):
                        return None
                    self._lock.wait(remaining)

    def _keyframe_within(self, seconds: float) -> bool:
        """Whether the next keyframe may come within ``seconds`` (by the last GOP's length)."""
        return self.gop.comes_within(self._clock(), seconds)

    def keep_current(self, seconds: float | None = None) -> float:
        """Decode each packet as it arrives for ``seconds`` (default ``keep_current_s``).

        The watch path calls this on a wake its policy accepted: the follow-up
        looks of the next seconds find the decoder at the newest packet (one
        frame's decode each, and fresh). Requests overlap (the latest end
        wins) and their time is bounded by ``keep_current_share``
        (:class:`~sources.keep_current.KeepCurrent`): a scene with constant
        movement is never decoded in full for good. Costs nothing while the
        camera is not held; the decode strategies ``every_frame`` and
        ``keyframes`` are left as they are.

        Example::

            camera.keep_current()        # after an accepted wake
            camera.keep_current(2.0)     # or for 2 s

        Returns:
            The time (the camera's clock, epoch seconds) until which it is kept current.
        """
        return self.current.request(self._clock(), seconds)

    def _wait_for_picture(
        self, deadline: float | None, seen: int
    ) -> tuple[GopDecoder | None, bool, Frame | None]:
        """Wait until the current decoder has given a picture.

        Returns ``(decoder, True, None)`` then. When a connection announced its
        first picture after ``seen`` but has already ended (a file pass, a
        dropped stream), returns that picture as ``(None, False, frame)``.
        Without time left, returns ``(decoder, False, None)`` if a keyframe has
        arrived (one decode attempt is better than none), else ``(None, False,
        None)``. The demuxing thread notifies the condition when a connection's
        first picture is decoded, and on every change of holders, state or closing.
        """
        with self._lock:
            while True:
                if self._holders == 0 or self._closed:
                    return None, False, None
                decoder = self._decoder
                if decoder is not None and self._picture_ready:
                    return decoder, True, None
                if self._pictures != seen:
                    return None, False, self._announced
                remaining = 0.0 if deadline is None else deadline - time.monotonic()
                if remaining <= 0:
                    if decoder is not None and decoder.has_picture:
                        return decoder, False, None
                    return None, False, None
                self._lock.wait(remaining)

    def frames(
        self, fps: float | None = None, keyframes: bool = False
    ) -> reactivex.Observable[Frame]:
        """Frames as they come (``fps=None``) or at most ``fps`` per second of stream time.

        With ``keyframes`` only keyframes are given (each decoded alone with
        ``decode = "on_demand"``: one frame per GOP, not every frame).

        The observable is hot: subscribers get the live stream, and subscribing holds
        the camera open. All subscribers share the one decoder: a frame that is due
        for several of them is decoded once. It completes at the end of a file that
        is not looped and when the source is closed; it never errors on connection
        problems (the camera reconnects; watch :attr:`states`).

        Raises:
            ValueError: ``fps`` is not positive.
        """
        if fps is not None and not fps > 0:
            raise ValueError(f"The frame rate must be positive, got {fps}.")
        period = None if fps is None else 1.0 / fps
        return self._tap_observable(
            lambda observer: SteadyTap(observer, period, keyframes=keyframes)
        )

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
            if follow and self.current.active(info.wall_time) and decoder.behind:
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
                self._feed(taps, video.pace_time, decoder.newest, info.keyframe)
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
        return True

    def _count_decodes(self, decoder: GopDecoder) -> None:
        frames, seconds = decoder.take_totals()
        self._count_decoded(frames, seconds, decoder.last_frame_time)


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
