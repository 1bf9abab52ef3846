"""Shrink a frame and encode it as JPEG, scaling in swscale before any RGB conversion.

Measured on the 2-core dev machine from a decoded 1080p frame to 854x480 JPEG
bytes (CPU time, medians): ``to_image()`` + Pillow resize + save costs 17-39
ms (it converts and resizes 2 million RGB pixels). Here: swscale's area filter
in YUV 0.9-1.2 ms, then the small picture converted to RGBX (Pillow's own
layout, mapped without a copy) and libjpeg-turbo's encode 1.5-1.8 ms, about
2.6-3 ms in all; the encode is the floor. An RGB array instead of RGBX costs
1-2 ms more (the array, Pillow's copy of it, their page faults).

Measured and not taken: FFmpeg's ``mjpeg`` encoder (a ``yuvj420p`` scale plus
its encode cost as much, at equal PSNR); a YCbCr image from ``yuv444p`` planes
(the interleave costs more than the conversion it saves); ``FAST_BILINEAR``
scaling (no cheaper here, 8 dB worse PSNR than ``AREA``). Run
``python -m benchmarks.operators`` for the figures on your machine.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from PIL import Image
from reactivex import Observable
from reactivex import operators as ops

from pipeline.core.frame import Frame


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
    frame costs about as much as a 480p one; the small picture is converted to
    RGBX, which Pillow and libjpeg-turbo use without another copy. Plain RGB
    frames use Pillow's box filter.

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
    w, h = scaled_size(frame.width, frame.height, max_height)
    buf = io.BytesIO()
    if frame.video is not None:
        # Frame.reformat: a camera shares one decoded frame between threads, and
        # PyAV's per-frame scaler must not be used from two at once.
        if (w, h) != (frame.width, frame.height):
            # Scale in the decoder's own pixel format (YUV 4:2:0: half the bytes
            # of RGB), one swscale thread; the small frame is this thread's own.
            small = frame.reformat(w, h, interpolation="AREA")
            rgbx = small.reformat(format="rgb0", threads=1)
        else:
            rgbx = frame.reformat(format="rgb0")
        # RGBX is Pillow's own pixel layout: the image maps the plane without
        # a copy, and libjpeg-turbo reads RGBX directly.
        plane = rgbx.planes[0]
        image = Image.frombuffer("RGBX", (w, h), plane, "raw", "RGBX", plane.line_size, 1)
        image.save(buf, format="JPEG", quality=quality)
    else:
        Image.fromarray(frame.to_rgb(w, h)).save(buf, format="JPEG", quality=quality)
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
