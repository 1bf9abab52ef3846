"""What is in the picture now, cheaply: small grey thumbnails and a background model.

A watch's wake policy needs to know whether the picture holds something the
model has not seen. This module measures *occupancy*: the share of the picture
(inside the watch's zones, if any) covered by things that are not background.
It is pure numpy on a thumbnail about 160 pixels wide (under 1 ms a frame), so
it can run on every frame a detector already decodes.

How the background model stays quiet on busy scenes:

- **illumination**: the median difference from the background is removed
  before anything is compared, so a cloud or an auto-exposure step that
  brightens the whole picture changes nothing;
- **shake**: a pixel only counts as changed when it differs from the
  background at its own place *and* at each of its 8 neighbours, and a picture
  that moved as a whole is first realigned (best global shift up to
  ``max_shift`` pixels), so a hand-held or wind-shaken camera does not light
  up every edge;
- **movement that never stops** (leaves, water, flags): each pixel keeps its
  own typical deviation (a running mean absolute deviation); a pixel is
  foreground only when it deviates ``noise_factor`` times more than usual and
  by at least ``threshold`` grey levels;
- **isolated pixels**: foreground is counted by cells of ``cell`` x ``cell``
  pixels, a cell counting when a quarter of it is foreground.

The background follows the picture with a half-life of ``halflife_s``
seconds (eight times slower under foreground, so a parked object stays
foreground for a while and a person standing still is not absorbed at once);
over its first ten pictures it is their running mean, so what moved while it
started leaves no ghost.

Example:
    >>> import numpy as np
    >>> model = SceneModel(SceneSettings(width=32, cell=4))
    >>> empty = np.full((24, 32), 100, np.float32)
    >>> model.observe(empty, 0.0).area
    0.0
    >>> person = empty.copy(); person[8:20, 12:18] = 200
    >>> round(model.observe(person, 0.2).area, 3)
    0.125
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from operators.zone_geometry import Zone, ZoneInput
from pipeline.core.frame import Frame

WARMUP = 10
"""Pictures over which the background starts as their running mean."""
BUSY_HALFLIFE_S = 30.0
"""Half-life of each cell's record of how often it is foreground."""
BUSY_SHARE = 0.1
"""A cell foreground more often than this is a busy place: what pauses there is not still."""

Grey = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class SceneSettings:
    """Knobs of :class:`SceneModel` (the defaults suit 5 fps on ordinary cameras).

    Attributes:
        width: thumbnail width in pixels (height follows the picture's shape).
        cell: side of a counting cell, in thumbnail pixels.
        threshold: least grey-level difference that can count as a change.
        noise_factor: a pixel counts only beyond this many times its usual deviation.
        halflife_s: seconds for the background to take in half of a lasting change.
        max_shift: largest global shift (thumbnail pixels) tried to realign a
            picture that moved as a whole; 0 turns realignment off.
        still_s: a cell that stays foreground this long counts as *still*
            (a parcel set down, a car parked, someone standing): see
            :attr:`Occupancy.still`.
    """

    width: int = 160
    cell: int = 4
    threshold: float = 14.0
    noise_factor: float = 3.0
    halflife_s: float = 10.0
    max_shift: int = 3
    still_s: float = 3.0

    def __post_init__(self) -> None:
        if self.width < 16:
            raise ValueError(f"The thumbnail must be at least 16 pixels wide, got {self.width}.")
        if not 1 <= self.cell <= self.width // 4:
            raise ValueError(f"cell must be between 1 and width / 4, got {self.cell}.")
        if self.threshold <= 0 or self.noise_factor < 0:
            raise ValueError("threshold must be positive and noise_factor not negative.")
        if self.halflife_s <= 0:
            raise ValueError(f"halflife_s must be positive, got {self.halflife_s}.")
        if not 0 <= self.max_shift <= 16:
            raise ValueError(f"max_shift must be between 0 and 16, got {self.max_shift}.")
        if self.still_s < 0:
            raise ValueError(f"still_s must not be negative, got {self.still_s}.")


@dataclass(frozen=True, slots=True)
class Occupancy:
    """What :meth:`SceneModel.observe` measured on one picture.

    Attributes:
        time: when the picture was taken (seconds).
        area: share of the whole picture covered by foreground cells inside
            the zones (the whole picture without zones), 0..1.
        whole: share of the whole picture covered by foreground cells.
        shift: the global shift ``(dx, dy)`` that realigned the picture.
        still: the cells inside the zones that have been foreground for
            ``still_s`` (what stays, as opposed to what passes) in a place
            where things seldom are (foreground less than a tenth of the
            last minute or so: a parcel on the lawn, not a person pausing on
            a busy path); ``None`` for a measure-only picture.
        cells: the foreground cells inside the zones (``None`` as ``still``).
    """

    time: float
    area: float
    whole: float
    shift: tuple[int, int] = (0, 0)
    still: Mask | None = None
    cells: Mask | None = None


def grey_thumbnail(frame: Frame, width: int = 160) -> Grey:
    """Return the frame shrunk to ``width`` pixels wide, in grey levels (float32).

    Decoder frames are shrunk in swscale (area filter, thread-safe through
    :meth:`Frame.reformat`); plain RGB frames with Pillow's box filter.

    Example:
        >>> f = Frame(camera="c", seq=0, wall_time=0.0, stream_time=None, width=64, height=48,
        ...           rgb=np.zeros((48, 64, 3), np.uint8))
        >>> grey_thumbnail(f, 32).shape
        (24, 32)
    """
    w = min(width, frame.width)
    h = max(4, round(frame.height * w / frame.width))
    if frame.video is not None:
        small = frame.reformat(w, h, format="gray", interpolation="AREA")
        return np.asarray(small.to_ndarray(), dtype=np.float32)[:h, :w]
    assert frame.rgb is not None
    img = Image.fromarray(frame.rgb).convert("L").resize((w, h), Image.Resampling.BOX)
    return np.asarray(img, dtype=np.float32)


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


def _neighbour_min(a: Grey, b: Grey) -> Grey:
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


def _shifted(a: Grey, dx: int, dy: int) -> Grey:
    """``a`` moved by ``(dx, dy)`` pixels, edges repeated."""
    if dx == 0 and dy == 0:
        return a
    h, w = a.shape
    m = max(abs(dx), abs(dy))
    p = np.pad(a, m, mode="edge")
    return p[m - dy : m - dy + h, m - dx : m - dx + w]


def best_shift(current: Grey, reference: Grey, max_shift: int) -> tuple[int, int]:
    """The global shift ``(dx, dy)`` of ``reference`` that best matches ``current``.

    Searched coarse to fine on the central part of the picture (mean absolute
    difference); ``(0, 0)`` wins ties.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> ref = rng.integers(0, 255, (40, 40)).astype(np.float32)
        >>> best_shift(_shifted(ref, 2, -1), ref, 3)
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


class SceneModel:
    """A running background of one camera's thumbnails, and the occupancy of each new one.

    Feed thumbnails in time order with :meth:`observe`; each returns an
    :class:`Occupancy`. The zones are given once as a mask (see
    :func:`zone_mask`); :meth:`reset` forgets the background (a new camera
    connection, a change of picture size).

    Example:
        >>> model = SceneModel(SceneSettings(width=32, cell=4))
        >>> model.observe(np.zeros((24, 32), np.float32), 0.0).whole
        0.0
    """

    def __init__(self, settings: SceneSettings | None = None, mask: Mask | None = None) -> None:
        self.settings = settings or SceneSettings()
        self._mask = mask
        self._cell_mask: Mask | None = None
        self._bg: Grey | None = None
        self._dev: Grey | None = None
        self._last_t: float | None = None
        self._samples = 0
        self._fg_since: npt.NDArray[np.float64] | None = None
        self._busy: npt.NDArray[np.float32] | None = None
        self._busy_before: npt.NDArray[np.float32] = np.zeros(0, np.float32)
        self._busy_t: float | None = None

    def reset(self) -> None:
        """Forget the background; the next picture starts a new one."""
        self._bg = self._dev = None
        self._last_t = None
        self._cell_mask = None
        self._fg_since = self._busy = None
        self._busy_t = None

    def set_mask(self, mask: Mask | None) -> None:
        """Count only inside ``mask`` (thumbnail-sized; ``None``: the whole picture)."""
        self._mask = mask
        self._cell_mask = None

    @property
    def shape(self) -> tuple[int, int] | None:
        """The thumbnail shape of the current background, ``None`` before the first picture."""
        return None if self._bg is None else (self._bg.shape[0], self._bg.shape[1])

    def _cells(self, fg: Mask) -> Mask:
        c = self.settings.cell
        h, w = fg.shape
        hc, wc = h // c, w // c
        return np.asarray(fg[: hc * c, : wc * c].reshape(hc, c, wc, c).mean(axis=(1, 3)) >= 0.25)

    def _zone_cells(self, shape: tuple[int, int]) -> Mask:
        if self._cell_mask is None:
            c = self.settings.cell
            hc, wc = shape[0] // c, shape[1] // c
            if self._mask is None or self._mask.shape != shape:
                self._cell_mask = np.ones((hc, wc), dtype=bool)
            else:
                m = self._mask[: hc * c, : wc * c].reshape(hc, c, wc, c).mean(axis=(1, 3))
                self._cell_mask = np.asarray(m >= 0.5)
        return self._cell_mask

    def _still(self, occ: Occupancy, cells: Mask, t: float) -> Occupancy:
        """``occ`` with the cells that have stayed foreground for ``still_s`` in quiet places."""
        since, busy = self._fg_since, self._busy
        if since is None or busy is None or since.shape != cells.shape:
            since = np.full(cells.shape, np.nan)
            busy = np.zeros(cells.shape, np.float32)
        new = cells & np.isnan(since)
        # How busy each place was before this thing came: frozen while it stays.
        before = self._busy_before if self._busy_before.shape == busy.shape else busy
        self._busy_before = np.where(new, busy, before)
        since = np.where(cells, np.where(np.isnan(since), t, since), np.nan)
        dt = max(0.0, t - (self._busy_t if self._busy_t is not None else t))
        a = np.float32(1.0 - 0.5 ** (dt / BUSY_HALFLIFE_S)) if dt > 0 else np.float32(0.0)
        busy += a * (cells.astype(np.float32) - busy)
        self._fg_since, self._busy, self._busy_t = since, busy, t
        with np.errstate(invalid="ignore"):
            still = cells & (t - since >= self.settings.still_s - 1e-6)
        still &= self._busy_before < BUSY_SHARE
        return dataclasses.replace(occ, still=np.asarray(still), cells=cells)

    def observe(self, thumb: Grey, t: float, *, learn: bool = True) -> Occupancy:
        """Compare ``thumb`` (taken at ``t`` seconds) with the background, then learn from it.

        ``learn=False`` measures only (a picture out of the stream's order, such
        as the one a look took); the background stays as it is.
        """
        s = self.settings
        thumb = np.asarray(thumb, dtype=np.float32)
        if self._bg is None or self._dev is None or self._bg.shape != thumb.shape:
            if not learn:
                return Occupancy(t, 0.0, 0.0)
            self._bg = thumb.copy()
            self._dev = np.full(thumb.shape, s.threshold / max(1.0, 2 * s.noise_factor), np.float32)
            self._last_t = t
            self._cell_mask = None
            self._samples = 0
            self._fg_since = self._busy = None
            self._busy_t = None
            return Occupancy(t, 0.0, 0.0)
        bg, dev = self._bg, self._dev
        level = float(np.median(thumb - bg))
        current = thumb - level
        diff = _neighbour_min(current, bg)
        shift = (0, 0)
        if s.max_shift > 0 and float(np.mean(diff > s.threshold)) > 0.2:
            shift = best_shift(current, bg, s.max_shift)
            if shift != (0, 0):
                current = _shifted(current, -shift[0], -shift[1])
                diff = _neighbour_min(current, bg)
        fg = diff > np.maximum(s.threshold, s.noise_factor * dev)
        cells = self._cells(fg)
        zone = self._zone_cells(thumb.shape)
        total = float(cells.size) or 1.0
        inside = float(np.count_nonzero(cells & zone)) / total
        occ = Occupancy(t, inside, float(np.count_nonzero(cells)) / total, shift)
        if not learn:
            return occ
        occ = self._still(occ, cells & zone, t)
        dt = max(0.0, t - (self._last_t if self._last_t is not None else t))
        self._last_t = t
        alpha = 1.0 - 0.5 ** (dt / s.halflife_s) if dt > 0 else 0.0
        self._samples += 1
        # A running mean over the first pictures: what moved while it started leaves no ghost.
        start = 1.0 / (self._samples + 1) if self._samples <= WARMUP else 0.0
        if alpha > 0:
            rate = np.where(fg, np.float32(max(alpha / 8, start)), np.float32(max(alpha, start)))
            bg += rate * (current - bg)
            dev += rate * (np.abs(current - bg) - dev)
            np.maximum(dev, 1.0, out=dev)
        return occ
