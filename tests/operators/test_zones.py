import dataclasses
from typing import Any

import pytest
import reactivex

import operators.zones as zones_module
from operators.labels import filter_labels
from operators.zone_geometry import Zone, ZoneRule
from operators.zone_tracker import ZoneTracker
from operators.zones import in_zones, with_zones
from pipeline.core.detection import Box, Detection

SQUARE = [(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)]
TRIANGLE_PX = [(0, 0), (200, 0), (0, 200)]


def _d(
    box: Box,
    *,
    t: float = 0.0,
    score: float = 0.9,
    oid: str | None = "1",
    zones: tuple[str, ...] = (),
    size: tuple[int, int] | None = (100, 100),
) -> Detection:
    return Detection(
        camera="c", label="person", score=score, box=box, time=t,
        frame_size=size, object_id=oid, zones=zones,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("points", "anchor", "box", "size", "inside"),
    [
        (SQUARE, "bottom_center", Box(40, 10, 60, 50), (100, 100), True),  # feet at (50, 50)
        (SQUARE, "bottom_center", Box(40, 10, 60, 20), (100, 100), False),  # feet at (50, 20)
        (SQUARE, "top_center", Box(40, 10, 60, 50), (100, 100), False),
        (SQUARE, "center", Box(40, 10, 60, 50), (100, 100), True),
        (SQUARE, "bottom_center", Box(40, 10, 60, 75), (100, 100), True),  # on the edge
        (SQUARE, "box", Box(0, 0, 30, 30), (100, 100), True),  # corner overlap
        (SQUARE, "box", Box(0, 0, 20, 20), (100, 100), False),
        (SQUARE, "box", Box(0, 40, 100, 60), (100, 100), True),  # crosses, no corner inside
        (SQUARE, "bottom_center", Box(80, 100, 120, 140), (200, 200), True),  # scaled frame
        (SQUARE, "bottom_center", Box(40, 10, 60, 50), None, False),  # relative, size unknown
        (TRIANGLE_PX, "bottom_center", Box(10, 10, 30, 50), None, True),  # pixels need no size
        (TRIANGLE_PX, "bottom_center", Box(150, 100, 190, 150), None, False),
    ],
)
def test_zone_geometry(points: list[tuple[float, float]], anchor: str, box: Box,
                       size: tuple[int, int] | None, inside: bool) -> None:  # fmt: skip
    zone = Zone("z", ZoneRule(points=points, anchor=anchor))  # type: ignore[arg-type]
    assert zone.contains(box, size) is inside


def test_zone_units_and_degenerate_polygons() -> None:
    assert Zone("a", ZoneRule(points=SQUARE)).relative
    assert not Zone("b", ZoneRule(points=TRIANGLE_PX)).relative
    assert not Zone("c", ZoneRule(points=SQUARE, units="pixels")).relative
    with pytest.raises(ValueError, match="no area"):
        Zone("line", ZoneRule(points=[(0, 0), (0.5, 0.5), (1, 1)]))


@pytest.mark.parametrize(
    ("cfg", "det", "ok"),
    [
        ({"min_score": 0.95}, {"score": 0.9}, False),
        ({"min_score": 0.5}, {"score": 0.9}, True),
        ({"min_area": 0.1}, {}, False),  # 20x40 = 800 px of 10000 = 0.08
        ({"min_area": 0.05}, {}, True),
        ({"min_area": 1000}, {}, False),  # pixels
        ({"min_area": 500}, {}, True),
    ],
)
def test_min_score_and_area(cfg: dict[str, float], det: dict[str, float], ok: bool) -> None:
    zone = Zone("z", ZoneRule(points=SQUARE, **cfg))  # type: ignore[arg-type]
    assert zone.accepts(_d(Box(40, 10, 60, 50), **det)) is ok  # type: ignore[arg-type]


def test_inertia_loitering_and_source_zones() -> None:
    zones = {
        "yard": ZoneRule(points=SQUARE, inertia=2),
        "door": ZoneRule(points=SQUARE, inertia=1, loitering_time=5),
    }
    t = ZoneTracker(zones)
    inside, outside = Box(40, 10, 60, 50), Box(0, 0, 10, 10)
    assert t.update(_d(inside, t=0)) == ()
    assert t.update(_d(inside, t=1)) == ("yard",)
    assert t.update(_d(inside, t=5)) == ("yard", "door")
    assert t.update(_d(outside, t=6)) == ()  # leaving resets both
    assert t.update(_d(inside, t=7)) == ()
    # Another object is tracked on its own.
    assert t.update(_d(inside, t=8, oid="2")) == ()
    # Frigate says so: no inertia, and unknown (Frigate-only) zones pass through.
    assert t.update(_d(outside, t=9, oid="3", zones=("yard", "street"))) == ("yard", "street")


def test_in_zones_operator_tags_and_filters() -> None:
    zones = {
        "yard": ZoneRule(points=SQUARE, inertia=1),
        "all": ZoneRule(points=[(0, 0), (1, 0), (1, 1), (0, 1)], inertia=1),
    }
    dets = [_d(Box(40, 10, 60, 50)), _d(Box(0, 0, 10, 10), oid="2")]
    out: list[Detection] = []
    reactivex.from_iterable(dets).pipe(in_zones(zones, ["yard"])).subscribe(out.append)
    assert [d.zones for d in out] == [("yard", "all")]
    out.clear()
    reactivex.from_iterable(dets).pipe(in_zones(zones)).subscribe(out.append)
    assert [d.zones for d in out] == [("yard", "all"), ("all",)]
    with pytest.raises(ValueError, match="Unknown zone"):
        in_zones(zones, ["gate"])


def test_filter_labels() -> None:
    dets = [
        Detection(camera="c", label=lb, score=1, box=Box(0, 0, 1, 1), time=0)
        for lb in ("Person", "car", "cat")
    ]
    out: list[str] = []
    reactivex.from_iterable(dets).pipe(filter_labels(["person", "CAT"])).subscribe(
        lambda d: out.append(d.label)
    )
    assert out == ["Person", "cat"]
    with pytest.raises(ValueError):
        filter_labels([" "])


def test_filter_labels_matches_tags_and_reports_a_bad_item() -> None:
    alice = Detection(camera="c", label="person", score=1, box=Box(0, 0, 1, 1), time=0,
                      tags=("person:alice",))  # fmt: skip
    bob = dataclasses.replace(alice, tags=("person:bob",))
    seen: list[object] = []
    items: list[Any] = [bob, alice, "not a detection", alice]
    reactivex.from_iterable(items).pipe(filter_labels(["person:alice"])).subscribe(
        seen.append, lambda e: seen.append(type(e)), lambda: seen.append("done")
    )
    assert seen == [alice, AttributeError]  # as ops.filter: the error ends the stream


def test_with_zones_is_replace_without_its_cost() -> None:
    d = Detection(camera="c", label="person", score=0.5, box=Box(1, 2, 3, 4), time=7.0,
                  frame_size=(10, 20), object_id="9", zones=("a",), source="frigate",
                  stationary=True, event="update", extra={"k": 1})  # fmt: skip
    copy = with_zones(d, ("b", "c"))
    expected = dataclasses.replace(d, zones=("b", "c"))
    assert copy is not d and d.zones == ("a",)
    assert copy == expected and copy.extra is expected.extra
    assert {f.name: getattr(copy, f.name) for f in dataclasses.fields(Detection)} == {
        f.name: getattr(expected, f.name) for f in dataclasses.fields(Detection)
    }
    # The fast copy is the one tested (a new slot in Detection falls back to replace).
    assert zones_module._FAST_COPY
    # A real Detection: frozen, hashable, its own copy of nothing but zones.
    assert type(copy) is Detection and hash(copy) == hash(expected)
    with pytest.raises(dataclasses.FrozenInstanceError):
        copy.zones = ("d",)  # type: ignore[misc]
    assert dataclasses.replace(copy, score=0.7).zones == ("b", "c")


def test_in_zones_with_several_zones_of_interest_passes_each() -> None:
    zones = {
        "left": ZoneRule(points=[(0, 0), (0.5, 0), (0.5, 1), (0, 1)], inertia=1),
        "right": ZoneRule(points=[(0.5, 0), (1, 0), (1, 1), (0.5, 1)], inertia=1),
        "top": ZoneRule(points=[(0, 0), (1, 0), (1, 0.3), (0, 0.3)], inertia=1),
    }
    dets = [
        _d(Box(10, 50, 20, 90), oid="1"),  # left
        _d(Box(70, 50, 80, 90), oid="2"),  # right
        _d(Box(10, 5, 20, 20), oid="3"),  # left and top
        _d(Box(70, 5, 80, 20), oid="4"),  # right and top
    ]
    for names, expected in [
        (["left", "top"], [("left",), ("left", "top"), ("right", "top")]),
        (["top", "top"], [("left", "top"), ("right", "top")]),  # one zone, named twice
        (["right"], [("right",), ("right", "top")]),
    ]:
        out: list[Detection] = []
        reactivex.from_iterable(dets).pipe(in_zones(zones, names)).subscribe(out.append)
        assert [d.zones for d in out] == expected, names
