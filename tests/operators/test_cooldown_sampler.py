import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex.testing import ReactiveTest, TestScheduler

from operators.backends.base import Availability, LookRequest
from operators.budget import LookBudget
from operators.history import History
from operators.sampler import adaptive_sampler
from operators.watch import run_watch
from operators.watch_spec import WatchSpec
from pipeline.core.detection import Box, Detection
from pipeline.core.events import LookRecord
from pipeline.core.verdict import AnswerKind, Verdict
from tests.support.fakes import StaticFrames, rgb_frame

on_next = ReactiveTest.on_next


def _collect(s: TestScheduler, obs: Any, until: float) -> list[tuple[float, Any]]:
    out: list[tuple[float, Any]] = []
    sub = obs.subscribe(lambda x: out.append((s.clock, x)))
    s.advance_to(until)
    sub.dispose()
    return out


class RawBackend:
    """Answers each look with a verdict built directly: ``next_run_in`` exactly as given.

    ``Verdict.answered`` clamps; this does not, so only the watch's own
    clamping stands between a model's wild ``next_run_in`` and the timer.
    """

    name = "raw"
    type = "raw"
    needs_gpu = False
    ram_mb = 0
    takes_images = True

    def __init__(self, delays: list[float | None]) -> None:
        self.delays = list(delays)

    def availability(self) -> Availability:
        return Availability(True)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def judge(self, request: LookRequest) -> Verdict:
        n = self.delays.pop(0) if self.delays else 30.0
        if n is None:
            return Verdict.failed(AnswerKind.EMPTY, "empty answer")
        return Verdict(kind=AnswerKind.NOT_MET, condition_met=False, next_run_in=n)

    def describe(self, jpeg: bytes, prompt: str) -> str:
        return ""


raw_next_run_in = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from([0.0, -1.0, 0.5, 300.5, 1e9, float("inf"), float("-inf")]),
    st.none(),
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(raw_next_run_in, min_size=1, max_size=12),
    st.lists(st.floats(0, 1000, allow_nan=False), max_size=20),
)
def test_next_look_always_within_bounds(delays: list[float | None], wakes: list[float]) -> None:
    """Whatever ``next_run_in`` a model gives, the next look is 1 to 300 s after the last.

    Driven through ``run_watch`` (its ``next_delay`` clamps with
    ``clamp_next_run``), with detections that wake the watch early.
    """
    s = TestScheduler()
    until = 1000.0
    person = Detection(camera="porch", label="person", score=0.9, box=Box(0, 0, 10, 10), time=0)
    detections = s.create_hot_observable([on_next(t, person) for t in sorted(wakes)])
    watch = WatchSpec(name="w", camera="porch", condition="someone", labels=["person"],
                        max_duration_minutes=0)  # fmt: skip
    events = run_watch(watch, frames=StaticFrames(rgb_frame()), backend=RawBackend(delays),
                       detections=detections, scheduler=s, look_scheduler=s)  # fmt: skip
    looks = [(t, e) for t, e in _collect(s, events, until) if isinstance(e, LookRecord)]
    expected = [30.0 if n is None else n for n in delays]
    seen = [e.verdict.next_run_in for _, e in looks[: len(delays)]]
    assert seen == expected[: len(seen)]  # the verdicts reach the watch unclamped
    times = [t for t, _ in looks]
    assert times[0] == 0.0
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(1.0 - 1e-9 <= g <= 300.0 + 1e-9 for g in gaps), gaps
    assert times[-1] >= until - 300.0  # and it kept looking


class SlowLooks:
    """A look scheduler on virtual time where every look takes 5 s."""

    def __init__(self, s: TestScheduler) -> None:
        self.s = s

    def schedule(self, action: Any, state: Any = None) -> Any:
        return self.s.schedule_relative(5.0, action, state)


def test_sampler_drops_wakes_while_a_look_is_in_flight() -> None:
    s = TestScheduler()
    ws = s.create_hot_observable([on_next(50.0, 1), on_next(52.0, 2), on_next(120.0, 3)])
    op = adaptive_sampler(
        lambda trig, _due: trig, lambda _: 100.0, scheduler=s, look_scheduler=SlowLooks(s)
    )  # type: ignore[arg-type]
    # Looks end 5 s after they start: at 5 (timer), 55 (wake at 50; the one at 52 is
    # dropped), 125 (wake at 120 cut the wait short), then every 100 + 5 s.
    assert _collect(s, ws.pipe(op), 400.0) == [
        (5.0, "start"), (55.0, "wake"), (125.0, "wake"), (230.0, "timer"), (335.0, "timer")
    ]  # fmt: skip


def test_budget_and_history() -> None:
    b = LookBudget(2, window_s=100)
    b.record(0)
    b.record(10)
    assert b.wait(50) == 50 and b.used(50) == 2 and b.wait(100) == 0
    assert LookBudget(None).wait(0) == 0
    h = History(max_turns=3, images=1)
    h.record("u1", b"j", Verdict.failed(AnswerKind.EMPTY, "", raw_answer=""))
    h.record("u2", b"j", Verdict.answered(False, 5, raw_answer="{}"))
    h.record("u3", b"j", Verdict.failed(AnswerKind.NO_FRAME, ""))
    h.record("u4", b"j", Verdict.failed(AnswerKind.UNPARSEABLE, "", raw_answer="??"))
    assert [(t.user_text, t.jpeg) for t in h.turns()] == [("u2", None), ("u4", b"j")]
    assert History(max_turns=0).turns() == ()
