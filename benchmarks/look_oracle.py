"""The fewest looks any wake policy could make on a labelled clip, with no miss: the floor.

The oracle knows the labels. It looks at the clip's first frame (where every
watch looks first) and at the first frame of each event (so every alert comes
at once: time to alert 0), and in between makes only the looks that the
scripted model's answers force (:mod:`benchmarks.labelled_model`): each answer's
``next_run_in`` is the longest a watch may wait before its next look (a wake
may only shorten it), and after an alert a ``repeat`` watch looks again exactly
when its quiet period ends (wakes are dropped meanwhile). Where it has a
choice, it picks the fewest looks (the "jump game": from a look at ``t`` the
next may be anywhere in ``(t, t + next_run_in]``), so it steps around
``forming`` and ``relevant`` spans (2 s and 5 s answers) whenever the 60 s
of an empty answer reach past them.

So a policy can only beat it by alerting later than at an event's first frame
(or by missing an event), and the ratio ``polling / oracle`` is the most any
policy could save against polling on that clip under the same rule.

Example:
    >>> from benchmarks.labelled_model import parse_labels
    >>> labels = parse_labels("start,end,kind\\n7,17,event\\n")
    >>> floor = oracle_looks(labels, duration_s=30, fps=10, quiet_s=20)
    >>> floor.looks, floor.times
    (3, [0.0, 7.0, 27.0])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.labelled_model import Answer, Label, answer_at, events


@dataclass(frozen=True, slots=True)
class Floor:
    """The oracle's looks on one clip.

    Attributes:
        looks: how many.
        times: their clip times (seconds), in order.
        alerts: clip times of the looks that alert.
        missed: events no policy could catch (they start and end inside the
            quiet period of an earlier event's alert); events that start after
            ``duration_s`` are not counted.
    """

    looks: int
    times: list[float]
    alerts: list[float]
    missed: int


class _Clip:
    """The answers on the clip's frame grid, and the reach of a look at each frame."""

    def __init__(self, labels: Sequence[Label], frames: int, fps: float) -> None:
        self.fps = fps
        self.frames = frames
        self.answers: list[Answer] = [answer_at(labels, round(k / fps, 6)) for k in range(frames)]

    def reach(self, k: int) -> int:
        """Last frame the next look may be at after a (not alerting) look at frame ``k``."""
        return k + round(self.answers[k].next_run_in * self.fps)

    def hops(self, start: int, target: int | None) -> list[int]:
        """Fewest looks after ``start`` that end at ``target`` (``None``: reach past the end).

        Breadth first over the frames (each hop lands anywhere up to the
        current look's reach), choosing in each layer the look that reaches
        furthest.
        """
        goal = self.frames if target is None else target
        path: list[int] = []
        k = start
        while self.reach(k) < goal:
            # Every answer asks for at least a second, so the furthest reach grows each hop.
            k = max(range(k + 1, self.reach(k) + 1), key=lambda j: (self.reach(j), -j))
            path.append(k)
        if target is not None:
            path.append(target)
        return path


def oracle_looks(
    labels: Sequence[Label], *, duration_s: float, fps: float, quiet_s: float,
    first_s: float = 0.0,
) -> Floor:  # fmt: skip
    """The fewest looks with every event alerted at its first frame (see the module).

    Args:
        labels: the clip's labels.
        duration_s: its length; a look due at or after the end is not made.
        fps: its frame rate (looks happen on frames).
        quiet_s: the ``repeat`` watch's quiet period after an alert (0: none).
        first_s: clip time of the first look (the first decoded frame).
    """
    clip = _Clip(labels, round(duration_s * fps), fps)
    quiet = round(quiet_s * fps)
    inside = [ev for ev in events(labels) if round(ev.start * fps) < clip.frames]
    starts = [round(ev.start * fps) for ev in inside]
    ends = [round(ev.end * fps) for ev in inside]
    k = round(first_s * fps)
    looks, alerts = [k], []
    while True:
        answer = clip.answers[k]
        if answer.condition_met:
            alerts.append(k)
            if quiet > 0:  # the next look is the quiet period's end, nothing sooner
                k += quiet
                if k >= clip.frames:
                    break
                looks.append(k)
                continue
        later = [s for s in starts if s > k]
        step = clip.hops(k, later[0] if later else None)
        looks.extend(step)
        if not later:
            break
        k = step[-1]
    caught = [any(s <= a < e for a in alerts) for s, e in zip(starts, ends, strict=True)]
    return Floor(
        looks=len(looks),
        times=[round(j / fps, 6) for j in looks],
        alerts=[round(j / fps, 6) for j in alerts],
        missed=caught.count(False),
    )
