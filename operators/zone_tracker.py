"""Which zones each detection counts in, frame after frame: inertia and loitering per object.

:class:`ZoneTracker` is a plain class (no Rx); :func:`operators.zones.in_zones`
is the thin operator around it. The geometry comes from
:mod:`operators.zone_geometry`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from math import floor, nan

from operators.zone_geometry import GRID_CELLS, Zone, ZoneGrid, ZoneInput, ZoneRule, zone_grid
from pipeline.core.detection import Box, Detection

__all__ = ["ZoneRule", "ZoneTracker"]


@dataclass(slots=True)
class _Group:
    """Up to 64 zones that share units and anchor: one lookup grid."""

    zones: list[Zone]
    offset: int  # bit of the first zone in the tracker's masks
    relative: bool
    anchor: str
    raster: ZoneGrid


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
        >>> import dataclasses
        >>> from pipeline.core.detection import Box
        >>> zones = {"yard": ZoneRule(points=[(0, 0), (1, 0), (1, 1)], inertia=2)}
        >>> t = ZoneTracker(zones)
        >>> d = Detection(camera="c", label="cat", score=1, box=Box(90, 5, 100, 10), time=0,
        ...               frame_size=(100, 100))
        >>> t.update(d), t.update(dataclasses.replace(d, time=1))
        ((), ('yard',))
        >>> t.update_batch([dataclasses.replace(d, time=2), dataclasses.replace(d, label="dog",
        ...                 time=2)])
        [('yard',), ()]
    """

    def __init__(self, zones: Mapping[str, ZoneInput], forget_after_s: float = 60.0) -> None:
        if forget_after_s <= 0:
            raise ValueError(f"forget_after_s must be positive, got {forget_after_s}.")
        self.zones = [Zone(name, cfg) for name, cfg in zones.items()]
        self.forget_after_s = forget_after_s
        config_index = {z.name: i for i, z in enumerate(self.zones)}
        # Bit order: zones grouped by (units, anchor), 64 a group; "box" zones last.
        groups: dict[tuple[bool, str], list[Zone]] = {}
        exact: list[Zone] = []
        for z in self.zones:
            if z.rule.anchor == "box":
                exact.append(z)
            else:
                groups.setdefault((z.relative, z.rule.anchor), []).append(z)
        self._groups: list[_Group] = []
        order: list[Zone] = []
        for (relative, anchor), members in groups.items():
            for i in range(0, len(members), 64):
                chunk = members[i : i + 64]
                polys = tuple(tuple((float(x), float(y)) for x, y in z.points) for z in chunk)
                raster = zone_grid(polys, GRID_CELLS)
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
            if z.rule.min_score > 0 or z.rule.min_area > 0
        ]  # fmt: skip
        self._depth = max((z.rule.inertia for z in order), default=1)
        by_inertia: dict[int, int] = {}
        for j, z in enumerate(order):
            by_inertia[z.rule.inertia] = by_inertia.get(z.rule.inertia, 0) | 1 << j
        self._by_inertia = sorted(by_inertia.items())
        self._one_inertia = len(by_inertia) <= 1
        self._loiter = [(1 << j, j, z.rule.loitering_time) for j, z in enumerate(order)
                        if z.rule.loitering_time > 0]  # fmt: skip
        self._loiter_mask = sum(b for b, _, _ in self._loiter)
        self._plain = self._one_inertia and not self._thresholds and not self._loiter_mask
        self._names_cache: dict[int, tuple[str, ...]] = {0: ()}
        self._group_bits = [_group_bits(g) for g in self._groups]
        # Where a detection's geometry is looked up: straight in the one group's
        # grids for the common case (one group, no "box" zones), else all of them.
        self._geo = (
            self._group_bits[0]
            if len(self._group_bits) == 1 and not self._exact
            else self._geo_bits
        )
        self._objects: dict[tuple[str, str, str], _Object] = {}
        self._last_prune = float("-inf")

    def _names(self, mask: int) -> tuple[str, ...]:
        names = self._names_cache.get(mask)
        if names is None:
            cols = [j for j in range(len(self._order)) if mask >> j & 1]
            cols.sort(key=self._config_pos.__getitem__)
            names = self._names_cache[mask] = tuple(self._order[j].name for j in cols)
        return names

    def _geo_bits(self, box: Box, size: tuple[int, int] | None) -> int:
        """Zones (as a mask) whose polygon holds the box's anchor (or, ``box`` zones, the box)."""
        bits = 0
        for group_bits in self._group_bits:
            bits |= group_bits(box, size)
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
        acc = self._geo(d.box, d.frame_size)
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
            # inertia): the general path reduces to this.
            enter = obj.enter = enter | acc
            runs = [enter, enter & base[0], enter & base[1]] if len(base) == 3 else [enter] + [
                enter & p for p in base[:-1]]  # fmt: skip
            obj.runs = runs
            out = runs[-1] & acc
            try:
                names = self._names_cache[out]  # (a subscript is cheaper than .get)
            except KeyError:
                names = self._names(out)
        else:
            names = self._update_general(d, obj, acc, base, enter, keep)
        if now - self._last_prune > self.forget_after_s:
            self._prune(now)
        return names

    def _update_general(
        self, d: Detection, obj: _Object, acc: int, base: list[int], enter: int, keep: int
    ) -> tuple[str, ...]:
        """:meth:`update` with source zones, thresholds, loitering or mixed inertia."""
        src = self._source_bits(d.zones)
        acc |= src
        if self._thresholds:
            acc = self._thresholded(d, acc)
        mine_keep = acc & src  # the source says so: counts now, counters untouched
        mine_enter = acc & ~src
        enter = obj.enter = enter | mine_enter
        keep = obj.keep = keep | mine_keep
        keep &= ~enter  # a box inside by geometry wins over the source's say-so
        runs = obj.runs = _advance(base, enter, keep)
        reached = self._reached(runs)
        if self._loiter_mask:
            reached = self._loitered(obj, reached, enter & ~base[0], d.time)
        out = (reached & mine_enter) | mine_keep
        names = self._names_cache.get(out)
        if names is None:
            names = self._names(out)
        if d.zones:
            more = tuple(z for z in d.zones if z not in self._bit)
            if more:
                names += more  # source zones not configured here (Frigate-only zones)
        return names

    def _source_bits(self, zones: tuple[str, ...]) -> int:
        """The configured zones (as a mask) that the detection's source put it in."""
        src = 0
        bit = self._bit
        for name in zones:
            src |= bit.get(name, 0)
        return src

    def _thresholded(self, d: Detection, acc: int) -> int:
        """``acc`` without the zones whose ``min_score`` or ``min_area`` the detection misses."""
        for b, z in self._thresholds:
            if acc & b and not (d.score >= z.rule.min_score and z.area_ok(d.box, d.frame_size)):
                acc &= ~b
        return acc

    def _reached(self, runs: list[int]) -> int:
        """Zones (as a mask) where the run of frames inside has reached the zone's inertia."""
        if self._one_inertia:
            return runs[-1]
        reached = 0
        for inertia, mask in self._by_inertia:
            reached |= runs[inertia - 1] & mask
        return reached

    def _loitered(self, obj: _Object, reached: int, new: int, now: float) -> int:
        """``reached`` without the zones the object entered less than ``loitering_time`` ago."""
        new &= self._loiter_mask
        for b, j, loiter in self._loiter:
            if new & b:
                obj.since[j] = now
            if reached & b and now - obj.since.get(j, now) < loiter:
                reached &= ~b
        return reached

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


def _group_bits(group: _Group) -> Callable[[Box, tuple[int, int] | None], int]:
    """A function that looks a box's anchor up in ``group``'s grids: the tracker's mask of it.

    One lookup, and the exact polygon test only in cells an edge crosses;
    the group's constants are bound once (it runs on every detection).
    """
    r = group.raster
    x0, sx, y0, sy, n, inside, edges = r.x0, r.sx, r.y0, r.sy, r.n, r.inside, r.edge
    nf = float(n)  # floats compare faster with a float
    zones, offset, relative = group.zones, group.offset, group.relative
    anchor = ("bottom_center", "top_center", "center").index(group.anchor)

    def bits(box: Box, size: tuple[int, int] | None) -> int:
        y = box.y2 if anchor == 0 else (box.y1 if anchor == 1 else (box.y1 + box.y2) * 0.5)
        x = (box.x1 + box.x2) * 0.5
        if relative:
            if size is None:
                return 0
            x, y = x * (1.0 / size[0]), y * (1.0 / size[1])  # as Zone.contains
        fx = (x - x0) * sx
        fy = (y - y0) * sy
        if not (0.0 <= fx < nf and 0.0 <= fy < nf):
            return 0  # outside the padded bounding box: in no zone of the group
        cell = floor(fy) * n + floor(fx)  # int() of a float, 3x cheaper (both are >= 0)
        local = inside[cell]
        edge = edges[cell]
        while edge:
            low = edge & -edge
            if zones[low.bit_length() - 1].contains_point(x, y):
                local |= low
            edge ^= low
        return local << offset

    return bits


def _advance(old: list[int], enter: int, keep: int) -> list[int]:
    """The runs of frames inside after this frame: ``enter`` extends a run, ``keep`` holds it."""
    if keep:
        runs = [enter | (keep & old[0])]
        for p, r in pairwise(old):
            runs.append((enter & p) | (keep & r))
        return runs
    if len(old) == 3:  # the default inertia
        return [enter, enter & old[0], enter & old[1]]
    return [enter] + [enter & p for p in old[:-1]]
