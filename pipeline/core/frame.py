"""The frame envelope that cameras emit and watches judge, and the interface of a frame source."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from reactivex import Observable
from reactivex.abc import DisposableBase

from pipeline.core.events import CameraState

RgbArray = npt.NDArray[np.uint8]

_reformatters = threading.local()


def _reformatter() -> Any:
    # PyAV caches one swscale context on each VideoFrame; two threads scaling the
    # same shared frame through it crash the process. One reformatter per thread
    # (each caches its own context) makes scaling a shared frame safe.
    rf = getattr(_reformatters, "rf", None)
    if rf is None:
        from av.video.reformatter import VideoReformatter

        rf = _reformatters.rf = VideoReformatter()
    return rf


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """One decoded picture from a camera.

    A frame keeps the decoder's own picture (``video``, an ``av.VideoFrame``) when
    it has one, so that scaling happens in swscale before any RGB conversion; a
    source that only has pixels (a JPEG snapshot, a test) passes ``rgb`` instead.

    Example:
        >>> import numpy as np
        >>> f = Frame(camera="porch", seq=1, wall_time=0.0, stream_time=None,
        ...           width=4, height=2, rgb=np.zeros((2, 4, 3), np.uint8))
        >>> f.to_rgb().shape
        (2, 4, 3)

    Attributes:
        camera: name of the camera in ``pipeline.toml``.
        seq: sequence number, increasing per camera connection lifetime.
        wall_time: epoch seconds when the frame arrived (the packet was read).
        stream_time: presentation time in seconds, ``None`` when the stream gave
            no ``pts`` (RTSP's first frame often has none).
        width, height: size in pixels.
        keyframe: whether the frame was a keyframe in the stream.
        video: the ``av.VideoFrame``, when the frame came from a decoder.
        rgb: an ``(height, width, 3)`` uint8 array, when no decoder frame exists.
    """

    camera: str
    seq: int
    wall_time: float
    stream_time: float | None
    width: int
    height: int
    keyframe: bool = False
    video: Any = field(default=None, repr=False)
    rgb: RgbArray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.video is None and self.rgb is None:
            raise ValueError("A frame needs either a decoded video frame or an RGB array.")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"Frame size must be positive, got {self.width}x{self.height}.")

    def reformat(
        self,
        width: int | None = None,
        height: int | None = None,
        format: str | None = None,
        interpolation: str | None = "AREA",
    ) -> Any:
        """Scale and/or convert the decoder frame in swscale; safe from any thread.

        Use this instead of ``frame.video.reformat(...)``: a camera hands the same
        decoded frame to every watch and detector, and PyAV's own per-frame
        scaler must not be used from two threads at once.

        Example:
            >>> small = frame.reformat(854, 480, format="yuv420p")  # doctest: +SKIP

        Returns:
            A new ``av.VideoFrame`` (or the frame itself when nothing changes).

        Raises:
            ValueError: the frame has no decoder frame (``video`` is ``None``).
        """
        if self.video is None:
            raise ValueError("This frame has no decoder frame to reformat; use to_rgb().")
        return _reformatter().reformat(
            self.video, width, height, format, interpolation=interpolation, threads=1
        )

    def to_rgb(self, width: int | None = None, height: int | None = None) -> RgbArray:
        """Return the picture as an RGB array, scaled to ``width`` x ``height`` if given.

        Scaling uses swscale's area filter on the decoder frame (cheap, before the
        RGB conversion) and Pillow's box filter on plain arrays.
        """
        w = width or self.width
        h = height or self.height
        if self.video is not None:
            rgb = self.reformat(w, h, format="rgb24")
            return rgb.to_ndarray()  # type: ignore[no-any-return]
        assert self.rgb is not None
        if (w, h) == (self.width, self.height):
            return self.rgb
        from PIL import Image

        return np.asarray(Image.fromarray(self.rgb).resize((w, h), Image.Resampling.BOX))

    @property
    def ref(self) -> dict[str, Any]:
        """A small JSON-able reference to this frame (camera, seq, times)."""
        return {
            "camera": self.camera,
            "seq": self.seq,
            "wall_time": self.wall_time,
            "stream_time": self.stream_time,
        }


class FrameProvider(Protocol):
    """Anything a watch can take its current frame from (a camera source, a replay).

    ``latest()`` returns the newest frame, decoding on demand, or ``None`` when
    there is none yet (camera offline, still connecting).
    """

    name: str

    def latest(self, timeout: float | None = None) -> Frame | None:
        """The newest frame, waiting at most ``timeout`` seconds for one."""
        ...


@dataclass(frozen=True, slots=True)
class CameraStats:
    """Counters and times of one frame source, read from the source itself.

    Counters cover the source's whole life (every connection), so they only grow
    and suit Prometheus counters. Times are epoch seconds from the source's clock,
    taken when the data arrived (not when a look used it).

    Example::

        s = camera.stats()
        age = time.time() - (s.last_packet_time or s.last_frame_time or time.time())
        print(s.frames_decoded, f"{s.decode_seconds:.2f} s", s.reconnects, s.online, age)

    Attributes:
        frames_decoded: pictures the decoder produced (``CameraSource``: follows the
            decode strategy; ``FrigateSnapshotSource``: JPEGs fetched and decoded).
        decode_seconds: monotonic wall time (``time.perf_counter``) spent inside
            decoder calls, summed over all threads that decoded (one timer pair per
            decode call, not per packet). It includes time the decoding thread
            waited for the CPU, so on a busy machine it is an upper bound of CPU time.
        packets: video packets read from the stream (``FrigateSnapshotSource``:
            JPEGs fetched).
        last_packet_time: arrival time of the newest video packet, ``None`` before one.
        last_frame_time: arrival time of the packet of the newest decoded picture,
            ``None`` before one. With ``on_demand`` or ``keyframes`` decoding it only
            moves when someone asks for a frame; ``last_packet_time`` shows whether
            video still flows.
        online: whether pictures flow now (``CameraState.online``); not to be
            confused with :attr:`FrameSource.held` (whether someone holds the source).
        reconnects: reconnect attempts (failed requests for Frigate snapshots).
    """

    frames_decoded: int = 0
    decode_seconds: float = 0.0
    packets: int = 0
    last_packet_time: float | None = None
    last_frame_time: float | None = None
    online: bool = False
    reconnects: int = 0

    @property
    def last_video_time(self) -> float | None:
        """The newest of ``last_packet_time`` and ``last_frame_time`` (``None`` before any).

        Example:
            >>> CameraStats(last_packet_time=12.0, last_frame_time=10.0).last_video_time
            12.0
        """
        times = [t for t in (self.last_packet_time, self.last_frame_time) if t is not None]
        return max(times) if times else None


class FrameSource(FrameProvider, Protocol):
    """A camera-like source of frames: a live camera, a Frigate snapshot camera, a replayed clip.

    Implemented by ``sources.camera.CameraSource`` (PyAV),
    ``sources.frigate_snapshot.FrigateSnapshotSource`` and
    ``pipeline.app.replay.clip_reader.ClipReader``; ``sources.source_base.SourceBase``
    holds what they share (holds, subscribers, state, counters, shutdown), and
    ``sources.camera_factory.make_camera`` picks one for a ``[cameras.NAME]`` table.

    Example::

        source: FrameSource = make_camera("porch", config)
        hold = source.connect()                     # the stream runs while held
        look = source.freshest(timeout=2, due=t)    # a detection wake: newest picture
        timer = source.keyframe(max_age_s=2, timeout=2, due=t)  # a timer look: about one decode
        source.keep_current()                       # a wake was news: follow the stream a while
        source.frames(fps=5).subscribe(detector)    # a steady rate for a detector
        source.state.online, source.stats().frames_decoded
        hold.dispose(); source.close()

    Two different "connected" ideas: :attr:`held` says whether someone holds the
    source open (it is running on someone's behalf); ``state.online`` and
    ``stats().online`` say whether pictures actually flow.
    """

    @property
    def held(self) -> bool:
        """Whether someone holds the source open (a ``connect()`` or ``frames()`` subscriber)."""
        ...

    @property
    def state(self) -> CameraState:
        """The current connection state: online, reconnects, last error in plain words."""
        ...

    @property
    def states(self) -> Observable[CameraState]:
        """Every state change; a new subscriber first gets the current state."""
        ...

    def connect(self) -> DisposableBase:
        """Hold the source open; dispose the returned object to release the hold."""
        ...

    def freshest(self, timeout: float | None = None, *, due: float | None = None) -> Frame | None:
        """The newest picture: decodes forward to the newest packet that has arrived.

        What a wake look wants. Costs up to one GOP of decoding on a camera that
        decodes on demand. ``None`` when the source is not held, offline, or has no
        picture within ``timeout`` seconds. ``due`` (epoch seconds, default now)
        is when the picture was wanted: decodes wait for a core in that order.
        """
        ...

    def keyframe(
        self, max_age_s: float, timeout: float | None = None, *, due: float | None = None
    ) -> Frame | None:
        """A picture no older than ``max_age_s``, for about the cost of decoding one frame.

        The newest keyframe's picture when it arrived at most ``max_age_s`` seconds
        ago (or a newer picture of the same GOP that is already decoded: free).
        Otherwise waits up to ``timeout`` seconds for the next keyframe and returns
        its picture; ``None`` when none came (a virtual-clock source never waits).
        What a timer look wants: at most about one GOP old, and cheap. ``due``
        as for :meth:`freshest`.
        """
        ...

    def keep_current(self, seconds: float | None = None) -> float:
        """Decode packets as they arrive for ``seconds`` (default: the source's setting).

        Called on a wake the watch's policy accepted, so that the follow-up
        looks are fresh and cheap; the source bounds the share of time it
        spends so. Returns the time (the source's clock) until which it is kept
        current; a source with nothing to keep current returns the time now.
        """
        ...

    def frames(self, fps: float | None = None, keyframes: bool = False) -> Observable[Frame]:
        """Frames as they come, or at most ``fps`` per second of the source's own time.

        ``keyframes``: keyframes only (one decode per GOP; every snapshot of a
        source that has no GOP).
        """
        ...

    def stats(self) -> CameraStats:
        """Counters for metrics (cheap; never waits for a decode)."""
        ...

    def close(self) -> None:
        """Stop the source and complete its observables; safe to call twice."""
        ...
