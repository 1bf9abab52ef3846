"""A camera as a hot, shared, reference-counted source of frames (PyAV in a worker thread)."""

from __future__ import annotations

import time

import reactivex

from pipeline.core.frame import Frame
from sources.camera_stream import CameraStream, StreamUndecodable
from sources.decode import GopDecoder
from sources.taps import SteadyTap

__all__ = ["CameraSource", "StreamUndecodable"]


class CameraSource(CameraStream):
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

    def __repr__(self) -> str:
        return f"CameraSource({self.name!r}, {self.safe_url!r}, decode={self.config.decode!r})"

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
