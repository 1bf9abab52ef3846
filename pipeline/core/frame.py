"""The frame envelope that cameras emit and watches judge."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

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
