"""Zones: polygons on a camera's picture, and the operator that keeps objects inside them.

Geometry lives in :class:`Zone` (validated, precomputed once); the bookkeeping
of ``inertia`` and ``loitering_time`` per object lives in :class:`ZoneTracker`;
:func:`in_zones` is the thin Rx wrapper.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt
from reactivex import Observable
from reactivex import operators as ops

from pipeline.config import ZoneConfig
from pipeline.detection import Box, Detection

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


@dataclass(slots=True)
class _Presence:
    count: int = 0
    since: float = 0.0
    last_seen: float = 0.0


class ZoneTracker:
    """Inertia and loitering bookkeeping over a stream of detections (plain class).

    An object (``object_id``, else its label) counts in a zone once it has been
    inside in ``inertia`` consecutive detections *and* for ``loitering_time``
    seconds (by detection time). Source zones (Frigate's) count at once: the
    source applied its own rules.

    Example:
        >>> zones = {"yard": ZoneConfig(points=[(0, 0), (1, 0), (1, 1)], inertia=2)}
        >>> t = ZoneTracker(zones)
        >>> d = Detection(camera="c", label="cat", score=1, box=Box(90, 5, 100, 10), time=0,
        ...               frame_size=(100, 100))
        >>> t.update(d), t.update(d)
        ((), ('yard',))
    """

    def __init__(self, zones: Mapping[str, ZoneConfig], forget_after_s: float = 60.0) -> None:
        self.zones = [Zone(name, cfg) for name, cfg in zones.items()]
        self.forget_after_s = forget_after_s
        self._state: dict[tuple[str, str, str], _Presence] = {}
        self._last_prune = float("-inf")

    def update(self, detection: Detection) -> tuple[str, ...]:
        """Feed one detection; return the names of the zones it now counts in."""
        now = detection.time
        key_obj = detection.object_id or detection.label
        out: list[str] = []
        for zone in self.zones:
            key = (detection.camera, key_obj, zone.name)
            if not zone.accepts(detection):
                self._state.pop(key, None)
                continue
            if zone.name in detection.zones:
                out.append(zone.name)
                continue
            p = self._state.get(key)
            if p is None:
                p = self._state[key] = _Presence(0, now, now)
            p.count += 1
            p.last_seen = now
            if p.count >= zone.config.inertia and now - p.since >= zone.config.loitering_time:
                out.append(zone.name)
        # Source zones not configured here still count (Frigate-only zones).
        known = {z.name for z in self.zones}
        out.extend(z for z in detection.zones if z not in known)
        if now - self._last_prune > self.forget_after_s:
            self._prune(now)
        return tuple(out)

    def _prune(self, now: float) -> None:
        self._last_prune = now
        stale = [k for k, p in self._state.items() if now - p.last_seen > self.forget_after_s]
        for k in stale:
            del self._state[k]


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
    unknown = [n for n in wanted if n not in zones]
    if unknown:
        raise ValueError(f"Unknown zone(s): {', '.join(unknown)}; known: {', '.join(zones)}.")
    for name, cfg in zones.items():
        Zone(name, cfg)  # validate now

    def _op(source: Observable[Detection]) -> Observable[Detection]:
        from reactivex import defer

        def _factory(_: object) -> Observable[Detection]:
            tracker = ZoneTracker(zones)

            def _tag(d: Detection) -> Detection | None:
                inside = tracker.update(d)
                if wanted and not any(n in inside for n in wanted):
                    return None
                return dataclasses.replace(d, zones=inside) if inside != d.zones else d

            def _present(d: Detection | None) -> bool:
                return d is not None

            tagged: Observable[Detection | None] = source.pipe(ops.map(_tag))
            return cast(Observable[Detection], tagged.pipe(ops.filter(_present)))

        return defer(_factory)

    return _op
