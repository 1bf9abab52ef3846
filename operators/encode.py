"""Shrink a frame and encode it as JPEG, scaling in swscale before any RGB conversion.

Measured on the 2-core dev machine from a decoded 1080p frame to 854x480 JPEG
bytes: ``to_image()`` + Pillow resize + save costs about 39 ms of CPU; scaling
in swscale (area filter) first and encoding the small frame costs a few ms.
Run ``python -m benchmarks.operators`` for the figures on your machine.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from reactivex import Observable
from reactivex import operators as ops

from pipeline.frame import Frame


def scaled_size(width: int, height: int, max_height: int) -> tuple[int, int]:
    """Return the size of a ``width`` x ``height`` picture shrunk to ``max_height``.

    The aspect ratio is kept; the width is rounded to an even number (what
    video scalers prefer). Pictures already small enough keep their size.

    Example:
        >>> scaled_size(1920, 1080, 480)
        (854, 480)
        >>> scaled_size(640, 360, 480)
        (640, 360)
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"The picture size must be positive, got {width}x{height}.")
    if max_height <= 0:
        raise ValueError(f"max_height must be positive, got {max_height}.")
    if height <= max_height:
        return width, height
    w = max(2, 2 * round(width * max_height / height / 2))
    return w, max_height


def encode_jpeg(frame: Frame, max_height: int = 480, quality: int = 85) -> bytes:
    """Encode ``frame`` as JPEG, shrunk to at most ``max_height`` pixels high.

    Scaling happens on the decoder's picture (in its own pixel format, usually
    YUV 4:2:0) with swscale's area filter, before the RGB conversion, so a 1080p
    frame costs about as much as a 480p one; plain RGB frames use Pillow's box
    filter.

    Example:
        >>> import numpy as np
        >>> f = Frame(camera="c", seq=0, wall_time=0.0, stream_time=None,
        ...           width=64, height=32, rgb=np.zeros((32, 64, 3), np.uint8))
        >>> encode_jpeg(f, max_height=16)[:2]
        b'\\xff\\xd8'

    Args:
        frame: the frame to encode.
        max_height: the largest height in pixels (aspect ratio kept).
        quality: JPEG quality, 1..100.

    Returns:
        The JPEG bytes.

    Raises:
        ValueError: for a non-positive ``max_height`` or a quality outside 1..100.
    """
    _check(max_height, quality)
    from PIL import Image

    w, h = scaled_size(frame.width, frame.height, max_height)
    if frame.video is not None and (w, h) != (frame.width, frame.height):
        # Scale in the decoder's own pixel format first, then convert the small
        # picture: about half the cost of scaling and converting in one step.
        small = frame.video.reformat(w, h, interpolation="AREA")
        rgb = small.to_ndarray(format="rgb24")
    else:
        rgb = frame.to_rgb(w, h)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _check(max_height: int, quality: int) -> None:
    if max_height <= 0:
        raise ValueError(f"max_height must be positive, got {max_height}.")
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be within 1..100, got {quality}.")


def frame_to_jpeg(
    max_height: int = 480, quality: int = 85
) -> Callable[[Observable[Frame]], Observable[tuple[Frame, bytes]]]:
    """Rx operator: each frame becomes ``(frame, jpeg_bytes)``.

    Example:
        >>> import numpy as np, reactivex
        >>> f = Frame(camera="c", seq=0, wall_time=0.0, stream_time=None,
        ...           width=8, height=8, rgb=np.zeros((8, 8, 3), np.uint8))
        >>> out = []
        >>> _ = reactivex.of(f).pipe(frame_to_jpeg(max_height=4)).subscribe(out.append)
        >>> out[0][1][:2]
        b'\\xff\\xd8'

    Args:
        max_height: the largest height in pixels.
        quality: JPEG quality, 1..100.

    Returns:
        An operator from frames to ``(frame, jpeg)`` pairs; an encoding error goes
        to ``on_error``.

    Raises:
        ValueError: for bad arguments, at once.
    """
    _check(max_height, quality)

    def _op(source: Observable[Frame]) -> Observable[tuple[Frame, bytes]]:
        def _encode(f: Frame) -> tuple[Frame, bytes]:
            return f, encode_jpeg(f, max_height, quality)

        return source.pipe(ops.map(_encode))

    return _op


__all__ = ["encode_jpeg", "frame_to_jpeg", "scaled_size"]
