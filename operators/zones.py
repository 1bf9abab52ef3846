"""Zones: polygons on a camera's picture, and the operator that keeps objects inside them.

Geometry lives in :class:`Zone` (validated, precomputed once); the bookkeeping
of ``inertia`` and ``loitering_time`` per object lives in :class:`ZoneTracker`;
:func:`in_zones` is the thin Rx wrapper.
"""

from __future__ import annotations

import dataclasses
import functools
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from math import nan

import numpy as np
import numpy.typing as npt
from reactivex import Observable, abc

from pipeline.core.config import ZoneConfig
from pipeline.core.detection import Box, Detection

FloatArray = npt.NDArray[np.float64]


class Zone:
    """A named polygon with the rules an object must meet to count as inside.

    Example:
        >>> z = Zone("porch", ZoneConfig(points=[(0, 0.5), (1, 0.5), (1, 1), (0, 1)]))
        >>> z.contains(Box(100, 200, 140, 400), (640, 480))   # feet at (120, 400)
        True
        >>> z.contains(Box(100, 20, 140, 200), (640, 480))    # feet at (120, 200)
        False

    Coordinates are relative (0..1) or pixels (``units``; ``auto`` picks
    relative when every value is at most 1). A relative zone needs the
    detection's ``frame_size``; a pixel zone is compared with the box as is.
    """

    def __init__(self, name: str, config: ZoneConfig) -> None:
        pts = np.asarray(config.points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3:
            raise ValueError(f"Zone {name!r} needs at least 3 [x, y] points.")
        self.name = name
        self.config = config
        units = config.units
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
        anchor = self.config.anchor
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
        min_area = self.config.min_area
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
        if detection.score < self.config.min_score:
            return False
        if not self.area_ok(detection.box, detection.frame_size):
            return False
        if self.name in detection.zones:
            return True
        return self.contains(detection.box, detection.frame_size)


@dataclass(frozen=True, slots=True)
class _Raster:
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
def _raster(polygons: tuple[tuple[tuple[float, float], ...], ...], n: int) -> _Raster:
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
    return _Raster(
        box[0], box[1], n / (box[2] - box[0]), n / (box[3] - box[1]), n,
        array("Q", inside.tobytes()), array("Q", edge.tobytes()),
    )  # fmt: skip


_GRID = 512
"""Cells per side of a zone group's lookup grid (the exact test decides on edge cells)."""


@dataclass(slots=True)
class _Group:
    """Up to 64 zones that share units and anchor: one lookup grid."""

    zones: list[Zone]
    offset: int  # bit of the first zone in the tracker's masks
    relative: bool
    anchor: str
    raster: _Raster


@dataclass(slots=True)
class _Object:
    """One tracked object (or one label's id-less boxes) and its masks, per frame.

    ``runs[k]`` has bit j when it was inside zone j on more than k consecutive
    frames, this frame included; ``base`` is ``runs`` as it stood before this
    frame (detection ``time``, also when it was last seen), ``enter``/``keep``
    what this frame's boxes added so far (inside by geometry / by the source's
    say-so).
    """

    runs: list[int]
    base: list[int]
    frame_time: float
    enter: int
    keep: int
    since: dict[int, float]


class ZoneTracker:
    """Inertia and loitering bookkeeping over a stream of detections (plain class).

    A detection counts in a zone once its object has been inside on
    ``inertia`` consecutive frames *and* for ``loitering_time`` seconds, and
    the detection's own box is inside now. Frames are told apart by detection
    ``time`` (same time, same frame). An object is its ``object_id``; boxes
    without one (motion, ONNX) are grouped by label, so for them inertia means
    "some box of this label was inside on N consecutive frames": two id-less
    boxes, one inside and one outside, do not reset each other. Source zones
    (Frigate's) count at once: the source applied its own rules.

    Everything runs on bit masks (bit j = zone j). Geometry is precomputed once
    per set of zones: each group of zones with the same units and anchor gets a
    512 x 512 grid of masks over the zones' bounding box (cells wholly inside
    zone j, cells an edge of zone j touches), so a point costs one lookup and
    only points in edge cells run the exact polygon test. Inertia keeps, per
    object, the masks "inside on the last k frames" for k up to the largest
    ``inertia`` (and those masks as they stood before the current frame, to
    which each further box of the frame adds its zones), so a detection costs
    a few integer operations whatever the number of zones. A frame in which
    an object (or a label, for id-less boxes) is not seen at all neither
    counts nor breaks its run.

    Example:
        >>> zones = {"yard": ZoneConfig(points=[(0, 0), (1, 0), (1, 1)], inertia=2)}
        >>> t = ZoneTracker(zones)
        >>> d = Detection(camera="c", label="cat", score=1, box=Box(90, 5, 100, 10), time=0,
        ...               frame_size=(100, 100))
        >>> t.update(d), t.update(dataclasses.replace(d, time=1))
        ((), ('yard',))
        >>> t.update_batch([dataclasses.replace(d, time=2), dataclasses.replace(d, label="dog",
        ...                 time=2)])
        [('yard',), ()]
    """

    def __init__(self, zones: Mapping[str, ZoneConfig], forget_after_s: float = 60.0) -> None:
        if forget_after_s <= 0:
            raise ValueError(f"forget_after_s must be positive, got {forget_after_s}.")
        self.zones = [Zone(name, cfg) for name, cfg in zones.items()]
        self.forget_after_s = forget_after_s
        config_index = {z.name: i for i, z in enumerate(self.zones)}
        # Bit order: zones grouped by (units, anchor), 64 a group; "box" zones last.
        groups: dict[tuple[bool, str], list[Zone]] = {}
        exact: list[Zone] = []
        for z in self.zones:
            if z.config.anchor == "box":
                exact.append(z)
            else:
                groups.setdefault((z.relative, z.config.anchor), []).append(z)
        self._groups: list[_Group] = []
        order: list[Zone] = []
        for (relative, anchor), members in groups.items():
            for i in range(0, len(members), 64):
                chunk = members[i : i + 64]
                polys = tuple(tuple((float(x), float(y)) for x, y in z.points) for z in chunk)
                raster = _raster(polys, _GRID)
                self._groups.append(_Group(chunk, len(order), relative, anchor, raster))
                order.extend(chunk)
        self._exact = [(len(order) + i, z) for i, z in enumerate(exact)]
        order.extend(exact)
        self._order = order
        self._bit = {z.name: 1 << j for j, z in enumerate(order)}
        self._config_pos = [config_index[z.name] for z in order]
        self._all = (1 << len(order)) - 1
        self._thresholds = [
            (1 << j, z) for j, z in enumerate(order)
            if z.config.min_score > 0 or z.config.min_area > 0
        ]  # fmt: skip
        self._depth = max((z.config.inertia for z in order), default=1)
        by_inertia: dict[int, int] = {}
        for j, z in enumerate(order):
            by_inertia[z.config.inertia] = by_inertia.get(z.config.inertia, 0) | 1 << j
        self._by_inertia = sorted(by_inertia.items())
        self._one_inertia = len(by_inertia) <= 1
        self._loiter = [(1 << j, j, z.config.loitering_time) for j, z in enumerate(order)
                        if z.config.loitering_time > 0]  # fmt: skip
        self._loiter_mask = sum(b for b, _, _ in self._loiter)
        self._plain = self._one_inertia and not self._thresholds and not self._loiter_mask
        self._names_cache: dict[int, tuple[str, ...]] = {0: ()}
        anchors = {"bottom_center": 0, "top_center": 1, "center": 2}
        self._lookups = [
            (g.offset, g.relative, anchors[g.anchor], g.raster.x0, g.raster.sx, g.raster.y0,
             g.raster.sy, g.raster.n, g.raster.inside, g.raster.edge, g.zones)
            for g in self._groups
        ]  # fmt: skip
        self._objects: dict[tuple[str, str, str], _Object] = {}
        self._last_prune = float("-inf")

    def _names(self, mask: int) -> tuple[str, ...]:
        names = self._names_cache.get(mask)
        if names is None:
            cols = [j for j in range(len(self._order)) if mask >> j & 1]
            cols.sort(key=self._config_pos.__getitem__)
            names = self._names_cache[mask] = tuple(self._order[j].name for j in cols)
        return names

    def _geo_bits(self, d: Detection) -> int:
        """Zones (as a mask) whose polygon holds the detection's anchor."""
        box = d.box
        size = d.frame_size
        bits = 0
        xm = (box.x1 + box.x2) * 0.5
        for offset, relative, anchor, x0, sx, y0, sy, n, inside, edges, zones in self._lookups:
            y = box.y2 if anchor == 0 else (box.y1 if anchor == 1 else (box.y1 + box.y2) * 0.5)
            x = xm
            if relative:
                if size is None:
                    continue
                x, y = x * (1.0 / size[0]), y * (1.0 / size[1])  # as Zone.contains
            fx = (x - x0) * sx
            fy = (y - y0) * sy
            if not (0.0 <= fx < n and 0.0 <= fy < n):
                continue  # outside the padded bounding box: in no zone of the group
            cell = int(fy) * n + int(fx)
            local = inside[cell]
            edge = edges[cell]
            while edge:
                low = edge & -edge
                if zones[low.bit_length() - 1].contains_point(x, y):
                    local |= low
                edge ^= low
            bits |= local << offset
        if self._exact:
            for j, z in self._exact:
                if z.contains(box, size):
                    bits |= 1 << j
        return bits

    def update(self, detection: Detection) -> tuple[str, ...]:
        """Feed one detection; return the names of the zones it now counts in."""
        d = detection
        now = d.time
        oid = d.object_id
        key = (d.camera, oid, "") if oid else (d.camera, "", d.label)
        obj = self._objects.get(key)
        if obj is None:
            depth = self._depth
            obj = self._objects[key] = _Object([0] * depth, [0] * depth, nan, 0, 0, {})
        acc = self._geo_bits(d)
        if now != obj.frame_time:  # the object's first box of a new frame
            obj.frame_time = now
            base = obj.base = obj.runs
            enter = keep = 0
            if obj.keep:
                obj.keep = 0
        else:
            base = obj.base
            enter = obj.enter
            keep = obj.keep
        if self._plain and not keep and not d.zones:
            # The common case (no source zones, thresholds or loitering, one
            # inertia): the general path below reduces to this.
            enter = obj.enter = enter | acc
            runs = [enter, enter & base[0], enter & base[1]] if len(base) == 3 else [enter] + [
                enter & p for p in base[:-1]]  # fmt: skip
            obj.runs = runs
            out = runs[-1] & acc
            names = self._names_cache.get(out)
            if names is None:
                names = self._names(out)
            if now - self._last_prune > self.forget_after_s:
                self._prune(now)
            return names
        src = 0
        if d.zones:
            bit = self._bit
            for name in d.zones:
                src |= bit.get(name, 0)
            acc |= src
        if self._thresholds:
            for b, z in self._thresholds:
                if acc & b and not (d.score >= z.config.min_score and
                                    z.area_ok(d.box, d.frame_size)):  # fmt: skip
                    acc &= ~b
        mine_keep = acc & src  # the source says so: counts now, counters untouched
        mine_enter = acc & ~src
        enter = obj.enter = enter | mine_enter
        keep = obj.keep = keep | mine_keep
        keep &= ~enter  # a box inside by geometry wins over the source's say-so
        old = base
        if keep:
            runs = [enter | (keep & old[0])]
            for p, r in pairwise(old):
                runs.append((enter & p) | (keep & r))
        elif len(old) == 3:  # the default inertia
            runs = [enter, enter & old[0], enter & old[1]]
        else:
            runs = [enter]
            for p in old[:-1]:
                runs.append(enter & p)
        obj.runs = runs
        if self._one_inertia:
            reached = runs[-1]
        else:
            reached = 0
            for inertia, mask in self._by_inertia:
                reached |= runs[inertia - 1] & mask
        if self._loiter_mask:
            new = enter & ~old[0] & self._loiter_mask
            for b, j, loiter in self._loiter:
                if new & b:
                    obj.since[j] = now
                if reached & b and now - obj.since.get(j, now) < loiter:
                    reached &= ~b
        out = (reached & mine_enter) | mine_keep
        names = self._names_cache.get(out)
        if names is None:
            names = self._names(out)
        if d.zones:
            more = tuple(z for z in d.zones if z not in self._bit)
            if more:
                names += more  # source zones not configured here (Frigate-only zones)
        if now - self._last_prune > self.forget_after_s:
            self._prune(now)
        return names

    def update_batch(self, detections: Iterable[Detection]) -> list[tuple[str, ...]]:
        """Feed a frame's detections in order; return each one's zones.

        Example:
            >>> ZoneTracker({}).update_batch([])
            []
        """
        update = self.update
        return [update(d) for d in detections]

    def _prune(self, now: float) -> None:
        self._last_prune = now
        stale = [k for k, o in self._objects.items() if now - o.frame_time > self.forget_after_s]
        for k in stale:
            del self._objects[k]


_DETECTION_FIELDS = (
    "camera", "label", "score", "box", "time", "frame_size", "object_id", "zones",
    "source", "stationary", "event", "extra",
)  # fmt: skip
_SLOT = {name: getattr(Detection, name) for name in _DETECTION_FIELDS}
_new = object.__new__
(_set_camera, _set_label, _set_score, _set_box, _set_time, _set_frame_size, _set_object_id,
 _set_zones, _set_source, _set_stationary, _set_event, _set_extra) = (
    _SLOT[name].__set__ for name in _DETECTION_FIELDS
)  # fmt: skip


def with_zones(d: Detection, zones: tuple[str, ...]) -> Detection:
    """Return a copy of ``d`` with ``zones`` (``dataclasses.replace`` without its cost).

    ``replace`` re-runs ``__init__`` and validation. Skipping them is safe:
    ``Detection`` validates only ``label`` and ``score``, copied unchanged
    from a detection that passed, and ``zones`` is not validated. It is kept
    for speed alone: ``in_zones`` copies every detection that passes, and with
    ``replace`` the watch chain in ``benchmarks.operators`` costs 4.8x four
    bare maps instead of 2.8x (target 3). A ``Detection`` with other fields
    than these falls back to ``replace``; a test checks that both agree.

    Example:
        >>> d = Detection(camera="c", label="cat", score=1, box=Box(0, 0, 1, 1), time=0)
        >>> with_zones(d, ("yard",)).zones
        ('yard',)
    """
    if _FAST_COPY:
        new = _new(Detection)
        _set_camera(new, d.camera)
        _set_label(new, d.label)
        _set_score(new, d.score)
        _set_box(new, d.box)
        _set_time(new, d.time)
        _set_frame_size(new, d.frame_size)
        _set_object_id(new, d.object_id)
        _set_zones(new, zones)
        _set_source(new, d.source)
        _set_stationary(new, d.stationary)
        _set_event(new, d.event)
        _set_extra(new, d.extra)
        return new
    return dataclasses.replace(d, zones=zones)


# Only when Detection still has exactly these slots (a new field falls back to replace).
_FAST_COPY = tuple(f.name for f in dataclasses.fields(Detection)) == _DETECTION_FIELDS and all(
    hasattr(v, "__set__") for v in _SLOT.values()
)


def in_zones(
    zones: Mapping[str, ZoneConfig],
    names: Iterable[str] = (),
) -> Callable[[Observable[Detection]], Observable[Detection]]:
    """Rx operator: keep detections that count in one of the zones ``names``.

    Example:
        >>> detections.pipe(in_zones(camera.zones, ["porch"]))  # doctest: +SKIP

    Each detection that passes comes out with ``zones`` set to every zone it
    counts in. With no ``names`` every detection passes (tagged with the zones
    it is in). Each subscription has its own inertia/loitering state.

    Args:
        zones: the camera's zones by name.
        names: zones of interest; empty means anywhere.

    Returns:
        An operator from detections to detections.

    Raises:
        ValueError: when a name is not among ``zones`` or a zone is malformed.
    """
    wanted = tuple(names)
    wanted_set = frozenset(wanted)
    unknown = [n for n in wanted if n not in zones]
    if unknown:
        raise ValueError(f"Unknown zone(s): {', '.join(unknown)}; known: {', '.join(zones)}.")
    for name, cfg in zones.items():
        Zone(name, cfg)  # validate now

    def _op(source: Observable[Detection]) -> Observable[Detection]:
        # One stage (not map + filter): this sits on every detection of a camera.
        def subscribe(
            observer: abc.ObserverBase[Detection], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            tracker = ZoneTracker(zones)
            update = tracker.update

            def on_next(d: Detection) -> None:
                try:
                    inside = update(d)
                except Exception as exc:  # a malformed detection: report, do not raise
                    observer.on_error(exc)
                    return
                if wanted and wanted_set.isdisjoint(inside):
                    return
                observer.on_next(d if inside == d.zones else with_zones(d, inside))

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return _op
