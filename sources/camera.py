"""A camera as a hot, shared, reference-counted source of frames (PyAV in a worker thread)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

import reactivex
from reactivex import abc
from reactivex.disposable import Disposable
from reactivex.subject import BehaviorSubject

from pipeline.core.backoff import Backoff
from pipeline.core.config import CameraConfig
from pipeline.core.events import CameraState
from pipeline.core.frame import Frame
from pipeline.core.redact import redact
from sources.camera_stats import CameraStats
from sources.decode import GopDecoder, PacketInfo
from sources.stream_open import OpenSpec, StreamOpenError, open_container, open_spec, safe_error

log = logging.getLogger("lookout.sources.camera")

Clock = Callable[[], float]


class StreamStalled(RuntimeError):
    """No video packet arrived for longer than the stall timeout."""


class StreamUndecodable(RuntimeError):
    """Video packets arrive, but none of them decodes into a picture."""


class _EndOfFile(Exception):
    """A file (not looped) reached its end."""


@dataclass(eq=False)
class _Tap:
    """One ``frames()`` subscriber: its rate and when it is next due."""

    observer: abc.ObserverBase[Frame]
    period: float | None
    next_due: float | None = None
    last_seq: int = -1
    failed: bool = field(default=False)

    def due(self, t: float) -> bool:
        if self.period is None:
            return True
        if self.next_due is None or t < self.next_due - 2 * self.period:
            self.next_due = t  # first packet, or time went backwards (reconnect)
        return t >= self.next_due

    def advance(self, t: float) -> None:
        if self.period is None or self.next_due is None:
            return
        self.next_due += self.period
        if self.next_due <= t:
            self.next_due = t + self.period


class CameraSource:
    """One camera: one connection, one demuxing thread and one decoder, shared by all users.

    The stream runs while someone holds it: :meth:`connect` returns a disposable
    hold, and every ``frames()`` subscription holds it too. When the last hold is
    released the container is closed (the thread waits, idle, for the next hold).
    :meth:`latest` gives the newest frame, decoding on demand according to
    ``config.decode``; it never opens the stream by itself.

    Opening and reading are always bounded (``open_timeout_s``, ``read_timeout_s``);
    a stream without video packets for ``stall_timeout_s`` is reconnected; failures
    reconnect with exponential backoff and jitter (about 1 s up to
    ``reconnect_max_s``) for as long as the camera is held. Every text it logs or
    publishes is free of credentials.

    Example::

        camera = CameraSource("porch", CameraConfig(url="rtsp://u:pw@cam.lan/live"))
        hold = camera.connect()
        frame = camera.latest(timeout=10)        # newest picture, or None
        motion_input = camera.frames(fps=5)       # steady 5 fps for a detector
        camera.states.subscribe(print)            # online/offline changes
        camera.stats().decode_seconds             # counters for metrics
        hold.dispose(); camera.close()

    Args:
        name: the camera's name in ``pipeline.toml`` (put on every frame).
        config: its ``[cameras.NAME]`` table.
        clock: wall clock for ``Frame.wall_time`` and state times (epoch seconds).
        backoff: reconnect delays; default ``Backoff(1.0, config.reconnect_max_s)``.
    """

    def __init__(
        self,
        name: str,
        config: CameraConfig,
        *,
        clock: Clock = time.time,
        backoff: Backoff | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self._clock = clock
        self._backoff = backoff or Backoff(initial=1.0, cap=max(1.0, config.reconnect_max_s))
        self._spec: OpenSpec | None = None
        self._spec_error: str | None = None
        try:
            self._spec = open_spec(config)
        except Exception as exc:
            self._spec_error = safe_error(exc)
        self._lock = threading.Condition(threading.RLock())
        self._stop = threading.Event()
        self._holders = 0
        self._taps: list[_Tap] = []
        self._decoder: GopDecoder | None = None
        self._picture_ready = False  # the current decoder has given a picture
        self._pictures = 0  # first pictures announced (one per connection or file pass)
        self._announced: Frame | None = None  # the latest one announced
        self._thread: threading.Thread | None = None
        self._seq = 0
        self._closed = False
        self._state = CameraState(camera=name, online=False, since=clock())
        self._states: BehaviorSubject[CameraState] = BehaviorSubject(self._state)
        # Totals of the decoders already counted (see _count_decodes); the demuxing
        # thread alone writes _packets and _last_packet_time.
        self._frames_decoded = 0
        self._decode_seconds = 0.0
        self._last_frame_time: float | None = None
        self._packets = 0
        self._last_packet_time: float | None = None

    # ------------------------------------------------------------ public API

    def __repr__(self) -> str:
        url = self._spec.safe_url if self._spec else redact(self.config.url)
        return f"CameraSource({self.name!r}, {url!r}, decode={self.config.decode!r})"

    def __enter__(self) -> CameraSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def safe_url(self) -> str:
        """The camera's URL without its password."""
        return self._spec.safe_url if self._spec else redact(self.config.url)

    def connect(self) -> abc.DisposableBase:
        """Hold the stream open; dispose the returned object to release the hold.

        Raises:
            RuntimeError: the source is closed.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError(f"Camera {self.name!r} is closed.")
            self._holders += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"camera-{self.name}", daemon=True
                )
                self._thread.start()
            self._lock.notify_all()
        released = threading.Event()

        def release() -> None:
            if released.is_set():
                return
            released.set()
            with self._lock:
                self._holders -= 1
                self._lock.notify_all()

        return Disposable(release)

    @property
    def decoded_frames(self) -> int:
        """Frames decoded over the source's life (all connections); ``stats().frames_decoded``."""
        return self.stats().frames_decoded

    def stats(self) -> CameraStats:
        """Frames decoded, decode time, packets, arrival times, online and reconnects, now.

        Cheap and non-blocking (it never waits for a decode in progress): fit for
        every metrics scrape. Counters cover all connections and only grow.

        Example::

            s = camera.stats()
            print(s.packets, s.frames_decoded, f"{s.decode_seconds:.3f} s", s.last_packet_time)
        """
        with self._lock:
            decoder = self._decoder
        if decoder is not None:
            self._count_decodes(decoder)
        with self._lock:
            return CameraStats(
                frames_decoded=self._frames_decoded,
                decode_seconds=self._decode_seconds,
                packets=self._packets,
                last_packet_time=self._last_packet_time,
                last_frame_time=self._last_frame_time,
                connected=self._state.online,
                reconnects=self._state.reconnects,
            )

    @property
    def connected(self) -> bool:
        """Whether someone holds the stream."""
        with self._lock:
            return self._holders > 0

    def latest(self, timeout: float | None = None) -> Frame | None:
        """Return the newest frame (decoded now if the strategy defers decoding), or ``None``.

        Waits up to ``timeout`` seconds for a first frame when the camera is held
        but has none yet: not only for the first keyframe but for the first
        decoded picture (an H.264 decoder with B-frames gives its first picture
        a few packets after the keyframe). Returns ``None`` at once when nobody
        holds the camera, and ``None`` while it is offline. ``timeout=None`` or
        ``0`` does not wait.
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
            frame = decoder.newest()  # without the lock: decoding must not block the demuxer
            self._count_decodes(decoder)
            if frame is not None or not ready:
                return frame
            # A decoder that has given a picture returns None only once closed
            # (reconnect or release): wait for the next connection's picture.
            with self._lock:
                if self._decoder is decoder:
                    self._picture_ready = False

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

    def frames(self, fps: float | None = None) -> reactivex.Observable[Frame]:
        """Frames as they come (``fps=None``) or at most ``fps`` per second of stream time.

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

        def subscribe(
            observer: abc.ObserverBase[Frame], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            tap = _Tap(observer, period)
            with self._lock:
                if self._closed:
                    observer.on_completed()
                    return Disposable()
                self._taps.append(tap)
            hold = self.connect()

            def dispose() -> None:
                with self._lock:
                    if tap in self._taps:
                        self._taps.remove(tap)
                hold.dispose()

            return Disposable(dispose)

        return reactivex.create(subscribe)

    @property
    def state(self) -> CameraState:
        """The current connection state (online, reconnects, last error)."""
        with self._lock:
            return self._state

    @property
    def states(self) -> reactivex.Observable[CameraState]:
        """Every state change; a new subscriber first gets the current state."""
        return self._states

    def close(self) -> None:
        """Stop the worker thread, close the stream and complete every observable.

        Blocks until the thread has ended (at most about the open plus read timeout,
        when it is inside a blocking network call). Safe to call twice.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._announced = None
            self._stop.set()
            self._lock.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.config.open_timeout_s + self.config.read_timeout_s + 5)
        with self._lock:
            taps, self._taps = self._taps, []
        for tap in taps:
            _safe_call(tap.observer.on_completed)
        self._states.on_completed()

    # ------------------------------------------------------------ worker

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                while self._holders == 0 and not self._stop.is_set():
                    self._lock.wait()
            if self._stop.is_set():
                break
            error: str | None = None
            try:
                self._session()
            except _EndOfFile:
                self._set_state(online=False, last_error="end of file")
                self._complete_taps()
                with self._lock:  # a file plays once per hold
                    while self._holders > 0 and not self._stop.is_set():
                        self._lock.wait()
                continue
            except (StreamOpenError, StreamStalled, StreamUndecodable) as exc:
                error = redact(str(exc))
            except Exception as exc:
                error = f"{self.safe_url}: {safe_error(exc)}"
            if self._stop.is_set():
                break
            with self._lock:
                if self._holders == 0:
                    self._set_state(online=False, last_error=self._state.last_error)
                    continue
            delay = self._backoff.next_delay()
            log.warning("camera %s: %s; reconnecting in %.1f s", self.name, error, delay)
            self._set_state(online=False, last_error=error, reconnects=self._state.reconnects + 1)
            self._stop.wait(delay)
        self._set_state(online=False, last_error=self._state.last_error)

    def _session(self) -> None:
        if self._spec is None:
            raise StreamOpenError(self._spec_error or "invalid camera URL")
        spec = self._spec
        offset = 0.0
        while True:
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

    def _demux(self, container: Any, spec: OpenSpec, offset: float) -> float | None:
        """Read packets until released/stopped (``None``) or end of input (last stream time)."""
        stream = container.streams.video[0]
        decoder = GopDecoder(self.name, stream.codec_context, self.config.decode)
        with self._lock:
            self._decoder = decoder
            self._picture_ready = False
        tb: Fraction | None = stream.time_base
        # pts * num / den: exact enough, and Fraction arithmetic per packet is not free.
        tb_num, tb_den = (tb.numerator, tb.denominator) if tb else (0, 1)
        index = stream.index
        rate = stream.average_rate or stream.base_rate or 25
        frame_s = float(1 / rate) if rate else 0.04
        pace = not spec.live and self.config.realtime
        start_mono: float | None = None
        start_t = 0.0
        last_video = time.monotonic()
        opened = last_video
        pictured = False  # a picture was decoded on this connection (or pass over a file)
        last_t = offset
        stall_s = self.config.stall_timeout_s
        for packet in container.demux():
            now = time.monotonic()
            if self._stop.is_set():
                return None
            with self._lock:
                if self._holders == 0:
                    return None
                taps = list(self._taps) if self._taps else None
            if packet.stream_index != index or packet.size == 0:
                if now - last_video > stall_s:
                    raise StreamStalled(f"{spec.safe_url}: no video for {stall_s:g} s")
                continue
            last_video = now
            pts = packet.pts if packet.pts is not None else packet.dts
            stream_time = None if pts is None or tb is None else pts * tb_num / tb_den + offset
            pace_t = stream_time if stream_time is not None else last_t + frame_s
            last_t = pace_t
            if pace:
                if start_mono is None:
                    start_mono, start_t = now, pace_t
                wait = start_mono + (pace_t - start_t) - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    return None
            self._seq += 1
            info = PacketInfo(
                seq=self._seq,
                wall_time=self._clock(),
                stream_time=stream_time,
                keyframe=bool(packet.is_keyframe),
                size=packet.size,
            )
            self._packets += 1
            self._last_packet_time = info.wall_time
            decoder.push(packet, info)
            if not pictured:
                # Online means a picture was decoded, not merely that packets arrive.
                first = decoder.newest() if decoder.has_picture else None
                pictured = first is not None
                if pictured:
                    with self._lock:
                        self._picture_ready = True
                        self._pictures += 1
                        self._announced = first
                        self._lock.notify_all()  # wake latest() callers waiting for a picture
                    if not self._state.online:
                        self._backoff.reset()
                        self._set_state(online=True, last_error=None)
                        log.info("camera %s: online (%s)", self.name, spec.safe_url)
                elif now - opened > stall_s:
                    raise StreamUndecodable(_undecodable(spec, decoder, f"in {stall_s:g} s"))
            if taps:
                self._feed_taps(taps, decoder, pace_t if stream_time is None else stream_time)
        if not pictured:
            raise StreamUndecodable(_undecodable(spec, decoder, "in the whole input"))
        return last_t + frame_s

    def _feed_taps(self, taps: list[_Tap], decoder: GopDecoder, t: float) -> None:
        due = [tap for tap in taps if tap.due(t)]
        if not due:
            return
        frame = decoder.newest()
        if frame is None:
            return
        for tap in due:
            if frame.seq == tap.last_seq:
                continue
            tap.last_seq = frame.seq
            tap.advance(t)
            _safe_call(tap.observer.on_next, frame)

    def _complete_taps(self) -> None:
        with self._lock:
            taps, self._taps = self._taps, []
        for tap in taps:
            _safe_call(tap.observer.on_completed)

    def _count_decodes(self, decoder: GopDecoder) -> None:
        frames, seconds = decoder.take_totals()
        last = decoder.last_frame_time
        with self._lock:
            self._frames_decoded += frames
            self._decode_seconds += seconds
            if last is not None and (self._last_frame_time is None or last > self._last_frame_time):
                self._last_frame_time = last

    def _set_state(
        self, *, online: bool, last_error: str | None, reconnects: int | None = None
    ) -> None:
        with self._lock:
            old = self._state
            new = replace(
                old,
                online=online,
                last_error=None if last_error is None else redact(last_error),
                reconnects=old.reconnects if reconnects is None else reconnects,
            )
            if new == old:
                return
            self._state = replace(new, since=self._clock())
            state = self._state
            self._lock.notify_all()
        self._states.on_next(state)


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


def _safe_call(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except Exception as exc:  # a subscriber's error must not stop the camera
        log.error("frame subscriber failed: %s", redact(safe_error(exc)))
