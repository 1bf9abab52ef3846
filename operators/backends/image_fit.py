"""Fit a look's images into a small model's budget: the frame and its history shrunk, few images.

A local model with a 4096-token context cannot take ten 854x480 history
images. :func:`fit_request` shrinks the current frame and the images of the
latest ``history_images`` earlier turns into a ``width`` x ``height`` box and
sends older turns as text only. Each JPEG is shrunk once: :class:`ShrinkCache`
remembers the result by the original bytes, and the current frame's JPEG is
entered too, so when it comes back as history next look it costs nothing.

Example:
    >>> import numpy as np
    >>> from operators.backends.base import LookRequest
    >>> from pipeline.core.frame import Frame
    >>> f = Frame(camera="c", seq=0, wall_time=0.0, stream_time=None, width=1280,
    ...           height=720, rgb=np.zeros((720, 1280, 3), np.uint8))
    >>> req = fit_request(LookRequest(watch="w", camera="c", condition="x", frame=f),
    ...                   512, 288, 40, history_images=1, cache=ShrinkCache())
    >>> jpeg_size(req.jpeg)
    (512, 288)
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from dataclasses import replace

from PIL import Image

from operators.backends.base import ChatTurn, LookRequest
from operators.encode import encode_jpeg, scaled_size
from pipeline.core.frame import Frame


def fit_height(width: int, height: int, box_width: int, box_height: int) -> int:
    """Return the ``max_height`` that makes :func:`operators.encode.encode_jpeg` fit the box.

    Aspect ratio kept, never enlarged; ``encode_jpeg`` rounds the width to an
    even number, which is taken into account.

    Example:
        >>> fit_height(1920, 1080, 512, 288), fit_height(480, 640, 512, 288)
        (288, 288)
        >>> fit_height(2000, 200, 512, 288), fit_height(320, 180, 512, 288)
        (51, 180)
    """
    if box_width <= 0 or box_height <= 0:
        raise ValueError(f"The box must be positive, got {box_width}x{box_height}.")
    scale = min(1.0, box_width / width, box_height / height)
    h = max(1, round(height * scale))
    while h > 1 and scaled_size(width, height, h)[0] > box_width:
        h -= 1
    return h


def shrink_jpeg(frame: Frame, width: int, height: int, quality: int) -> bytes:
    """Encode a frame as JPEG, fitted inside ``width`` x ``height`` (aspect kept, never enlarged).

    Uses :func:`operators.encode.encode_jpeg`: scaled in the decoder's own pixel
    format before any RGB conversion.

    Example:
        >>> import numpy as np
        >>> f = Frame(camera="c", seq=0, wall_time=0.0, stream_time=None, width=480,
        ...           height=640, rgb=np.zeros((640, 480, 3), np.uint8))
        >>> jpeg_size(shrink_jpeg(f, 512, 288, 40))
        (216, 288)
    """
    return encode_jpeg(frame, fit_height(frame.width, frame.height, width, height), quality)


def jpeg_size(jpeg: bytes | None) -> tuple[int, int] | None:
    """Return a JPEG's (width, height) from its header (no decode), or None if unreadable.

    Example:
        >>> jpeg_size(b"not a jpeg") is None
        True
    """
    if jpeg is None:
        return None
    try:
        with Image.open(io.BytesIO(jpeg)) as image:
            return image.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def shrink_jpeg_bytes(jpeg: bytes, width: int, height: int, quality: int) -> bytes:
    """Return ``jpeg`` fitted inside ``width`` x ``height``; the same bytes when it already fits.

    The decode is done at a reduced DCT scale (``Image.draft``), so a large
    JPEG costs little more than a small one. Unreadable bytes come back as given.

    Example:
        >>> buf = io.BytesIO(); Image.new("RGB", (1280, 720)).save(buf, "JPEG")
        >>> jpeg_size(shrink_jpeg_bytes(buf.getvalue(), 512, 288, 40))
        (512, 288)
    """
    try:
        with Image.open(io.BytesIO(jpeg)) as image:
            w0, h0 = image.size
            scale = min(1.0, width / w0, height / h0)
            if scale >= 1.0:
                return jpeg
            size = (max(1, round(w0 * scale)), max(1, round(h0 * scale)))
            image.draft("RGB", size)
            small = image.convert("RGB").resize(size, Image.Resampling.BOX)
    except (OSError, ValueError, Image.DecompressionBombError):
        return jpeg
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


class ShrinkCache:
    """Shrunk JPEGs by their original bytes, least recently used dropped first; thread-safe.

    Looking up the same ``bytes`` object again is cheap: Python keeps a bytes
    object's hash, and equal keys are found by identity first.

    Example:
        >>> cache = ShrinkCache(max_entries=2)
        >>> cache.put(b"big", b"small"); cache.get(b"big")
        b'small'

    Args:
        max_entries: how many originals to remember (>= 1).
    """

    def __init__(self, max_entries: int = 64) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}.")
        self.max_entries = max_entries
        self._items: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, original: bytes) -> bytes | None:
        """Return the shrunk JPEG of ``original``, or None."""
        with self._lock:
            found = self._items.get(original)
            if found is None:
                self.misses += 1
                return None
            self.hits += 1
            self._items.move_to_end(original)
            return found

    def put(self, original: bytes, shrunk: bytes) -> None:
        """Remember the shrunk JPEG of ``original``."""
        with self._lock:
            self._items[original] = shrunk
            self._items.move_to_end(original)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def shrink(self, jpeg: bytes, width: int, height: int, quality: int) -> bytes:
        """Return ``jpeg`` fitted in the box, shrinking it only the first time it is seen."""
        found = self.get(jpeg)
        if found is None:
            found = shrink_jpeg_bytes(jpeg, width, height, quality)
            self.put(jpeg, found)
        return found


def _fits(jpeg: bytes | None, width: int, height: int) -> bool:
    size = jpeg_size(jpeg)
    return size is not None and size[0] <= width and size[1] <= height


def fit_request(
    request: LookRequest,
    width: int,
    height: int,
    quality: int,
    history_images: int,
    cache: ShrinkCache,
) -> LookRequest:
    """Return ``request`` with every image fitted in ``width`` x ``height`` and few history images.

    The current JPEG is used as it is when it already fits (no second encode);
    otherwise the frame is encoded once, small, and the result is cached under
    the watch's JPEG, which comes back as a history image next look. Only the
    latest ``history_images`` earlier turns that carry an image keep it (shrunk,
    from the cache); older turns go as text only.

    Args:
        request: the look as the watch made it.
        width: the box's width in pixels.
        height: the box's height in pixels.
        quality: JPEG quality of shrunk images, 1..100.
        history_images: how many earlier turns keep their image (>= 0).
        cache: shrunk JPEGs by original (share one per backend).

    Raises:
        ValueError: for a negative ``history_images``.
    """
    if history_images < 0:
        raise ValueError(f"history_images must not be negative, got {history_images}.")
    jpeg = request.jpeg
    if not _fits(jpeg, width, height):
        small: bytes | None = None if jpeg is None else cache.get(jpeg)
        if small is None and request.frame is not None:
            small = shrink_jpeg(request.frame, width, height, quality)
            if jpeg is not None:
                cache.put(jpeg, small)
        elif small is None and jpeg is not None:
            small = cache.shrink(jpeg, width, height, quality)
        jpeg = small
    kept = 0
    history: list[ChatTurn] = []
    for turn in reversed(request.history):
        if turn.jpeg is not None and kept < history_images:
            kept += 1
            small_turn = cache.shrink(turn.jpeg, width, height, quality)
            history.append(replace(turn, jpeg=small_turn) if small_turn is not turn.jpeg else turn)
        elif turn.jpeg is not None:
            history.append(replace(turn, jpeg=None))
        else:
            history.append(turn)
    history.reverse()
    return replace(request, jpeg=jpeg, history=tuple(history))


__all__ = [
    "ShrinkCache",
    "fit_height",
    "fit_request",
    "jpeg_size",
    "shrink_jpeg",
    "shrink_jpeg_bytes",
]
