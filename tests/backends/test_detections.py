from __future__ import annotations

import pytest

from operators.backends.base import LookRequest
from operators.backends.detections import DetectionsBackend, render_message
from operators.backends.none import NoneBackend
from pipeline.config import DetectionsBackendConfig
from pipeline.detection import Box, Detection
from pipeline.verdict import AnswerKind


def det(
    label: str = "person", t: float = 100.0, score: float = 0.8, zones: tuple[str, ...] = ()
) -> Detection:
    return Detection(
        camera="porch", label=label, score=score, box=Box(0, 0, 10, 20), time=t, zones=zones
    )


def req(
    watch: str, t: float, *dets: Detection, labels: tuple[str, ...] = ("person",)
) -> LookRequest:
    return LookRequest(
        watch=watch,
        camera="porch",
        condition="someone at the door",
        labels=labels,
        zones=("steps",),
        detections=dets,
        time=t,
    )


def test_met_only_after_consecutive_looks() -> None:
    b = DetectionsBackend("det", DetectionsBackendConfig(consecutive_looks=3, window_s=2.0))
    kinds = [b.judge(req("w", t, det(t=t - 0.5))).kind for t in (100.0, 101.0, 102.0, 103.0)]
    assert kinds == [AnswerKind.NOT_MET, AnswerKind.NOT_MET, AnswerKind.MET, AnswerKind.MET]


def test_a_gap_resets_the_streak_and_watches_are_separate() -> None:
    b = DetectionsBackend("det", DetectionsBackendConfig(consecutive_looks=2))
    assert not b.judge(req("a", 100.0, det(t=100.0))).condition_met
    assert not b.judge(req("b", 100.0, det(t=100.0))).condition_met
    assert not b.judge(req("a", 101.0)).condition_met  # gap for a
    assert b.judge(req("b", 101.0, det(t=101.0))).condition_met
    assert not b.judge(req("a", 102.0, det(t=102.0))).condition_met


def test_stale_and_other_label_detections_do_not_count() -> None:
    b = DetectionsBackend("det", DetectionsBackendConfig(consecutive_looks=1, window_s=2.0))
    assert not b.judge(req("w", 110.0, det(t=100.0))).condition_met
    assert not b.judge(req("w", 110.0, det(label="car", t=110.0))).condition_met
    v = b.judge(req("w", 110.0, det(label="person", t=109.5, score=0.7)))
    assert v.condition_met and v.confidence == pytest.approx(0.7)
    assert v.notification_message == "person seen on porch in steps"


def test_next_run_in_shortens_while_a_streak_forms() -> None:
    cfg = DetectionsBackendConfig(consecutive_looks=2, window_s=2.0, next_run_in_s=5.0)
    b = DetectionsBackend("det", cfg)
    assert b.judge(req("w", 100.0)).next_run_in == 5.0
    assert b.judge(req("w", 100.0, det(t=100.0))).next_run_in == 2.0


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{count} {label} on {camera}{zones_text}", "2 person on porch in steps"),
        ("Alert: {condition}", "Alert: someone at the door"),
        ("{nope}", "{nope}"),
    ],
)
def test_message_template(template: str, expected: str) -> None:
    r = req("w", 100.0)
    assert render_message(template, [det(), det()], r) == expected


def test_none_backend_is_never_met() -> None:
    v = NoneBackend("none").judge(req("w", 1.0, det(t=1.0)))
    assert v.kind is AnswerKind.NOT_MET and v.next_run_in == 30.0
