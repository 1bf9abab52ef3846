"""ZoneTracker (grid lookup, bit masks) against a plain per-zone reference."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from operators.zones import Zone, ZoneTracker
from pipeline.config import ZoneConfig
from pipeline.detection import Box, Detection


class ReferenceTracker:
    """The obvious algorithm: every zone, every detection, exact geometry."""

    def __init__(self, zones: dict[str, ZoneConfig]) -> None:
        self.zones = [Zone(n, c) for n, c in zones.items()]
        self.state: dict[tuple[str, str, str], list[float]] = {}

    def update(self, d: Detection) -> tuple[str, ...]:
        out: list[str] = []
        for zone in self.zones:
            key = (d.camera, d.object_id or d.label, zone.name)
            if not zone.accepts(d):
                self.state.pop(key, None)
                continue
            if zone.name in d.zones:
                out.append(zone.name)
                continue
            p = self.state.setdefault(key, [0, d.time])
            p[0] += 1
            if p[0] >= zone.config.inertia and d.time - p[1] >= zone.config.loitering_time:
                out.append(zone.name)
        known = {z.name for z in self.zones}
        return (*out, *(z for z in d.zones if z not in known))


coord = st.integers(0, 20).map(lambda v: v / 20)
rectangle = st.tuples(coord, coord, coord, coord).map(
    lambda r: [(r[0], r[1]), (r[2], r[1]), (r[2], r[3]), (r[0], r[3])]
)
polygon = st.one_of(rectangle, st.lists(st.tuples(coord, coord), min_size=3, max_size=6))
zone_cfg = st.builds(
    ZoneConfig,
    points=polygon,
    units=st.sampled_from(["auto", "relative", "pixels"]),
    anchor=st.sampled_from(["bottom_center", "center", "top_center", "box"]),
    inertia=st.integers(1, 4),
    loitering_time=st.sampled_from([0.0, 0.0, 1.5]),
    min_score=st.sampled_from([0.0, 0.0, 0.5]),
    min_area=st.sampled_from([0.0, 0.0, 0.01, 30.0]),
)


def _valid(cfg: ZoneConfig) -> bool:
    try:
        Zone("z", cfg)
    except ValueError:
        return False
    return True


# Boxes centred on a grid of 1/40 of the frame with their bottom on it: many
# anchors fall exactly on edges and vertices of the zones (on a 1/20 grid),
# where the exact test must decide.
cell = st.integers(0, 40)
detection = st.builds(
    lambda x, y, w, h, oid, score, size, src: Detection(
        camera="c",
        label="person",
        score=score,
        box=Box(x * 2.5 - w * 5, max(0, y - h) * 2.5, x * 2.5 + w * 5, y * 2.5),
        time=0.0,
        frame_size=size,
        object_id=oid,
        zones=src,
    ),
    cell,
    cell,
    st.integers(0, 4),
    st.integers(0, 8),
    st.sampled_from(["1", "2", "3"]),
    st.sampled_from([0.3, 0.9]),
    st.sampled_from([(100, 100), (100, 100), None]),
    st.sampled_from([(), (), ("z0",), ("elsewhere",)]),
)


@settings(max_examples=300, deadline=None)
@given(
    zones=st.lists(zone_cfg.filter(_valid), min_size=1, max_size=5),
    detections=st.lists(detection, min_size=1, max_size=25),
)
def test_tracker_matches_reference(zones: list[ZoneConfig], detections: list[Detection]) -> None:
    named = {f"z{i}": cfg for i, cfg in enumerate(zones)}
    fast, ref = ZoneTracker(named), ReferenceTracker(named)
    batch = ZoneTracker(named)
    dets = [dataclasses.replace(d, time=i * 0.5) for i, d in enumerate(detections)]
    expected = [ref.update(d) for d in dets]
    assert [fast.update(d) for d in dets] == expected
    assert batch.update_batch(dets) == expected


def test_objects_are_forgotten_after_a_while() -> None:
    zones = {"all": ZoneConfig(points=[(0, 0), (1, 0), (1, 1), (0, 1)], inertia=2)}
    t = ZoneTracker(zones, forget_after_s=10)
    d = Detection(camera="c", label="cat", score=1, box=Box(10, 10, 20, 20), time=0,
                  frame_size=(100, 100))  # fmt: skip
    assert t.update(d) == ()
    assert t.update(dataclasses.replace(d, time=1.0)) == ("all",)
    later = [Detection(camera="c", label="dog", score=1, box=Box(0, 0, 1, 1), time=s,
                       frame_size=(100, 100)) for s in (30.0, 45.0)]  # fmt: skip
    t.update_batch(later)
    # The cat was pruned: it starts counting again.
    again = Detection(camera="c", label="cat", score=1, box=Box(10, 10, 20, 20), time=46,
                      frame_size=(100, 100))  # fmt: skip
    assert t.update(again) == ()
