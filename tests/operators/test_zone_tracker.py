"""ZoneTracker (grid lookup, bit masks) against a plain per-zone reference."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex.subject import Subject

from operators.zone_geometry import Zone, ZoneRule
from operators.zone_tracker import ZoneTracker
from operators.zones import in_zones
from pipeline.core.detection import Box, Detection


class ReferenceTracker:
    """The obvious algorithm: every zone, every detection, exact geometry, frame by frame.

    An object is its ``object_id``, else its label. Per object it keeps each
    frame (detection time) with, per zone, "enter" (some box inside by
    geometry) or "keep" (only the source said so). A zone counts for a box
    inside it once the consecutive frames with "enter" (frames with only
    "keep" neither count nor break the run) reach ``inertia`` and
    ``loitering_time`` has passed since the first of them.
    """

    def __init__(self, zones: dict[str, ZoneRule]) -> None:
        self.zones = [Zone(n, c) for n, c in zones.items()]
        self.frames: dict[tuple[str, str, str], list[tuple[float, dict[str, str]]]] = {}

    def update(self, d: Detection) -> tuple[str, ...]:
        key = (d.camera, d.object_id, "") if d.object_id else (d.camera, "", d.label)
        frames = self.frames.setdefault(key, [])
        if not frames or frames[-1][0] != d.time:
            frames.append((d.time, {}))
        marks = frames[-1][1]
        out: list[str] = []
        for zone in self.zones:
            if not zone.accepts(d):
                continue
            if zone.name in d.zones:
                marks.setdefault(zone.name, "keep")
                out.append(zone.name)
                continue
            marks[zone.name] = "enter"
            count, since = 0, d.time
            for t, m in reversed(frames):
                kind = m.get(zone.name)
                if kind == "enter":
                    count, since = count + 1, t
                elif kind != "keep":
                    break
            if count >= zone.rule.inertia and d.time - since >= zone.rule.loitering_time:
                out.append(zone.name)
        known = {z.name for z in self.zones}
        return (*out, *(z for z in d.zones if z not in known))


coord = st.integers(0, 20).map(lambda v: v / 20)
rectangle = st.tuples(coord, coord, coord, coord).map(
    lambda r: [(r[0], r[1]), (r[2], r[1]), (r[2], r[3]), (r[0], r[3])]
)
polygon = st.one_of(rectangle, st.lists(st.tuples(coord, coord), min_size=3, max_size=6))
zone_cfg = st.builds(
    ZoneRule,
    points=polygon,
    units=st.sampled_from(["auto", "relative", "pixels"]),
    anchor=st.sampled_from(["bottom_center", "center", "top_center", "box"]),
    inertia=st.integers(1, 4),
    loitering_time=st.sampled_from([0.0, 0.0, 1.5]),
    min_score=st.sampled_from([0.0, 0.0, 0.5]),
    min_area=st.sampled_from([0.0, 0.0, 0.01, 30.0]),
)


def _valid(cfg: ZoneRule) -> bool:
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
    lambda x, y, w, h, oid, label, score, size, src: Detection(
        camera="c",
        label=label,
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
    st.sampled_from(["1", "2", "3", None, None]),  # None: motion and ONNX boxes have no id
    st.sampled_from(["person", "person", "car"]),
    st.sampled_from([0.3, 0.9]),
    st.sampled_from([(100, 100), (100, 100), None]),
    st.sampled_from([(), (), ("z0",), ("elsewhere",)]),
)
# 0: the same frame as the previous detection, 1: the next frame, 2: a frame later.
frame_step = st.sampled_from([0, 0, 1, 1, 2])


def _in_frames(
    detections: list[Detection], steps: list[int], stays: list[int] | None = None
) -> list[Detection]:
    """Give the detections frame times: ``steps[i]`` frames after detection ``i - 1``.

    With ``stays[i] = k``, detection ``i`` is seen again, in the same place, on
    the ``k`` frames after its own (a box that stays a while); ``k < 0`` means
    it comes ``-k`` extra times in its own frame (twin boxes: one frame, not
    several). The result is in frame order.
    """
    timed: list[tuple[int, int, Detection]] = []
    frame = 0
    for i, (d, step) in enumerate(zip(detections, steps, strict=False)):
        frame += step
        k = stays[i] if stays else 0
        for extra in range(max(0, k) + 1):
            timed.append((frame + extra, i, d))
        timed += [(frame, i, d)] * max(0, -k)
    timed.sort(key=lambda t: t[:2])
    return [dataclasses.replace(d, time=f * 0.5) for f, _, d in timed]


stay = st.sampled_from([0, 0, 0, 1, 2, 3, -1])


@settings(max_examples=300, deadline=None)
@given(
    zones=st.lists(zone_cfg.filter(_valid), min_size=1, max_size=5),
    detections=st.lists(detection, min_size=1, max_size=25),
    steps=st.lists(frame_step, min_size=25, max_size=25),
    stays=st.lists(stay, min_size=25, max_size=25),
)
def test_tracker_matches_reference(
    zones: list[ZoneRule], detections: list[Detection], steps: list[int], stays: list[int]
) -> None:
    named = {f"z{i}": cfg for i, cfg in enumerate(zones)}
    fast, ref = ZoneTracker(named), ReferenceTracker(named)
    batch = ZoneTracker(named)
    dets = _in_frames(detections, steps, stays)
    expected = [ref.update(d) for d in dets]
    assert [fast.update(d) for d in dets] == expected
    assert batch.update_batch(dets) == expected


def _box(x: float, y: float, t: float) -> Detection:
    """An id-less 10 x 10 motion box with its bottom centre at ``(x, y)`` of a 100 x 100 frame."""
    return Detection(camera="c", label="motion", score=1, box=Box(x - 5, y - 10, x + 5, y),
                     time=t, frame_size=(100, 100))  # fmt: skip


LOWER_HALF = {"path": ZoneRule(points=[(0, 0.5), (1, 0.5), (1, 1), (0, 1)])}  # inertia 3


@pytest.mark.parametrize("inside_first", [True, False])
def test_two_idless_boxes_one_inside_do_not_reset_each_other(inside_first: bool) -> None:
    tracker = ZoneTracker(LOWER_HALF)
    got = []
    for frame in range(6):
        inside, outside = _box(50, 90, frame * 0.2), _box(50, 20, frame * 0.2)
        pair = [inside, outside] if inside_first else [outside, inside]
        zones = dict(zip(("inside", "outside") if inside_first else ("outside", "inside"),
                         tracker.update_batch(pair), strict=True))  # fmt: skip
        got.append((zones["inside"], zones["outside"]))
    # Inertia 3: the box inside counts from the third frame on; the other never does.
    assert got == [((), ()), ((), ())] + [(("path",), ())] * 4


def test_idless_inertia_counts_frames_not_boxes() -> None:
    tracker = ZoneTracker(LOWER_HALF)
    # Three boxes inside in one frame are one frame, not three.
    assert tracker.update_batch([_box(x, 90, 0.0) for x in (20, 50, 80)]) == [()] * 3
    assert tracker.update_batch([_box(50, 90, 0.2)]) == [()]
    # A frame with only a box outside breaks the run.
    assert tracker.update_batch([_box(50, 20, 0.4)]) == [()]
    assert [tracker.update(_box(50, 90, t)) for t in (0.6, 0.8, 1.0)] == [(), (), ("path",)]


def test_idless_boxes_through_in_zones() -> None:
    subject: Subject[Detection] = Subject()
    passed: list[Detection] = []
    subject.pipe(in_zones(LOWER_HALF, ["path"])).subscribe(passed.append)
    for frame in range(4):
        subject.on_next(_box(50, 20, frame * 0.25))  # a tree waving outside the zone
        subject.on_next(_box(50, 90, frame * 0.25))  # someone on the path
    assert [(d.time, d.box.y2, d.zones) for d in passed] == [
        (0.5, 90, ("path",)), (0.75, 90, ("path",))
    ]  # fmt: skip


far_away = st.builds(
    lambda x, y: Box(200 + x, 200 + y, 210 + x, 210 + y), st.integers(0, 50), st.integers(0, 50)
)  # beyond a 100 x 100 frame: outside every zone of the strategy above, any units or anchor


@settings(max_examples=150, deadline=None)
@given(
    zones=st.lists(zone_cfg.filter(_valid), min_size=1, max_size=4),
    detections=st.lists(detection, min_size=1, max_size=20),
    steps=st.lists(frame_step, min_size=20, max_size=20),
    stays=st.lists(stay, min_size=20, max_size=20),
    distractors=st.lists(st.tuples(st.integers(0, 99), st.booleans(), far_away), max_size=8),
)
def test_an_idless_box_outside_every_zone_changes_no_other_box(
    zones: list[ZoneRule],
    detections: list[Detection],
    steps: list[int],
    stays: list[int],
    distractors: list[tuple[int, bool, Box]],
) -> None:
    """Another id-less box of the same label in the same frame, outside every zone, changes nothing.

    (The bug this guards: such boxes reset each other's inertia.)
    """
    named = {f"z{i}": cfg for i, cfg in enumerate(zones)}
    dets = _in_frames(detections, steps, stays)
    plain = ZoneTracker(named).update_batch(dets)
    idless = [i for i, d in enumerate(dets) if d.object_id is None]
    extra: dict[int, list[tuple[bool, Detection]]] = {}
    for pick, after, box in distractors if idless else []:
        i = idless[pick % len(idless)]
        twin = Detection(camera="c", label=dets[i].label, score=1, box=box, time=dets[i].time,
                         frame_size=(100, 100))  # fmt: skip
        extra.setdefault(i, []).append((after, twin))
    mixed: list[tuple[bool, Detection]] = []
    for i, d in enumerate(dets):
        mixed += [(False, t) for after, t in extra.get(i, []) if not after]
        mixed.append((True, d))
        mixed += [(False, t) for after, t in extra.get(i, []) if after]
    results = ZoneTracker(named).update_batch([d for _, d in mixed])
    assert [r for (real, _), r in zip(mixed, results, strict=True) if real] == plain
    assert all(r == () for (real, _), r in zip(mixed, results, strict=True) if not real)


def test_objects_are_forgotten_after_a_while() -> None:
    zones = {"all": ZoneRule(points=[(0, 0), (1, 0), (1, 1), (0, 1)], inertia=2)}
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
