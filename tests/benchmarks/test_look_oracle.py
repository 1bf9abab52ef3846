"""The benchmark's floor: the fewest looks with no miss, checked against an exhaustive search."""

from __future__ import annotations

import functools
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.labelled_model import Label, answer_at, events, parse_labels
from benchmarks.look_oracle import oracle_looks

QUIET = 6


def exhaustive(labels: list[Label], frames: int, quiet: int) -> float:
    """Fewest looks (1 fps), every event looked at on its first frame: every sequence tried."""
    answers = [answer_at(labels, float(k)) for k in range(frames)]
    starts = sorted(round(ev.start) for ev in events(labels))

    @functools.cache
    def best(k: int) -> float:
        later = [s for s in starts if s > k]
        if answers[k].condition_met and quiet > 0:
            nxt = k + quiet
            if later and later[0] < min(nxt, frames):
                return math.inf  # an event would start unseen inside the quiet period
            return 1 if nxt >= frames else 1 + best(nxt)
        reach = k + int(answers[k].next_run_in)
        if not later and reach >= frames:
            return 1
        last = min(reach, frames - 1, later[0] if later else frames)
        return 1 + min((best(j) for j in range(k + 1, last + 1)), default=math.inf)

    return best(0)


@st.composite
def clips(draw: st.DrawFn) -> tuple[list[Label], int]:
    """Labels on whole seconds: events at least twice the quiet period apart, other spans anywhere."""
    frames = draw(st.integers(20, 150))
    rows: list[Label] = []
    t = draw(st.integers(1, 40))
    while t + 2 < frames:
        length = draw(st.integers(1, QUIET))
        rows.append(Label(float(t), float(min(frames, t + length)), "event"))
        if draw(st.booleans()) and t >= 3:
            rows.append(Label(float(t - 2), float(t), "forming"))
        t += draw(st.integers(2 * QUIET + 1, 90))
    for _ in range(draw(st.integers(0, 3))):
        a = draw(st.integers(0, frames - 2))
        rows.append(Label(float(a), float(draw(st.integers(a + 1, frames))), "relevant"))
    return sorted(rows), frames


@settings(max_examples=150, deadline=None)
@given(clips())
def test_the_oracle_is_the_fewest_looks_of_any_sequence(clip: tuple[list[Label], int]) -> None:
    labels, frames = clip
    floor = oracle_looks(labels, duration_s=frames, fps=1, quiet_s=QUIET)
    assert floor.missed == 0
    assert floor.looks == exhaustive(labels, frames, QUIET)
    # Every event alerted on its first frame, and every gap within what the answers allow.
    assert [a for a in floor.alerts if any(ev.start == a for ev in events(labels))] == [
        ev.start for ev in events(labels)
    ]
    for a, b in zip(floor.times, floor.times[1:], strict=False):
        answer = answer_at(labels, a)
        limit = QUIET if answer.condition_met else answer.next_run_in
        assert 0 < b - a <= limit


def test_it_steps_around_forming_and_relevant_spans() -> None:
    labels = parse_labels("start,end,kind\n20,22,forming\n22,25,event\n95,110,relevant\n")
    floor = oracle_looks(labels, duration_s=120, fps=10, quiet_s=20)
    # First look, the event's first frame, the quiet period's end, then a look before the
    # relevant span (at 94.9 s: 60 s reach past the end), not in it.
    assert floor.times == [0.0, 22.0, 42.0, 94.9]
    assert floor.alerts == [22.0] and floor.missed == 0


def test_a_relevant_first_picture_costs_a_look() -> None:
    labels = parse_labels("start,end,kind\n0,0.7,relevant\n50,60,event\n")
    floor = oracle_looks(labels, duration_s=79.5, fps=10, quiet_s=20)
    assert floor.looks == 4 and floor.times[:2] == [0.0, 5.0] and floor.times[2] == 50.0


def test_an_event_inside_a_quiet_period_is_missed_by_anyone() -> None:
    labels = parse_labels("start,end,kind\n10,12,event\n15,20,event\n")
    floor = oracle_looks(labels, duration_s=60, fps=10, quiet_s=20)
    assert floor.alerts == [10.0] and floor.missed == 1


def test_events_after_the_end_are_left_out() -> None:
    labels = parse_labels("start,end,kind\n26,33,event\n85,91,event\n")
    floor = oracle_looks(labels, duration_s=60, fps=10, quiet_s=20)
    assert floor.times == [0.0, 26.0, 46.0] and floor.alerts == [26.0] and floor.missed == 0
