"""Wake a watch from detections in your own Rx stream: labels, zones, cooldown.

Run: ``.venv/bin/python examples/zones_and_cooldown.py``

A list of timed detections (a person walking up to the porch, a cat, a car)
is replayed on a virtual-time scheduler, so the 10 s cooldown runs instantly.
Two chains, as a watch builds them (the baseline's wake rules):

- with a zone: ``filter_labels -> in_zones(["porch"])``: every match wakes at
  once, so a person wakes the watch as soon as they have been on the porch
  for ``inertia`` (2) detections;
- without zones: ``filter_labels -> cooldown(10 s)``: a wait starts at 0 (and
  again at each wake, as if each wake's look answered at once); no wake comes
  before 10 s into a wait: matches before that mark wake it at the mark,
  a match after it wakes at once. Pass ``waits=`` (your looks' answers) to
  start the waits where your looks answer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from reactivex import abc
from reactivex import operators as ops
from reactivex.scheduler import HistoricalScheduler
from reactivex.subject import Subject

from operators.cooldown import cooldown
from operators.labels import filter_labels
from operators.zones import ZoneRule, in_zones
from pipeline.core.detection import Box, Detection

FRAME = (1280, 720)
ZONES = {
    # The lower right quarter of the picture; feet (the box's bottom centre) count.
    "porch": ZoneRule(points=[(0.5, 0.5), (1.0, 0.5), (1.0, 1.0), (0.5, 1.0)], inertia=2),
}


def timeline() -> list[Detection]:
    """A person walks from the street (left) onto the porch (right); a cat; a car."""
    out = []
    for i in range(8):  # one detection a second, feet moving right and down
        x, y = 200 + i * 130, 300 + i * 50
        out.append(Detection(camera="porch", label="person", score=0.9,
                             box=Box(x, y - 200, x + 80, y), time=float(i),
                             frame_size=FRAME, object_id="p1"))  # fmt: skip
    out.append(Detection(camera="porch", label="cat", score=0.8, box=Box(900, 600, 960, 650),
                         time=3.5, frame_size=FRAME, object_id="c1"))  # fmt: skip
    out.append(Detection(camera="porch", label="car", score=0.95, box=Box(0, 100, 300, 250),
                         time=12.0, frame_size=FRAME, object_id="v1"))  # fmt: skip
    out.append(Detection(camera="porch", label="person", score=0.9,
                         box=Box(100, 200, 160, 360), time=15.0, frame_size=FRAME,
                         object_id="p2"))  # fmt: skip
    return sorted(out, key=lambda d: d.time)


def main() -> None:
    scheduler = HistoricalScheduler(datetime.fromtimestamp(0, UTC))
    detections: Subject[Detection] = Subject()
    start = scheduler.now

    def seconds() -> float:
        return (scheduler.now - start).total_seconds()

    def show(chain: str) -> Callable[[Detection], None]:
        def _print(d: Detection) -> None:
            zones = ",".join(d.zones) or "-"
            print(f"t={seconds():5.1f}s  {chain:<11} wake: {d.label} seen at {d.time:g}s "
                  f"zones={zones}")  # fmt: skip

        return _print

    detections.pipe(
        filter_labels(["person"]),
        in_zones(ZONES, ["porch"]),
        ops.take(1),  # a watch looks once per wake; one is enough here
    ).subscribe(show("with zone"))
    detections.pipe(
        filter_labels(["person"]),
        cooldown(10.0, scheduler=scheduler),
    ).subscribe(show("no zones"))

    def emit(_s: abc.SchedulerBase, d: Detection | None) -> None:
        if d is not None:
            detections.on_next(d)

    for d in timeline():
        scheduler.schedule_absolute(datetime.fromtimestamp(d.time, UTC), emit, d)
    scheduler.advance_to(datetime.fromtimestamp(60, UTC))
    detections.on_completed()
    print("done")


if __name__ == "__main__":
    main()
