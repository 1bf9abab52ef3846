"""Frigate's events, reviews and tracked object updates as detections (payloads as documented)."""

from __future__ import annotations

import pytest
import reactivex
from reactivex import operators as ops

from operators.labels import filter_labels, label_matches
from pipeline.core.config import FrigateDetectConfig
from pipeline.core.detection import Detection
from sources.frigate import FrigateEventParser
from sources.frigate_messages import NO_BOX, FrigateMessages, event_tags, plate_tag
from tests.support import frigate_payloads as fp

CAMERAS = {"front_door": "porch", "front_cam": "yard", "driveway_cam": "drive"}


def messages(**kw: object) -> FrigateMessages:
    return FrigateMessages(CAMERAS, clock=lambda: 1000.0, **kw)  # type: ignore[arg-type]


def test_event_carries_sub_label_and_attributes_as_tags() -> None:
    d = messages().event(fp.event())
    assert d is not None
    assert (d.camera, d.label, d.object_id) == ("porch", "person", fp.EVENT_ID)
    assert d.zones == ("yard", "driveway")
    assert d.tags == ("person:john smith", "face")
    assert d.box.as_list() == [432, 496, 544, 854]


@pytest.mark.parametrize(
    ("after", "tags"),
    [
        ({"sub_label": None, "attributes": {}, "current_attributes": []}, ()),
        ({"sub_label": "Alice", "attributes": [], "current_attributes": []}, ("person:alice",)),
        ({"sub_label": ["Alice", 0.9], "attributes": {}, "current_attributes": []}, ("person:alice",)),
        (
            {"label": "car", "sub_label": None, "recognized_license_plate": "AB-123 CD",
             "attributes": {"license_plate": 0.91}, "current_attributes": []},
            ("plate:ab123cd", "license_plate"),
        ),
        (
            {"label": "car", "sub_label": ["Dad's car", 0.97], "recognized_license_plate": ["XY99Z", 0.8],
             "attributes": {}, "current_attributes": []},
            ("car:dad's car", "plate:xy99z"),
        ),
    ],
)  # fmt: skip
def test_event_tag_table(after: dict[str, object], tags: tuple[str, ...]) -> None:
    d = messages().event(fp.event(**after))
    assert d is not None and d.tags == tags


def test_event_end_false_positive_and_other_cameras_are_skipped() -> None:
    m = messages()
    assert m.event(fp.event("end")) is None
    assert m.event(fp.event(false_positive=True)) is None
    assert m.event(fp.event(camera="garage")) is None
    with pytest.raises(TypeError):
        m.event({"type": "new"})


def test_review_gives_one_detection_per_object_with_its_zones() -> None:
    dets = messages().review(fp.review())
    assert [d.label for d in dets] == ["person", "car"]
    for d in dets:
        assert d.camera == "yard" and d.zones == ("front_yard",) and d.box == NO_BOX
        assert d.extra["severity"] == "alert" and d.event == "review.update"
        assert d.time == 1000.0
    assert dets[0].tags == ("person:bob",)
    assert dets[0].object_id != dets[1].object_id


def test_review_severity_end_and_off() -> None:
    assert messages(reviews="alerts").review(fp.review(severity="detection")) == []
    assert len(messages(reviews="all").review(fp.review(severity="detection"))) == 2
    assert messages(reviews="off").review(fp.review()) == []
    assert messages().review(fp.review("end")) == []
    assert messages().review(fp.review(camera="garage")) == []
    with pytest.raises(TypeError):
        messages().review({"type": "new", "after": {"camera": "front_cam"}})


def test_face_update_takes_the_box_and_zones_of_the_object_and_keeps_the_name() -> None:
    m = messages()
    first = m.event(fp.event(sub_label=None, attributes={}, current_attributes=[]))
    assert first is not None and first.tags == ()
    d = m.object_update(fp.face())
    assert d is not None
    assert (d.camera, d.label, d.object_id) == ("porch", "person", fp.EVENT_ID)
    assert d.box == first.box and d.zones == first.zones
    assert d.tags == ("person:john", "face") and d.score == 0.95
    # The object's next event (no sub label yet) still answers to the name.
    later = m.event(fp.event(sub_label=None, attributes={}, current_attributes=[]))
    assert later is not None and "person:john" in later.tags


def test_plate_update_without_an_event_before_it() -> None:
    d = messages().object_update(fp.lpr())
    assert d is not None
    assert (d.camera, d.label, d.box, d.zones) == ("drive", "car", NO_BOX, ())
    assert d.tags == ("car:john's car", "plate:123abc", "license_plate")


def test_description_updates_and_unknown_cameras_give_nothing() -> None:
    assert messages().object_update(fp.description()) is None
    assert messages().object_update(fp.face(camera="garage")) is None
    assert messages().object_update(fp.face(name=None)).tags == ("face",)  # type: ignore[union-attr]


def test_label_filters_match_tags() -> None:
    d = messages().event(fp.event())
    assert d is not None
    assert label_matches(frozenset({"person:john smith"}), d)
    assert label_matches(frozenset({"face"}), d)
    assert not label_matches(frozenset({"person:alice"}), d)
    got: list[Detection] = []
    plate = messages().object_update(fp.lpr())
    assert plate is not None
    reactivex.of(d, plate).pipe(filter_labels(["plate:123ABC"]), ops.to_list()).subscribe(
        got.extend
    )
    assert got == [plate]


def test_plate_tag_keeps_letters_and_digits() -> None:
    assert plate_tag("ab 12-3") == "plate:ab123"
    assert event_tags("person", {"sub_label": "  "}) == ()


def test_parser_counts_malformed_payloads_of_every_topic() -> None:
    p = FrigateEventParser(FrigateDetectConfig(camera="front_cam"), {"front_cam": "yard"})
    assert p.parse(b"{not json") is None
    assert p.parse_review(b'{"type": "new"}') == []
    assert p.parse_object_update(b"[1, 2]") is None
    assert p.malformed == 3
    assert len(p.parse_review(fp.dumps(fp.review()))) == 2
