"""Pixels for the scene model: small thumbnails (grey and colour), zone masks, realignment.

A watch's wake policy measures every picture its detector already decodes, so
everything here works on thumbnails about 160 pixels wide: a grey picture
(float32 levels 0..255) and, at half its size each way, the picture's colour
(the two chroma planes of YUV 4:2:0, float32). Colour is what tells a brown
parcel from grey asphalt of the same brightness.

Example:
    >>> import numpy as np
    >>> f = Frame(camera="c", seq=0, wall_time=0.0, stream_time=None, width=64, height=48,
    ...           rgb=np.zeros((48, 64, 3), np.uint8))
    >>> grey, chroma = thumbnail(f, 32)
    >>> grey.shape, chroma.shape
    ((24, 32), (2, 12, 16))
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
from PIL import Image

from operators.zone_geometry import Zone, ZoneInput
from pipeline.core.frame import Frame

Grey = npt.NDArray[np.float32]
"""A grey thumbnail (height x width), levels 0..255."""
Chroma = npt.NDArray[np.float32]
"""The colour of a thumbnail: 2 x (height / 2) x (width / 2), the U and V planes."""
Mask = npt.NDArray[np.bool_]


def thumbnail_size(frame: Frame, width: int) -> tuple[int, int]:
    """``(w, h)`` of the thumbnail of ``frame``: ``width`` wide at most, both even."""
    w = min(width, frame.width)
    w -= w % 2
    h = max(4, round(frame.height * w / frame.width))
    return w, h - h % 2


def grey_thumbnail(frame: Frame, width: int = 160) -> Grey:
    """Return the frame shrunk to ``width`` pixels wide, in grey levels (float32).

    Example:
        >>> f = Frame(camera="c", seq=0, wall_time=0.0, stream_time=None, width=64, height=48,
        ...           rgb=np.zeros((48, 64, 3), np.uint8))
        >>> grey_thumbnail(f, 32).shape
        (24, 32)
    """
    return thumbnail(frame, width)[0]


def thumbnail(frame: Frame, width: int = 160) -> tuple[Grey, Chroma]:
    """The frame shrunk to ``width`` pixels wide: grey levels and, at half size, its colour.

    Decoder frames are shrunk in swscale to YUV 4:2:0 in one pass (area
    filter, thread-safe through :meth:`Frame.reformat`); the grey picture is
    the luma scaled to full range, the colour the two chroma planes. Plain RGB
    frames go through Pillow (box filter, YCbCr).
    """
    w, h = thumbnail_size(frame, width)
    if frame.video is not None:
        small = frame.reformat(w, h, format="yuv420p", interpolation="AREA")
        flat = np.asarray(small.to_ndarray(), dtype=np.float32).reshape(-1)  # Y, U, V planes
        grey = (flat[: h * w].reshape(h, w) - 16.0) * (255.0 / 219.0)
        chroma = flat[h * w : h * w + 2 * (h // 2) * (w // 2)].reshape(2, h // 2, w // 2)
        return grey, chroma
    assert frame.rgb is not None
    img = Image.fromarray(frame.rgb)
    grey = np.asarray(img.convert("L").resize((w, h), Image.Resampling.BOX), dtype=np.float32)
    ycc = img.convert("YCbCr").resize((w // 2, h // 2), Image.Resampling.BOX)
    chroma = np.asarray(ycc, dtype=np.float32)[:, :, 1:].transpose(2, 0, 1)
    return grey, np.ascontiguousarray(chroma)


def zone_mask(
    zones: Iterable[tuple[str, ZoneInput]],
    shape: tuple[int, int],
    frame_size: tuple[int, int],
) -> Mask:
    """Return which thumbnail pixels lie inside any of ``zones`` (all of them without zones).

    Pixel centres are tested against each zone's polygon (a
    :class:`~operators.zone_geometry.ZoneRule` or bare points; relative zones
    in 0..1, pixel zones in the frame's pixels ``frame_size = (width, height)``).

    Example:
        >>> lower = [(0, 0.5), (1, 0.5), (1, 1), (0, 1)]
        >>> m = zone_mask([("lower", lower)], (4, 4), (640, 480))
        >>> m.astype(int).tolist()
        [[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]]
    """
    h, w = shape
    items = list(zones)
    if not items:
        return np.ones(shape, dtype=bool)
    ys, xs = np.mgrid[0:h, 0:w]
    rel_x, rel_y = (xs + 0.5) / w, (ys + 0.5) / h
    mask = np.zeros(shape, dtype=bool)
    for name, cfg in items:
        zone = Zone(name, cfg)
        sx, sy = (1.0, 1.0) if zone.relative else (float(frame_size[0]), float(frame_size[1]))
        for y in range(h):
            for x in range(w):
                if not mask[y, x] and zone.contains_point(rel_x[y, x] * sx, rel_y[y, x] * sy):
                    mask[y, x] = True
    return mask


def neighbour_min(a: Grey, b: Grey) -> Grey:
    """``min`` over the 3 x 3 neighbourhood ``s`` of ``|a(x) - b(x + s)|``."""
    h, w = a.shape
    p = np.pad(b, 1, mode="edge")
    best: Grey = np.abs(a - p[1 : 1 + h, 1 : 1 + w])
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if dy == 1 and dx == 1:
                continue
            np.minimum(best, np.abs(a - p[dy : dy + h, dx : dx + w]), out=best)
    return best


def shifted(a: Grey, dx: int, dy: int) -> Grey:
    """``a`` moved by ``(dx, dy)`` pixels, edges repeated."""
    if dx == 0 and dy == 0:
        return a
    h, w = a.shape
    m = max(abs(dx), abs(dy))
    p = np.pad(a, m, mode="edge")
    return p[m - dy : m - dy + h, m - dx : m - dx + w]


def best_shift(current: Grey, reference: Grey, max_shift: int) -> tuple[int, int]:
    """The global shift ``(dx, dy)`` of ``reference`` that best matches ``current``.

    Searched on the central part of the picture (mean absolute difference);
    ``(0, 0)`` wins ties.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> ref = rng.integers(0, 255, (40, 40)).astype(np.float32)
        >>> best_shift(shifted(ref, 2, -1), ref, 3)
        (2, -1)
    """
    if max_shift <= 0:
        return (0, 0)
    h, w = current.shape
    m = max_shift
    core = current[m : h - m, m : w - m]

    def cost(dx: int, dy: int) -> float:
        ref = reference[m - dy : h - m - dy, m - dx : w - m - dx]
        return float(np.mean(np.abs(core - ref)))

    best, best_cost = (0, 0), cost(0, 0)
    for dy in range(-m, m + 1):
        for dx in range(-m, m + 1):
            if (dx, dy) == (0, 0):
                continue
            c = cost(dx, dy)
            if c < best_cost * 0.97:
                best, best_cost = (dx, dy), c
    return best


def upsampled(mask: Mask, shape: tuple[int, int]) -> Mask:
    """A half-size ``mask`` (colour planes) at the grey picture's ``shape``."""
    big = np.repeat(np.repeat(mask, 2, axis=0), 2, axis=1)
    out = np.zeros(shape, dtype=bool)
    h, w = min(shape[0], big.shape[0]), min(shape[1], big.shape[1])
    out[:h, :w] = big[:h, :w]
    return out
