"""The zone operator: keep detections that count inside named zones, tagged with their zones.

Geometry lives in :mod:`operators.zone_geometry` (:class:`ZoneRule`,
:class:`Zone`), the per-object bookkeeping of ``inertia`` and
``loitering_time`` in :mod:`operators.zone_tracker` (:class:`ZoneTracker`);
:func:`in_zones` is the thin Rx wrapper, and the three names are importable
from here. Zones are plain values: a :class:`ZoneRule` or a bare list of
points.

Example:
    >>> import reactivex
    >>> from pipeline.core.detection import Box
    >>> porch = ZoneRule(points=[(0, 0.5), (1, 0.5), (1, 1), (0, 1)], inertia=1)
    >>> d = Detection(camera="c", label="person", score=0.9, box=Box(10, 60, 20, 90),
    ...               time=0, frame_size=(100, 100))
    >>> reactivex.of(d).pipe(in_zones({"porch": porch}, ["porch"])).subscribe(
    ...     lambda x: print(x.zones))
    ('porch',)
    <...>
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping

from reactivex import Observable, abc

from operators.zone_geometry import Zone, ZoneInput, ZoneRule
from operators.zone_tracker import ZoneTracker
from pipeline.core.detection import Detection

__all__ = ["Zone", "ZoneRule", "ZoneTracker", "in_zones", "with_zones"]

_DETECTION_FIELDS = (
    "camera", "label", "score", "box", "time", "frame_size", "object_id", "zones",
    "source", "stationary", "event", "extra", "tags",
)  # fmt: skip
_SLOT = {name: getattr(Detection, name) for name in _DETECTION_FIELDS}
_new = object.__new__
(_set_camera, _set_label, _set_score, _set_box, _set_time, _set_frame_size, _set_object_id,
 _set_zones, _set_source, _set_stationary, _set_event, _set_extra, _set_tags) = (
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
        >>> from pipeline.core.detection import Box
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
        _set_tags(new, d.tags)
        return new
    return dataclasses.replace(d, zones=zones)


# Only when Detection still has exactly these slots (a new field falls back to replace).
_FAST_COPY = tuple(f.name for f in dataclasses.fields(Detection)) == _DETECTION_FIELDS and all(
    hasattr(v, "__set__") for v in _SLOT.values()
)


def in_zones(
    zones: Mapping[str, ZoneInput],
    names: Iterable[str] = (),
) -> Callable[[Observable[Detection]], Observable[Detection]]:
    """Rx operator: keep detections that count in one of the zones ``names``.

    Example:
        >>> porch = [(0.5, 0.5), (1, 0.5), (1, 1), (0.5, 1)]
        >>> detections.pipe(in_zones({"porch": porch}, ["porch"]))  # doctest: +SKIP

    Each detection that passes comes out with ``zones`` set to every zone it
    counts in. With no ``names`` every detection passes (tagged with the zones
    it is in). Each subscription has its own inertia/loitering state.

    Args:
        zones: the camera's zones by name, each a :class:`ZoneRule` or its points.
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
    rules = {name: Zone(name, zone).rule for name, zone in zones.items()}  # validate now

    def _op(source: Observable[Detection]) -> Observable[Detection]:
        # One stage (not map + filter): this sits on every detection of a camera.
        def subscribe(
            observer: abc.ObserverBase[Detection], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            tracker = ZoneTracker(rules)
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
