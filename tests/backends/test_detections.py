from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from operators.backends.base import LookRequest
from operators.backends.detections import MAX_RUNS, DetectionsBackend, render_message
from operators.backends.none import NoneBackend
from pipeline.core.config import DetectionsBackendConfig
from pipeline.core.detection import Box, Detection
from pipeline.core.verdict import AnswerKind


def det(
    label: str = "person", t: float = 100.0, score: float = 0.8, zones: tuple[str, ...] = ()
) -> Detection:
    return Detection(
        camera="porch", label=label, score=score, box=Box(0, 0, 10, 20), time=t, zones=zones
    )


def req(
    watch: str,
    t: float,
    *dets: Detection,
    labels: tuple[str, ...] = ("person",),
    job_id: str = "",
) -> LookRequest:
    return LookRequest(
        watch=watch,
        job_id=job_id,
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


def test_a_late_look_of_the_old_run_does_not_count_toward_the_restarted_run() -> None:
    b = DetectionsBackend("det", DetectionsBackendConfig(consecutive_looks=2, window_s=10.0))
    assert not b.judge(req("w", 100.0, det(t=100.0), job_id="old")).condition_met
    b.forget("w")  # the watch restarts as run "new"
    # The old run's look was still in flight; it lands after forget().
    b.judge(req("w", 101.0, det(t=101.0), job_id="old"))
    first = b.judge(req("w", 102.0, det(t=102.0), job_id="new"))
    assert not first.condition_met, first.reasoning  # keyed by watch only, this was a false alert
    assert b.judge(req("w", 103.0, det(t=103.0), job_id="new")).condition_met


def test_forget_drops_every_run_of_the_watch_and_only_that_watch() -> None:
    b = DetectionsBackend("det", DetectionsBackendConfig(consecutive_looks=2, window_s=10.0))
    for job in ("j1", "j2", ""):
        b.judge(req("w", 100.0, det(t=100.0), job_id=job))
    b.judge(req("x", 100.0, det(t=100.0), job_id="j1"))
    assert b.tracked_runs() == 4
    b.forget("w")
    assert b.tracked_runs() == 1
    for job in ("j1", "j2", ""):
        assert not b.judge(req("w", 101.0, det(t=101.0), job_id=job)).condition_met
    assert b.judge(req("x", 101.0, det(t=101.0), job_id="j1")).condition_met
    b.stop()
    assert b.tracked_runs() == 0


def test_broken_streaks_keep_no_entry() -> None:
    b = DetectionsBackend("det", DetectionsBackendConfig(consecutive_looks=2))
    b.judge(req("w", 100.0, det(t=100.0), job_id="j"))
    assert b.tracked_runs() == 1
    b.judge(req("w", 101.0, job_id="j"))  # nothing seen: streak back to zero
    assert b.tracked_runs() == 0


def test_many_run_time_watches_stay_bounded_and_forget_empties() -> None:
    b = DetectionsBackend("det", DetectionsBackendConfig(consecutive_looks=5), max_runs=16)
    for i in range(2000):
        b.judge(req(f"watch-{i}", 100.0, det(t=100.0), job_id=f"job-{i}"))
        assert b.tracked_runs() <= 16
    for i in range(1984, 2000):
        b.forget(f"watch-{i}")
    assert b.tracked_runs() == 0


def test_the_least_recently_counted_run_is_dropped_first() -> None:
    b = DetectionsBackend(
        "det", DetectionsBackendConfig(consecutive_looks=2, window_s=10.0), max_runs=2
    )
    b.judge(req("a", 100.0, det(t=100.0)))
    b.judge(req("b", 100.0, det(t=100.0)))
    assert b.judge(req("a", 101.0, det(t=101.0))).condition_met  # a used last
    b.judge(req("c", 101.0, det(t=101.0)))  # over the cap: b goes
    assert not b.judge(req("b", 102.0, det(t=102.0))).condition_met
    assert b.tracked_runs() == 2


def test_default_cap_and_bad_cap() -> None:
    assert DetectionsBackend("det").max_runs == MAX_RUNS
    with pytest.raises(ValueError, match="max_runs must be at least 1"):
        DetectionsBackend("det", max_runs=0)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["forget", "look", "miss"]),
            st.integers(0, 5),
            st.integers(0, 3),
        ),
        max_size=80,
    ),
    st.integers(1, 6),
)
def test_streaks_never_exceed_the_cap_and_forget_clears_a_watch(
    ops: list[tuple[str, int, int]], cap: int
) -> None:
    b = DetectionsBackend("det", DetectionsBackendConfig(consecutive_looks=3), max_runs=cap)
    for op, w, j in ops:
        if op == "forget":
            b.forget(f"w{w}")
            # every run of that watch starts again from one matching look
            for job in range(4):
                v = b.judge(req(f"w{w}", 100.0, det(t=100.0), job_id=f"j{job}"))
                assert "look 1 of 3" in v.reasoning
                b.judge(req(f"w{w}", 100.0, job_id=f"j{job}"))
        else:
            dets = (det(t=100.0),) if op == "look" else ()
            b.judge(req(f"w{w}", 100.0, *dets, job_id=f"j{j}"))
        assert b.tracked_runs() <= cap
