"""Zone geometry outside Rx: a zone's rule, its validated polygon, and lookup grids.

:class:`ZoneRule` is what a zone is, in plain values (the config layer builds
it from ``[cameras.NAME.zones.ZONE]``); :class:`Zone` validates the polygon and
precomputes once; :func:`zone_grid` rasterises up to 64 polygons into lookup
grids for :class:`~operators.zone_tracker.ZoneTracker`.

Example:
    >>> porch = Zone("porch", ZoneRule(points=[(0, 0.5), (1, 0.5), (1, 1), (0, 1)]))
    >>> porch.contains(Box(100, 200, 140, 400), (640, 480))   # feet at (120, 400)
    True
"""

from __future__ import annotations

import functools
import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from pipeline.core.detection import Box, Detection

FloatArray = npt.NDArray[np.float64]
Point = tuple[float, float]
Units = Literal["auto", "relative", "pixels"]
Anchor = Literal["bottom_center", "center", "top_center", "box"]
ANCHORS = ("bottom_center", "center", "top_center", "box")
UNITS = ("auto", "relative", "pixels")


@dataclass(frozen=True, slots=True)
class ZoneRule:
    """A zone as plain values: its polygon and the rules an object must meet to count inside.

    Example:
        >>> ZoneRule(points=[(0, 0.5), (1, 0.5), (1, 1)], inertia=1).points
        ((0.0, 0.5), (1.0, 0.5), (1.0, 1.0))

    Attributes:
        points: polygon corners ``(x, y)``, relative (0..1) or pixels; at least 3.
        units: ``auto`` (relative when every value is at most 1), ``relative``
            or ``pixels``.
        anchor: the point of an object's box that must be inside (``box``: any overlap).
        inertia: consecutive frames inside before an object counts (>= 1).
        loitering_time: seconds inside before an object counts (>= 0).
        min_area: smallest box: a fraction of the frame (< 1) or pixels (>= 1).
        min_score: smallest detection score (0..1).

    Raises:
        ValueError: a value out of range, in plain words.
    """

    points: Sequence[Point]
    units: Units = "auto"
    anchor: Anchor = "bottom_center"
    inertia: int = 3
    loitering_time: float = 0.0
    min_area: float = 0.0
    min_score: float = 0.0

    def __post_init__(self) -> None:
        pts = tuple((float(x), float(y)) for x, y in self.points)
        object.__setattr__(self, "points", pts)
        if len(pts) < 3:
            raise ValueError(f"A zone polygon needs at least 3 points, got {len(pts)}.")
        if any(not (math.isfinite(x) and math.isfinite(y)) or x < 0 or y < 0 for x, y in pts):
            raise ValueError("Zone coordinates must be finite and not negative.")
        if self.units not in UNITS:
            raise ValueError(f"Zone units must be one of {', '.join(UNITS)}, got {self.units!r}.")
        if self.anchor not in ANCHORS:
            raise ValueError(f"A zone anchor must be one of {', '.join(ANCHORS)}, "
                             f"got {self.anchor!r}.")  # fmt: skip
        if self.inertia < 1:
            raise ValueError(f"Zone inertia must be at least 1, got {self.inertia}.")
        if not (0 <= self.loitering_time < math.inf and 0 <= self.min_area < math.inf):
            raise ValueError("loitering_time and min_area must be finite and not negative.")
        if not 0 <= self.min_score <= 1:
            raise ValueError(f"min_score must be in [0, 1], got {self.min_score}.")


ZoneInput = ZoneRule | Sequence[Point]
"""A zone as the operators accept it: a :class:`ZoneRule`, or just its points."""


def zone_rule(zone: ZoneInput) -> ZoneRule:
    """Return ``zone`` as a :class:`ZoneRule` (a bare point list gets the default rules).

    Example:
        >>> zone_rule([(0, 0), (1, 0), (1, 1)]).inertia
        3
    """
    return zone if isinstance(zone, ZoneRule) else ZoneRule(points=zone)


class Zone:
    """A named polygon with the rules an object must meet to count as inside.

    Example:
        >>> z = Zone("porch", [(0, 0.5), (1, 0.5), (1, 1), (0, 1)])
        >>> z.contains(Box(100, 200, 140, 400), (640, 480))   # feet at (120, 400)
        True
        >>> z.contains(Box(100, 20, 140, 200), (640, 480))    # feet at (120, 200)
        False

    Coordinates are relative (0..1) or pixels (``units``; ``auto`` picks
    relative when every value is at most 1). A relative zone needs the
    detection's ``frame_size``; a pixel zone is compared with the box as is.
    """

    def __init__(self, name: str, rule: ZoneInput) -> None:
        rule = zone_rule(rule)
        pts = np.asarray(rule.points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3:
            raise ValueError(f"Zone {name!r} needs at least 3 [x, y] points.")
        self.name = name
        self.rule = rule
        units = rule.units
        if units == "auto":
            units = "relative" if float(pts.max()) <= 1.0 else "pixels"
        self.relative = units == "relative"
        twice_area = float(
            np.dot(pts[:, 0], np.roll(pts[:, 1], -1)) - np.dot(pts[:, 1], np.roll(pts[:, 0], -1))
        )
        if abs(twice_area) < 1e-12:
            raise ValueError(f"Zone {name!r} has no area (its points are on one line).")
        self.points: FloatArray = pts
        self._edges = [
            (float(pts[i, 0]), float(pts[i, 1]), float(pts[(i + 1) % len(pts), 0]),
             float(pts[(i + 1) % len(pts), 1]))
            for i in range(len(pts))
        ]  # fmt: skip
        self._x0, self._y0 = pts[:, 0], pts[:, 1]
        self._x1, self._y1 = np.roll(pts[:, 0], -1), np.roll(pts[:, 1], -1)
        self.bounds = (float(pts[:, 0].min()), float(pts[:, 1].min()),
                       float(pts[:, 0].max()), float(pts[:, 1].max()))  # fmt: skip

    def _scale(self, frame_size: tuple[int, int] | None) -> tuple[float, float] | None:
        if not self.relative:
            return (1.0, 1.0)
        if frame_size is None:
            return None
        return (1.0 / frame_size[0], 1.0 / frame_size[1])

    def contains_point(self, x: float, y: float) -> bool:
        """Whether ``(x, y)``, in the zone's units, is inside (or on the edge of) the polygon."""
        bx0, by0, bx1, by1 = self.bounds
        if not (bx0 <= x <= bx1 and by0 <= y <= by1):
            return False
        inside = False
        tol = 1e-9 * max(1.0, bx1 - bx0, by1 - by0)
        # Plain Python beats numpy on polygons of a few points (about 1 us per test).
        for x0, y0, x1, y1 in self._edges:
            cross = (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0)
            if (
                abs(cross) <= tol
                and min(x0, x1) <= x <= max(x0, x1)
                and min(y0, y1) <= y <= max(y0, y1)
            ):
                return True  # on an edge counts as inside
            if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
                inside = not inside
        return inside

    def contains(self, box: Box, frame_size: tuple[int, int] | None) -> bool:
        """Whether the box's anchor is inside (for ``anchor = "box"``: whether they overlap).

        Returns ``False`` for a relative zone when ``frame_size`` is unknown.
        """
        scale = self._scale(frame_size)
        if scale is None:
            return False
        sx, sy = scale
        anchor = self.rule.anchor
        if anchor == "box":
            return self._overlaps(box.x1 * sx, box.y1 * sy, box.x2 * sx, box.y2 * sy)
        x = (box.x1 + box.x2) / 2 * sx
        if anchor == "bottom_center":
            y = box.y2 * sy
        elif anchor == "top_center":
            y = box.y1 * sy
        else:
            y = (box.y1 + box.y2) / 2 * sy
        return self.contains_point(x, y)

    def _overlaps(self, x1: float, y1: float, x2: float, y2: float) -> bool:
        bx0, by0, bx1, by1 = self.bounds
        if x2 < bx0 or x1 > bx1 or y2 < by0 or y1 > by1:
            return False
        corners = ((x1, y1), (x2, y1), (x2, y2), (x1, y2), ((x1 + x2) / 2, (y1 + y2) / 2))
        if any(self.contains_point(cx, cy) for cx, cy in corners):
            return True
        px, py = self.points[:, 0], self.points[:, 1]
        if bool(np.any((px >= x1) & (px <= x2) & (py >= y1) & (py <= y2))):
            return True
        # Edges crossing the box: test polygon edges against the box's four sides.
        box_edges = ((x1, y1, x2, y1), (x2, y1, x2, y2), (x2, y2, x1, y2), (x1, y2, x1, y1))
        return any(self._edges_cross(*e) for e in box_edges)

    def _edges_cross(self, ax: float, ay: float, bx: float, by: float) -> bool:
        x0, y0, x1, y1 = self._x0, self._y0, self._x1, self._y1

        def orient(
            px: FloatArray | float, py: FloatArray | float,
            qx: FloatArray | float, qy: FloatArray | float,
            rx: FloatArray | float, ry: FloatArray | float,
        ) -> FloatArray:  # fmt: skip
            return np.sign((qx - px) * (ry - py) - (qy - py) * (rx - px))

        d1 = orient(ax, ay, bx, by, x0, y0)
        d2 = orient(ax, ay, bx, by, x1, y1)
        d3 = orient(x0, y0, x1, y1, ax, ay)
        d4 = orient(x0, y0, x1, y1, bx, by)
        return bool(np.any((d1 * d2 < 0) & (d3 * d4 < 0)))

    def area_ok(self, box: Box, frame_size: tuple[int, int] | None) -> bool:
        """Whether the box is at least ``min_area`` (a frame fraction if < 1, else pixels)."""
        min_area = self.rule.min_area
        if min_area <= 0:
            return True
        if min_area >= 1:
            return box.area >= min_area
        if frame_size is None:
            return True
        return box.area / (frame_size[0] * frame_size[1]) >= min_area

    def accepts(self, detection: Detection) -> bool:
        """Whether this one detection is inside the zone and meets ``min_score``/``min_area``.

        A detection whose source already names this zone (Frigate's
        ``current_zones``) counts as inside without geometry.
        """
        if detection.score < self.rule.min_score:
            return False
        if not self.area_ok(detection.box, detection.frame_size):
            return False
        if self.name in detection.zones:
            return True
        return self.contains(detection.box, detection.frame_size)


@dataclass(frozen=True, slots=True)
class ZoneGrid:
    """Lookup grids of up to 64 zones over their common (padded) bounding box.

    ``inside[cy * n + cx]`` has bit ``j`` set when cell ``(cx, cy)`` lies wholly
    inside zone ``j``; ``edge`` marks the cells that an edge of zone ``j`` passes
    through or comes near, where the exact polygon test decides.
    """

    x0: float
    y0: float
    sx: float  # cells per unit along x
    sy: float
    n: int
    inside: array[int]
    edge: array[int]


def _zone_masks(
    points: FloatArray, box: tuple[float, float, float, float], n: int
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Return ``(inside, edge)`` cell masks of one polygon on an ``n`` x ``n`` grid over ``box``."""
    x0, y0, x1, y1 = box
    cw, ch = (x1 - x0) / n, (y1 - y0) / n
    ex0, ey0 = points[:, 0], points[:, 1]
    ex1, ey1 = np.roll(ex0, -1), np.roll(ey0, -1)
    # Scanline fill at cell centres: crossing number by cumulative toggles.
    ycol = (y0 + (np.arange(n) + 0.5) * ch)[:, None]
    crosses = (ey0 > ycol) != (ey1 > ycol)
    dy = np.where(ey1 == ey0, 1.0, ey1 - ey0)
    xi = ex0 + (ycol - ey0) * (ex1 - ex0) / dy
    col = np.clip(np.ceil((xi - x0) / cw - 0.5), 0, n).astype(np.intp)
    rows, cols = np.nonzero(crosses)
    toggles = np.zeros((n, n + 1), np.int32)
    np.add.at(toggles, (rows, col[rows, cols]), 1)
    inside = (np.cumsum(toggles, axis=1)[:, :n] & 1).astype(bool)
    # Cells an edge passes through: sample each edge at a quarter cell, then
    # widen by one cell so rounding can never leave an edge cell unmarked.
    edge = np.zeros((n + 2, n + 2), bool)
    step = 0.25 * min(cw, ch)
    for ax, ay, bx, by in zip(ex0, ey0, ex1, ey1, strict=True):
        t = np.linspace(0.0, 1.0, int(np.hypot(bx - ax, by - ay) / step) + 2)
        cx = np.clip(((ax + (bx - ax) * t - x0) / cw).astype(np.intp), 0, n - 1)
        cy = np.clip(((ay + (by - ay) * t - y0) / ch).astype(np.intp), 0, n - 1)
        edge[cy + 1, cx + 1] = True
    grown = np.zeros((n, n), bool)
    for oy in (0, 1, 2):
        for ox in (0, 1, 2):
            grown |= edge[oy : oy + n, ox : ox + n]
    return inside & ~grown, grown


@functools.lru_cache(maxsize=16)
def zone_grid(polygons: tuple[tuple[tuple[float, float], ...], ...], n: int) -> ZoneGrid:
    """Build (once per set of at most 64 polygons) the lookup grids of a zone group."""
    arrays = [np.asarray(p, dtype=np.float64) for p in polygons]
    x0 = min(float(a[:, 0].min()) for a in arrays)
    y0 = min(float(a[:, 1].min()) for a in arrays)
    x1 = max(float(a[:, 0].max()) for a in arrays)
    y1 = max(float(a[:, 1].max()) for a in arrays)
    # Pad by one cell: a point outside the padded box is in no zone of the group.
    pad_x, pad_y = (x1 - x0) / (n - 2), (y1 - y0) / (n - 2)
    box = (x0 - pad_x, y0 - pad_y, x1 + pad_x, y1 + pad_y)
    inside = np.zeros((n, n), np.uint64)
    edge = np.zeros((n, n), np.uint64)
    for j, a in enumerate(arrays):
        ins, edg = _zone_masks(a, box, n)
        inside |= ins.astype(np.uint64) << np.uint64(j)
        edge |= edg.astype(np.uint64) << np.uint64(j)
    return ZoneGrid(
        box[0], box[1], n / (box[2] - box[0]), n / (box[3] - box[1]), n,
        array("Q", inside.tobytes()), array("Q", edge.tobytes()),
    )  # fmt: skip


GRID_CELLS = 512
"""Cells per side of a zone group's lookup grid (the exact test decides on edge cells)."""
