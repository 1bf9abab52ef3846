"""What stays, as opposed to what passes: foreground cells whose look has not changed.

A parcel set down on a path and a person walking along it are both
foreground (not the background). What tells them apart is that the parcel's
cells keep their look, picture after picture, while a walker's cells change
(their edge moves on, legs swing, the background shows again). So each
foreground cell keeps a snapshot of its pixels (grey and colour, light level
removed); while the cell stays within ``steady`` levels of it (mean absolute
difference, per channel) it has been *still* since the snapshot; when it
changes more, or is background again, the snapshot starts afresh. A cell is
still once it has kept its look for ``still_s`` seconds: a thing that stays,
at a place crowded or empty alike. A person who stands still is still too.

Pure numpy on the scene model's thumbnail (a few hundred cells). The same
comparison tells :func:`changed_cells`: whether a cell looks different now
from how it looked in the picture the model judged (allowing for a thing
that shifted by a cell).

Example:
    >>> import numpy as np
    >>> st = Stillness(cell=4, still_s=0.6, steady=4.0)
    >>> grey = np.zeros((8, 8), np.float32); fg = np.zeros((2, 2), bool); fg[0, 0] = True
    >>> [int(st.update(grey, None, fg, t).sum()) for t in (0.0, 0.2, 0.4, 0.6)]
    [0, 0, 0, 1]
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from operators.scene_pixels import Chroma, Grey, Mask

Picture = tuple[Grey, Chroma | None]
"""A thumbnail as the scene model compares it: grey with the light level removed, and colour."""


def _blocks(a: npt.NDArray[np.float32], cell: int) -> npt.NDArray[np.float32]:
    """``a`` (..., H, W) cut into cells: (..., H // cell, cell, W // cell, cell)."""
    h, w = a.shape[-2] // cell, a.shape[-1] // cell
    return a[..., : h * cell, : w * cell].reshape(*a.shape[:-2], h, cell, w, cell)


Blocks = tuple[npt.NDArray[np.float32], npt.NDArray[np.float32] | None]
"""A picture cut into cells: grey (hc, cell, wc, cell), colour (2, hc, cell/2, wc, cell/2)."""


def as_blocks(picture: Picture, cell: int) -> Blocks:
    """``picture`` cut into cells (colour only when a cell is at least 2 pixels wide)."""
    grey, colour = picture
    g = _blocks(grey, cell)
    if colour is None or cell < 2:
        return g, None
    c = _blocks(colour, cell // 2)[:, : g.shape[0], :, : g.shape[2], :]
    if c.shape[1] != g.shape[0] or c.shape[3] != g.shape[2]:
        return g, None
    return g, c


def block_change(now: Blocks, then: Blocks) -> npt.NDArray[np.float32]:
    """Per cell: how much its look changed from ``then`` to ``now`` (levels, worst channel).

    The mean absolute difference of the cell's grey pixels and, with colour on
    both sides, of each colour plane's pixels; the largest of those.
    """
    out = np.abs(now[0] - then[0]).mean(axis=(1, 3))
    if now[1] is not None and then[1] is not None:
        np.maximum(out, np.abs(now[1] - then[1]).mean(axis=(2, 4)).max(axis=0), out=out)
    return np.asarray(out, dtype=np.float32)


def cell_change(now: Picture, then: Picture, cell: int) -> npt.NDArray[np.float32]:
    """Per cell: how much its look changed from ``then`` to ``now`` (see :func:`block_change`)."""
    return block_change(as_blocks(now, cell), as_blocks(then, cell))


def _cell_blocks(a: npt.NDArray[np.float32], cell: int) -> npt.NDArray[np.float32]:
    """``a`` (..., H, W) as cells with the cell indices first: (hc, wc, ..., cell, cell)."""
    b = _blocks(a, cell)  # (..., hc, cell, wc, cell)
    n = b.ndim
    order = (n - 4, n - 2, *range(n - 4), n - 3, n - 1)
    return np.ascontiguousarray(b.transpose(order))


def changed_cells(
    now: Picture, then: Picture, cell: int, threshold: float, where: Mask | None = None
) -> Mask:
    """Cells that look different now from ``then``, even allowing a shift of one cell.

    Only the cells in ``where`` are compared (default: all); the others are ``False``.

    Example:
        >>> import numpy as np
        >>> a = np.zeros((8, 8), np.float32); b = a.copy(); b[0:4, 0:4] = 90
        >>> changed_cells((b, None), (a, None), 4, 8.0).astype(int).tolist()
        [[1, 0], [0, 0]]
    """
    pairs = [(now[0], then[0], cell)]
    if now[1] is not None and then[1] is not None and cell >= 2:
        pairs.append((now[1], then[1], cell // 2))
    hc, wc = now[0].shape[0] // cell, now[0].shape[1] // cell
    out = np.zeros((hc, wc), dtype=bool)
    ys, xs = np.nonzero(np.ones((hc, wc), bool) if where is None else where[:hc, :wc])
    if ys.size == 0:
        return out
    best = np.full(ys.size, np.inf, np.float32)
    blocks = [(_cell_blocks(a, c)[:hc, :wc], _cell_blocks(b, c)[:hc, :wc]) for a, b, c in pairs]
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            ry, rx = np.clip(ys + dy, 0, hc - 1), np.clip(xs + dx, 0, wc - 1)
            worst = np.zeros(ys.size, np.float32)
            for nb, rb in blocks:
                diff = np.abs(nb[ys, xs] - rb[ry, rx])
                per = diff.reshape(ys.size, -1, diff.shape[-2] * diff.shape[-1]).mean(axis=2)
                np.maximum(worst, per.max(axis=1), out=worst)
            np.minimum(best, worst, out=best)
    out[ys, xs] = best > threshold
    return out


class Stillness:
    """Per foreground cell: since when it has kept its look; the still cells of each picture.

    Args:
        cell: side of a cell in thumbnail pixels (as the scene model's).
        still_s: seconds a cell must keep its look to be still.
        steady: most mean change (levels) of a cell that still keeps its look.
    """

    def __init__(self, cell: int, still_s: float, steady: float) -> None:
        self.cell = cell
        self.still_s = still_s
        self.steady = steady
        self._snap: Blocks | None = None
        self._since: npt.NDArray[np.float64] | None = None

    def reset(self) -> None:
        """Forget every snapshot (a new background)."""
        self._snap = self._since = None

    def update(self, grey: Grey, chroma: Chroma | None, cells: Mask, t: float) -> Mask:
        """Take the picture of time ``t`` and its foreground ``cells``; return the still cells."""
        now = as_blocks((grey, chroma), self.cell)
        snap, since = self._snap, self._since
        if (
            snap is None
            or since is None
            or since.shape != cells.shape
            or snap[0].shape != now[0].shape
            or ((snap[1] is None) != (now[1] is None))
        ):
            snap, since = now, np.full(cells.shape, np.nan)
        moved = block_change(now, snap) > self.steady
        fresh = moved | ~cells | np.isnan(since)
        grey_snap = np.where(fresh[:, None, :, None], now[0], snap[0])
        colour_snap = None
        if now[1] is not None and snap[1] is not None:
            colour_snap = np.where(fresh[None, :, None, :, None], now[1], snap[1])
        self._snap = (grey_snap, colour_snap)
        since = np.where(cells, np.where(fresh, t, since), np.nan)
        self._since = since
        with np.errstate(invalid="ignore"):
            return np.asarray(cells & (t - since >= self.still_s - 1e-6))
