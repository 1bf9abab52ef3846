"""What is in the picture now, cheaply: small thumbnails and a background model.

A watch's wake policy needs to know whether the picture holds something the
model has not seen. This module measures *occupancy*: the share of the picture
(inside the watch's zones, if any) covered by things that are not background,
and which of them stay (:mod:`operators.stillness`). It is pure numpy on a
thumbnail about 160 pixels wide, in grey and, at half that size, in colour
(:mod:`operators.scene_pixels`; about a millisecond a picture), so it can run
on every frame a detector already decodes.

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
  pixels, a cell counting when a quarter of it is foreground;
- **colour**: a pixel whose colour (either chroma plane) differs from the
  background's by ``chroma`` levels (and ``noise_factor`` times its usual
  deviation) is foreground too, whatever its brightness: a brown parcel on
  grey asphalt is as light as the asphalt.

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

from dataclasses import dataclass

import numpy as np

from operators.scene_pixels import (
    Chroma,
    Grey,
    Mask,
    best_shift,
    grey_thumbnail,
    neighbour_min,
    shifted,
    thumbnail,
    upsampled,
    zone_mask,
)
from operators.stillness import Picture, Stillness

__all__ = [
    "WARMUP",
    "Chroma",
    "Grey",
    "Mask",
    "Occupancy",
    "SceneModel",
    "SceneSettings",
    "best_shift",
    "grey_thumbnail",
    "thumbnail",
    "zone_mask",
]

WARMUP = 10
"""Pictures over which the background starts as their running mean."""


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
        still_s: a foreground cell that keeps its look this long counts as
            *still* (a parcel set down, a car parked, someone standing; not
            someone walking): see :attr:`Occupancy.still`.
        steady: most mean change (levels) of a cell that keeps its look.
        chroma: least colour difference (levels of a chroma plane) that makes
            a pixel foreground; 0 turns colour off (grey only).
    """

    width: int = 160
    cell: int = 4
    threshold: float = 14.0
    noise_factor: float = 3.0
    halflife_s: float = 10.0
    max_shift: int = 3
    still_s: float = 0.6
    steady: float = 4.0
    chroma: float = 10.0

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
        if self.still_s < 0 or self.steady <= 0 or self.chroma < 0:
            raise ValueError(
                "still_s and chroma must not be negative and steady must be positive, got "
                f"{self.still_s}, {self.chroma} and {self.steady}."
            )


@dataclass(frozen=True, slots=True)
class Occupancy:
    """What :meth:`SceneModel.observe` measured on one picture.

    Attributes:
        time: when the picture was taken (seconds).
        area: share of the whole picture covered by foreground cells inside
            the zones (the whole picture without zones), 0..1.
        whole: share of the whole picture covered by foreground cells.
        shift: the global shift ``(dx, dy)`` that realigned the picture.
        still: the foreground cells inside the zones that have kept their
            look for ``still_s`` (what stays, as opposed to what passes, in a
            crowded place or an empty one); ``None`` for a measure-only picture.
        cells: the foreground cells inside the zones (``None`` as ``still``).
        moving: share of the picture covered by foreground cells inside the
            zones that are not still (people passing, not a parcel lying).
        picture: the thumbnail as compared (light level removed, realigned),
            to tell later whether a cell still looks the same.
    """

    time: float
    area: float
    whole: float
    shift: tuple[int, int] = (0, 0)
    still: Mask | None = None
    cells: Mask | None = None
    moving: float = 0.0
    picture: Picture | None = None


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
        self._cbg: Chroma | None = None
        self._cdev: Chroma | None = None
        self._last_t: float | None = None
        self._samples = 0
        s = self.settings
        self._stillness = Stillness(s.cell, s.still_s, s.steady)

    def reset(self) -> None:
        """Forget the background; the next picture starts a new one."""
        self._bg = self._dev = self._cbg = self._cdev = None
        self._last_t = None
        self._cell_mask = None
        self._stillness.reset()

    def set_mask(self, mask: Mask | None) -> None:
        """Count only inside ``mask`` (thumbnail-sized; ``None``: the whole picture)."""
        self._mask = mask
        self._cell_mask = None

    @property
    def shape(self) -> tuple[int, int] | None:
        """The thumbnail shape of the current background, ``None`` before the first picture."""
        return None if self._bg is None else (self._bg.shape[0], self._bg.shape[1])

    @property
    def warmed(self) -> bool:
        """Whether the background has learnt from its first ``WARMUP`` pictures."""
        return self._bg is not None and self._samples >= WARMUP

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

    def _start(self, thumb: Grey, chroma: Chroma | None, t: float) -> None:
        s = self.settings
        self._bg = thumb.copy()
        self._dev = np.full(thumb.shape, s.threshold / max(1.0, 2 * s.noise_factor), np.float32)
        self._cbg = None if chroma is None else chroma.copy()
        self._cdev = None if chroma is None else np.full(chroma.shape, 1.0, np.float32)
        self._last_t = t
        self._cell_mask = None
        self._samples = 0
        self._stillness.reset()

    def _colour(
        self, chroma: Chroma | None, shift: tuple[int, int]
    ) -> tuple[Chroma | None, Mask | None]:
        """The colour with its level removed and realigned, and where it is foreground."""
        s, cbg, cdev = self.settings, self._cbg, self._cdev
        if chroma is None or cbg is None or cdev is None or cbg.shape != chroma.shape:
            return None, None
        current = np.empty_like(chroma)
        fg = np.zeros(chroma.shape[1:], dtype=bool)
        for k in range(chroma.shape[0]):
            # The colour's level (white balance), from every other pixel: cheap, and enough.
            plane = chroma[k] - float(np.median((chroma[k] - cbg[k])[::2, ::2]))
            current[k] = shifted(plane, -(shift[0] // 2), -(shift[1] // 2))
            if s.chroma > 0:
                limit = np.maximum(s.chroma, s.noise_factor * cdev[k])
                fg |= neighbour_min(current[k], cbg[k]) > limit
        return current, fg

    def observe(self, thumb: Grey, t: float, *, learn: bool = True,
                chroma: Chroma | None = None) -> Occupancy:  # fmt: skip
        """Compare ``thumb`` (taken at ``t`` seconds) with the background, then learn from it.

        ``chroma``: the picture's colour (:func:`~operators.scene_pixels.thumbnail`);
        ``None``: grey only. ``learn=False`` measures only (a picture out of the
        stream's order, such as the one a look took); the background stays as it is.
        """
        s = self.settings
        thumb = np.asarray(thumb, dtype=np.float32)
        if self._bg is None or self._dev is None or self._bg.shape != thumb.shape:
            if learn:
                self._start(thumb, chroma, t)
            return Occupancy(t, 0.0, 0.0)
        bg, dev = self._bg, self._dev
        level = float(np.median((thumb - bg)[::2, ::2]))  # every other pixel: enough, cheaper
        current = thumb - level
        diff = neighbour_min(current, bg)
        shift = (0, 0)
        if s.max_shift > 0 and float(np.mean(diff > s.threshold)) > 0.2:
            shift = best_shift(current, bg, s.max_shift)
            if shift != (0, 0):
                current = shifted(current, -shift[0], -shift[1])
                diff = neighbour_min(current, bg)
        fg = diff > np.maximum(s.threshold, s.noise_factor * dev)
        colour, colour_fg = self._colour(chroma, shift)
        if colour_fg is not None:
            fg |= upsampled(colour_fg, fg.shape)
        cells = self._cells(fg)
        zone = self._zone_cells(thumb.shape)
        total = float(cells.size) or 1.0
        inside = cells & zone
        occ = Occupancy(t, float(np.count_nonzero(inside)) / total,
                        float(np.count_nonzero(cells)) / total, shift,
                        picture=(current, colour))  # fmt: skip
        if not learn:
            return occ
        still = self._stillness.update(current, colour, inside, t)
        moving = float(np.count_nonzero(inside & ~still)) / total
        occ = Occupancy(occ.time, occ.area, occ.whole, shift, still, inside, moving, occ.picture)
        self._learn(t, fg, current, colour)
        return occ

    def _learn(self, t: float, fg: Mask, current: Grey, colour: Chroma | None) -> None:
        """Move the background towards this picture (eight times slower under foreground)."""
        s = self.settings
        dt = max(0.0, t - (self._last_t if self._last_t is not None else t))
        self._last_t = t
        alpha = 1.0 - 0.5 ** (dt / s.halflife_s) if dt > 0 else 0.0
        self._samples += 1
        # A running mean over the first pictures: what moved while it started leaves no ghost.
        start = 1.0 / (self._samples + 1) if self._samples <= WARMUP else 0.0
        if alpha <= 0 or self._bg is None or self._dev is None:
            return
        rate = np.where(fg, np.float32(max(alpha / 8, start)), np.float32(max(alpha, start)))
        self._bg += rate * (current - self._bg)
        self._dev += rate * (np.abs(current - self._bg) - self._dev)
        np.maximum(self._dev, 1.0, out=self._dev)
        if colour is not None and self._cbg is not None and self._cdev is not None:
            half = rate[::2, ::2][: colour.shape[1], : colour.shape[2]]
            rows, cols = half.shape
            self._cbg[:, :rows, :cols] += half * (
                colour[:, :rows, :cols] - self._cbg[:, :rows, :cols]
            )
            err = np.abs(colour[:, :rows, :cols] - self._cbg[:, :rows, :cols])
            self._cdev[:, :rows, :cols] += half * (err - self._cdev[:, :rows, :cols])
            np.maximum(self._cdev, 1.0, out=self._cdev)
