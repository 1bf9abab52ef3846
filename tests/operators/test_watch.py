import itertools
from typing import Any

import pytest
from reactivex import Observable
from reactivex.testing import ReactiveTest, TestScheduler

from operators.backends.base import Backend
from operators.watch import run_watch
from operators.watch_spec import WatchSpec
from operators.zones import ZoneRule
from pipeline.core.detection import Box, Detection
from pipeline.core.events import Alert, LookRecord, WatchState, WatchStatus
from pipeline.core.verdict import AnswerKind
from tests.support.fakes import ScriptedBackend, StaticFrames, rgb_frame

on_next = ReactiveTest.on_next


def _no(n: int) -> str:
    return '{"condition_met": false, "next_run_in": ' + str(n) + ', "reasoning": "Nothing."}'


YES = (
    '{"condition_met": true, "next_run_in": 5, "reasoning": "A box.",'
    ' "notification_message": "Package!"}'
)


def _cfg(**kw: Any) -> WatchSpec:
    base: dict[str, Any] = {
        "name": "pkg",
        "camera": "porch",
        "condition": "a package is on the porch",
    }
    base.update(kw)
    return WatchSpec(**base)


def _run(
    cfg: WatchSpec,
    backend: Backend,
    *,
    frames: StaticFrames | None = None,
    detections: list[tuple[float, Detection]] | None = None,
    zones: dict[str, ZoneRule] | None = None,
    cancel_at: float | None = None,
    until: float = 10_000.0,
) -> list[tuple[float, Any]]:
    s = TestScheduler()
    dets: Observable[Detection] | None = None
    if detections is not None:
        dets = s.create_hot_observable([on_next(t, d) for t, d in detections])
    cancel = s.create_hot_observable([on_next(cancel_at, True)]) if cancel_at else None
    fr = frames or StaticFrames(rgb_frame())

    def create() -> Observable[Any]:
        return run_watch(cfg, frames=fr, backend=backend, detections=dets, zones=zones,
                         cancel=cancel, scheduler=s, look_scheduler=s, job_id="job1")  # fmt: skip

    out: list[tuple[float, Any]] = []
    sub = create().subscribe(lambda e: out.append((s.clock, e)))
    s.advance_to(until)
    sub.dispose()
    return out


def _looks(events: list[tuple[float, Any]]) -> list[tuple[float, str, AnswerKind]]:
    return [(t, e.trigger, e.verdict.kind) for t, e in events if isinstance(e, LookRecord)]


def test_once_mode_looks_on_next_run_in_and_alerts() -> None:
    backend = ScriptedBackend([_no(20), _no(500), YES])
    ev = _run(_cfg(), backend)
    states = [e for _, e in ev if isinstance(e, WatchState)]
    assert states[0].status == WatchStatus.QUEUED
    assert states[1].status == WatchStatus.RUNNING and states[1].started_at == 0.0
    # First look at once, then 20 s, then clamped to 300 s.
    assert _looks(ev) == [
        (0.0, "start", AnswerKind.NOT_MET),
        (20.0, "timer", AnswerKind.NOT_MET),
        (320.0, "timer", AnswerKind.MET),
    ]
    alerts = [(t, e) for t, e in ev if isinstance(e, Alert)]
    assert len(alerts) == 1
    t, alert = alerts[0]
    assert t == 320.0 and alert.message == "Package!" and alert.reasoning == "A box."
    assert alert.job_id == "job1" and alert.look_count == 3 and alert.jpeg
    final = states[-1]
    assert final.status == WatchStatus.SUCCESS and final.ended_at == 320.0
    assert final.iterations == 3 and final.notification_message == "Package!"
    assert ev[-1][1] is final
    # The user turn and the history the backend saw.
    assert backend.requests[0].user_text.startswith("Frame captured at ")
    assert [len(r.history) for r in backend.requests] == [0, 1, 2]


def test_message_falls_back_to_reasoning() -> None:
    ev = _run(_cfg(), ScriptedBackend(['{"condition_met": true, "reasoning": "It is there."}']))
    (alert,) = [e for _, e in ev if isinstance(e, Alert)]
    assert alert.message == "It is there."


def test_bad_answers_and_no_frame_use_baseline_retries() -> None:
    backend = ScriptedBackend(["", "nonsense", _no(7)])
    ev = _run(_cfg(max_duration_minutes=1), backend, until=60.0)
    assert _looks(ev)[:3] == [
        (0.0, "start", AnswerKind.EMPTY),
        (30.0, "timer", AnswerKind.UNPARSEABLE),
        (60.0, "timer", AnswerKind.NOT_MET),
    ] or _looks(ev)[:2] == [
        (0.0, "start", AnswerKind.EMPTY),
        (30.0, "timer", AnswerKind.UNPARSEABLE),
    ]
    # The empty answer left no dangling turn; the unparseable one is kept.
    assert [len(r.history) for r in backend.requests[:2]] == [0, 0]
    none = _run(_cfg(max_duration_minutes=1), ScriptedBackend([]), frames=StaticFrames(None))
    assert [t for t, *_ in _looks(none)] == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    assert all(k == AnswerKind.NO_FRAME for *_, k in _looks(none))


def test_timeout_fails_with_message() -> None:
    ev = _run(_cfg(max_duration_minutes=2), ScriptedBackend([], default=_no(300)))
    final = ev[-1][1]
    assert ev[-1][0] == 120.0
    assert final.status == WatchStatus.FAILED and final.error_message == "timed out after 2 minutes"


def test_cancel_ends_watch() -> None:
    ev = _run(_cfg(), ScriptedBackend([], default=_no(60)), cancel_at=90.0)
    assert ev[-1][0] == 90.0 and ev[-1][1].status == WatchStatus.CANCELLED
    assert [t for t, *_ in _looks(ev)] == [0.0, 60.0]


def _det(t: float, label: str = "person", box: Box | None = None, oid: str = "1") -> Detection:
    return Detection(camera="porch", label=label, score=0.9, box=box or Box(10, 10, 50, 90),
                     time=t, frame_size=(100, 100), object_id=oid)  # fmt: skip


def test_wake_without_zones_waits_for_cooldown() -> None:
    dets = [(t, _det(t)) for t in (100.0, 101.0, 105.0)] + [(200.0, _det(200.0, "cat"))]
    backend = ScriptedBackend([], default=_no(300))
    ev = _run(_cfg(labels=["person"]), backend, detections=dets, until=400.0)
    # Behaviour A: the wait began at 0 (the first answer), so the match at 100 s is past
    # its 10 s mark and wakes at once; that look's answer starts a wait whose mark is
    # 110 s, so the matches at 101 and 105 s wake the watch at 110 s. The cat is filtered
    # out. (Before behaviour A was exact, the cooldown began at the first match: one
    # wake at 110 s.)
    assert _looks(ev) == [
        (0.0, "start", AnswerKind.NOT_MET),
        (100.0, "wake", AnswerKind.NOT_MET),
        (110.0, "wake", AnswerKind.NOT_MET),
    ]
    assert [d.time for d in backend.requests[1].detections] == [100.0]
    assert [d.time for d in backend.requests[2].detections] == [100.0, 101.0, 105.0]


def test_wake_with_zones_is_immediate_and_respects_inertia() -> None:
    zones = {"door": ZoneRule(points=[(0, 0.5), (1, 0.5), (1, 1), (0, 1)], inertia=2)}
    outside = Box(10, 10, 50, 40)
    dets = [
        (50.0, _det(50.0, box=outside)),
        (100.0, _det(100.0)),
        (101.0, _det(101.0)),  # second frame inside: counts
        (150.0, _det(150.0, oid="2")),  # a new object: one frame only
    ]
    ev = _run(_cfg(zones=["door"]), ScriptedBackend([], default=_no(300)), detections=dets,
              zones=zones, until=400.0)  # fmt: skip
    assert [(t, trig) for t, trig, _ in _looks(ev)] == [
        (0.0, "start"),
        (101.0, "wake"),
    ]


def test_unknown_zone_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown zone"):
        run_watch(_cfg(zones=["gate"]), frames=StaticFrames(None), backend=ScriptedBackend([]))


def test_repeat_mode_quiet_period_and_agreement() -> None:
    answers = [YES, _no(5), YES, YES, YES, YES]
    backend = ScriptedBackend(answers, default=_no(300))
    cfg = _cfg(
        mode="repeat", quiet_period_s=100, agree_looks=2, agree_window=3, max_duration_minutes=0
    )
    dets = [(150.0, _det(150.0))]
    ev = _run(cfg, backend, detections=dets, until=500.0)
    looks = [t for t, *_ in _looks(ev)]
    alerts = [t for t, e in ev if isinstance(e, Alert)]
    # looks: 0 yes, 5 no, 10 yes (2 of 3 agree: alert, quiet 100 s), wake at 150 ignored,
    # 110 yes (1 of 3), 115 yes -> alert, quiet until 215, 215 yes, ...
    assert looks[:6] == [0.0, 5.0, 10.0, 110.0, 115.0, 215.0]
    assert alerts[:2] == [10.0, 115.0]
    states = [e for _, e in ev if isinstance(e, WatchState)]
    assert not any(s.status.ended for s in states)
    assert states[-1].alerts == len(alerts)


def test_budget_refills_and_never_blinds_the_watch_for_an_hour() -> None:
    # 3 looks an hour in bursts of 2: looks at 0 and 1, then one look per 1200 s (the
    # hourly cap it replaces made 3 looks and then nothing until 3600 s). Wakes over
    # budget are dropped; the state says when the budget ran dry and how many looks waited.
    cfg = _cfg(max_looks_per_hour=3, look_burst=2, max_duration_minutes=0)
    dets = [(t, _det(t)) for t in (30.0, 60.0, 90.0)]
    ev = _run(cfg, ScriptedBackend([], default=_no(1)), detections=dets, until=3700.0)
    looks = [t for t, *_ in _looks(ev)]
    assert [round(t) for t in looks] == [0, 1, 1200, 2400, 3600]  # the refill counts from 0
    assert all(b - a <= 1200.0 for a, b in itertools.pairwise(looks))
    states = [e for _, e in ev if isinstance(e, WatchState) and e.iterations]
    assert states[0].budget_tokens == 1.0 and states[0].budget_per_hour == 3
    assert states[0].budget_exhausted_at is None
    assert states[1].budget_exhausted_at == 1.0 and states[1].budget_tokens < 0.01
    assert states[-1].looks_deferred >= 3
    assert max(s.looks_last_hour for s in states) == 4


def test_runs_on_real_threads_with_default_schedulers() -> None:
    import threading

    done = threading.Event()
    events: list[Any] = []
    backend = ScriptedBackend(['{"condition_met": false, "next_run_in": 1}', YES])
    sub = run_watch(_cfg(), frames=StaticFrames(rgb_frame()), backend=backend).subscribe(
        events.append, on_completed=done.set
    )
    try:
        assert done.wait(10.0)
    finally:
        sub.dispose()
    assert events[-1].status == WatchStatus.SUCCESS
    assert sum(isinstance(e, Alert) for e in events) == 1


def test_first_look_waits_longer_for_a_first_frame() -> None:
    frames = StaticFrames(None)
    ev = _run(_cfg(), ScriptedBackend([]), frames=frames, until=25.0)
    # No frame: "start" at 0, then the 10 s no-frame retries. The camera has never given
    # a frame, so each waits as long as the first (it may still be connecting; before
    # issue 12's point 12 only the first look did: 10, 2, 2).
    assert _looks(ev) == [
        (0.0, "start", AnswerKind.NO_FRAME),
        (10.0, "timer", AnswerKind.NO_FRAME),
        (20.0, "timer", AnswerKind.NO_FRAME),
    ]
    assert frames.timeouts == [10.0, 10.0, 10.0]
    custom = StaticFrames(rgb_frame())
    s = TestScheduler()
    run_watch(_cfg(), frames=custom, backend=ScriptedBackend([]), scheduler=s, look_scheduler=s,
              first_frame_timeout_s=30.0).subscribe(lambda _: None)  # fmt: skip
    s.advance_to(1.0)
    assert custom.timeouts == [30.0]
    with pytest.raises(ValueError, match="first_frame_timeout_s"):
        run_watch(_cfg(), frames=custom, backend=ScriptedBackend([]), first_frame_timeout_s=-1)
