"""One look (Looker, the frame selector seam) and what it means (verdicts), as plain functions."""

from __future__ import annotations

import doctest
import importlib

import pytest
from reactivex.testing import TestScheduler

from operators.frame_selector import FreshestFrame
from operators.look import Look, Looker, RecentMatches
from operators.sampler import Trigger
from operators.verdicts import Agreement, judge_look, look_reasoning
from operators.watch_spec import WatchSpec
from pipeline.core.detection import Box, Detection
from pipeline.core.events import WatchState
from pipeline.core.frame import Frame, FrameProvider
from pipeline.core.verdict import AnswerKind, Verdict
from tests.support.fakes import ScriptedBackend, StaticFrames, rgb_frame

SPEC = WatchSpec(name="pkg", camera="porch", condition="a package", labels=("person",),
                 zones=("door",))  # fmt: skip


class Recording:
    """A frame selector that records what each look asked for."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, float, float]] = []

    def select(
        self, frames: FrameProvider, trigger: Trigger, due: float, wait_s: float
    ) -> Frame | None:
        self.asked.append((trigger, due, wait_s))
        return rgb_frame(seq=len(self.asked))


def test_the_selector_gets_trigger_due_time_and_wait() -> None:
    s = TestScheduler()
    s.advance_to(20.0)
    selector = Recording()
    backend = ScriptedBackend(['{"condition_met": false, "next_run_in": 5}'])
    recent = RecentMatches()
    recent.add(Detection("porch", "person", 0.9, Box(0, 0, 1, 1), time=5.0))  # too old
    recent.add(Detection("porch", "person", 0.9, Box(0, 0, 1, 1), time=15.0))
    looker = Looker(SPEC, "job1", frames=StaticFrames(None), backend=backend, scheduler=s,
                    recent=recent, selector=selector)  # fmt: skip
    look = looker("wake", 19.5)
    assert selector.asked == [("wake", 19.5, 10.0)]  # no frame seen yet: the long wait
    assert look.verdict.kind is AnswerKind.NOT_MET and look.frame is not None
    assert (look.trigger, look.time, look.due) == ("wake", 20.0, 19.5)
    request = backend.requests[0]
    assert (request.watch, request.job_id, request.labels, request.zones) == (
        "pkg", "job1", ("person",), ("door",)
    )  # fmt: skip
    assert [d.time for d in request.detections] == [15.0]
    looker("timer", 30.0)
    assert selector.asked[-1] == ("timer", 30.0, 2.0)  # a frame was seen: the short wait


def test_a_look_never_raises() -> None:
    class Broken:
        def select(self, *_: object) -> Frame | None:
            raise RuntimeError("decoder gone")

    looker = Looker(SPEC, "j", frames=StaticFrames(None), backend=ScriptedBackend([]),
                    scheduler=TestScheduler(), selector=Broken())  # type: ignore[arg-type]  # fmt: skip
    look = looker("timer", 0.0)
    assert look.verdict.kind is AnswerKind.ERROR and "decoder gone" in (look.verdict.error or "")
    assert FreshestFrame().select(StaticFrames(rgb_frame(seq=4)), "start", 0.0, 2.0).seq == 4  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="first_frame_timeout_s"):
        Looker(SPEC, "j", frames=StaticFrames(None), backend=ScriptedBackend([]),
               scheduler=TestScheduler(), first_frame_timeout_s=-1)  # fmt: skip


def _look(v: Verdict, frame: Frame | None = None) -> Look:
    return Look("timer", 10.0, v, frame, b"jpeg" if frame else None)


def test_judge_look_record_state_and_alert() -> None:
    state = WatchState(id="j", name="pkg", camera="porch", condition="a package", iterations=2)
    agree = Agreement(2, 3)
    met = Verdict.answered(True, 5, "A box.", "Package!")
    first = judge_look(SPEC, "j", _look(met, rgb_frame()), state, agree, looks_last_hour=3)
    assert first.alert is None and first.changes["iterations"] == 3
    assert first.changes["last_reasoning"] == "A box." and first.changes["condition_met"]
    assert first.record.trigger == "timer" and first.record.frame is not None
    second = judge_look(SPEC, "j", _look(met, rgb_frame()), state, agree, looks_last_hour=4)
    assert second.alert is not None and second.alert.message == "Package!"
    assert second.alert.look_count == 3 and second.changes["alerts"] == 1
    third = judge_look(SPEC, "j", _look(met), state, agree, looks_last_hour=5)
    assert third.alert is None  # agreement starts over after an alert


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        (AnswerKind.NO_FRAME, "Camera frame unavailable"),
        (AnswerKind.EMPTY, "The model gave an empty answer"),
        (AnswerKind.UNPARSEABLE, "The model's answer could not be read"),
        (AnswerKind.UNAVAILABLE, "No model was available for this look"),
        (AnswerKind.ERROR, "The look failed"),
    ],
)
def test_every_look_without_a_judgement_says_why(kind: AnswerKind, text: str) -> None:
    assert look_reasoning(Verdict.failed(kind, "detail")) == text


def test_agreement_ignores_looks_without_an_answer() -> None:
    a = Agreement(2, 2)
    assert not a.add(Verdict.answered(True, 5))
    assert not a.add(Verdict.failed(AnswerKind.NO_FRAME, "x"))
    assert a.add(Verdict.answered(True, 5))
    with pytest.raises(ValueError):
        Agreement(3, 2)


@pytest.mark.parametrize(
    ("field", "value"),
    [("quiet_period_s", -1.0), ("quiet_period_s", float("nan")), ("agree_looks", 2),
     ("jpeg_quality", 0), ("cooldown_s", float("inf")), ("mode", "twice"),
     ("max_looks_per_hour", 0)],
)  # fmt: skip
def test_watch_spec_refuses_values_out_of_range(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field if field != "mode" else "mode"):
        WatchSpec(name="w", camera="c", condition="a cat", **{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name",
    ["clock", "cooldown", "frame_selector", "lifecycle", "look", "verdicts", "wakes",
     "watch_spec", "zone_geometry", "zone_tracker", "zones"],
)  # fmt: skip
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(f"operators.{name}")
    assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0
