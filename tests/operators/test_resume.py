"""A watch run taken over by another process (operators.resume) on virtual time."""

from typing import Any

from reactivex.testing import TestScheduler

from operators.resume import Resume
from operators.token_bucket import TokenBucket
from operators.watch import run_watch
from operators.watch_spec import WatchSpec
from pipeline.core.events import Alert, LookRecord, WatchState, WatchStatus
from tests.support.fakes import ScriptedBackend, StaticFrames, rgb_frame

NO = '{"condition_met": false, "next_run_in": 20, "reasoning": "Nothing."}'
YES = '{"condition_met": true, "next_run_in": 5, "reasoning": "A van."}'


def _run(spec: WatchSpec, answers: list[str], resume: Resume | None, start: float,
         until: float) -> list[tuple[float, Any]]:  # fmt: skip
    s = TestScheduler()
    s.advance_to(start)
    events = run_watch(spec, frames=StaticFrames(rgb_frame()), backend=ScriptedBackend(answers),
                       scheduler=s, look_scheduler=s, job_id="fresh", resume=resume)  # fmt: skip
    out: list[tuple[float, Any]] = []
    sub = events.subscribe(lambda e: out.append((s.clock, e)))
    s.advance_to(until)
    sub.dispose()
    return out


def _spec(**kw: Any) -> WatchSpec:
    return WatchSpec(name="gate", camera="c", condition="a van at the gate", **kw)


def test_resumed_run_keeps_job_id_counters_and_start_and_shows_the_restart() -> None:
    carried = Resume(job_id="job1", started_at=100.0, iterations=7, alerts=2, restarts=1)
    ev = _run(_spec(mode="repeat"), [NO], carried, start=500.0, until=501.0)
    states = [e for _, e in ev if isinstance(e, WatchState)]
    assert [s.status for s in states[:2]] == [WatchStatus.QUEUED, WatchStatus.RUNNING]
    assert all(s.id == "job1" and s.restarts == 1 for s in states)
    assert states[1].started_at == 100.0  # not the time it was taken over
    assert states[-1].iterations == 8 and states[-1].alerts == 2
    (look,) = [e for _, e in ev if isinstance(e, LookRecord)]
    assert look.job_id == "job1"


def test_fresh_run_is_unchanged() -> None:
    ev = _run(_spec(), [NO], None, start=50.0, until=51.0)
    states = [e for _, e in ev if isinstance(e, WatchState)]
    assert states[0].id == "fresh" and states[-1].restarts == 0 and states[1].started_at == 50.0


def test_quiet_period_is_kept_no_look_and_no_alert_before_it_ends() -> None:
    # The old run alerted; its quiet period lasts until t=400. Taken over at 300.
    carried = Resume(job_id="job1", started_at=0.0, iterations=3, alerts=1, quiet_until=400.0)
    ev = _run(_spec(mode="repeat", quiet_period_s=200), [YES, NO], carried, start=300.0,
              until=401.0)  # fmt: skip
    looks = [t for t, e in ev if isinstance(e, LookRecord)]
    assert looks == [400.0]  # the first look comes when the quiet period ends
    (alert,) = [e for _, e in ev if isinstance(e, Alert)]
    assert alert.job_id == "job1" and alert.look_count == 4
    assert [e for _, e in ev if isinstance(e, WatchState)][-1].alerts == 2


def test_without_the_quiet_period_the_take_over_looks_at_once() -> None:
    carried = Resume(job_id="job1", started_at=0.0, quiet_until=250.0)
    ev = _run(_spec(mode="repeat"), [NO], carried, start=300.0, until=301.0)
    assert [t for t, e in ev if isinstance(e, LookRecord)] == [300.0]


def test_look_budget_is_carried_no_fresh_burst() -> None:
    # 360 looks an hour: one every 10 s once the burst is spent. Spent at t=90.
    carried = Resume(job_id="job1", started_at=0.0, budget_tokens=0.0, budget_exhausted_at=90.0,
                     looks_deferred=4, at=90.0)  # fmt: skip
    ev = _run(_spec(max_looks_per_hour=360, look_burst=5), [NO] * 5, carried, start=95.0,
              until=95.0 + 30)  # fmt: skip
    looks = [t for t, e in ev if isinstance(e, LookRecord)]
    assert looks[0] == 100.0  # waited for the refill, not a fresh burst of 5
    last = [e for _, e in ev if isinstance(e, WatchState)][-1]
    assert last.looks_deferred >= 5


def test_time_limit_counts_from_the_first_start() -> None:
    carried = Resume(job_id="job1", started_at=0.0)
    ev = _run(_spec(max_duration_minutes=1), [NO] * 5, carried, start=50.0, until=200.0)
    final = [e for _, e in ev if isinstance(e, WatchState)][-1]
    assert final.status == WatchStatus.FAILED and final.ended_at == 60.0


def test_token_bucket_restore_clamps_to_the_burst() -> None:
    b = TokenBucket(per_hour=3600, burst=2)
    b.restore(50.0, at=0.0)
    b.record(0.0)
    b.record(0.0)
    assert b.wait(0.0) > 0
