"""The yard clip of the replay tests: its known visits, labels and config.

Example::

    clip = make_clip(path, seconds=20.0, fps=10, gop=10, shapes=yard_shapes)
    text = yard_config(clip.path, DETECTIONS_BACKEND, watch_toml("lawn", "det"))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tests.support.clips import Box, linear_path

VISITS = ((4.0, 8.0), (13.0, 16.0))
"""Clip times when a shape crosses the lawn (the lower half): the true intervals."""
OUTSIDE = (17.0, 19.0)
"""Clip times when a shape crosses the sky (the upper half, outside the zone)."""

_LAWN_LEFT: Box = (20, 150, 60, 200)
_LAWN_RIGHT: Box = (260, 150, 300, 200)
_SKY_LEFT: Box = (20, 20, 60, 70)
_SKY_RIGHT: Box = (260, 20, 300, 70)


def yard_shapes(t: float) -> Box | Sequence[Box] | None:
    """The boxes drawn at clip time ``t``: the yard clip's script."""
    (a0, a1), (b0, b1) = VISITS
    if a0 <= t < a1:
        return linear_path(a0, a1, _LAWN_LEFT, _LAWN_RIGHT)(t)
    if b0 <= t < b1:
        return linear_path(b0, b1, _LAWN_RIGHT, _LAWN_LEFT)(t)
    if OUTSIDE[0] <= t < OUTSIDE[1]:
        return linear_path(*OUTSIDE, _SKY_LEFT, _SKY_RIGHT)(t)
    return None


LABELS_CSV = """start,end,note
0:04,0:08,first visit
13,16,second visit
17,19,in the sky (outside the zone: the watch cannot see it)
"""


def yard_config(clip: Path, backends: str, watches: str) -> str:
    """The TOML of the yard camera (lawn zone, motion at 5 fps) with ``backends`` and ``watches``."""
    return f"""
[cameras.yard]
url = "{clip}"

[cameras.yard.zones.lawn]
points = [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]
inertia = 1

[cameras.yard.detect]
type = "motion"
fps = 5

{backends}

{watches}
"""


DETECTIONS_BACKEND = """
[backends.det]
type = "detections"
consecutive_looks = 2
window_s = 2
next_run_in_s = 5
"""


def watch_toml(
    name: str, backend: str, *, mode: str = "repeat", quiet: float = 6, wake: str = "detections"
) -> str:
    """One ``[[watches]]`` entry on the yard camera (woken as behaviour A unless ``wake``)."""
    return f"""
[[watches]]
name = "{name}"
camera = "yard"
condition = "someone crosses the lawn"
labels = ["motion"]
zones = ["lawn"]
backend = "{backend}"
mode = "{mode}"
quiet_period_s = {quiet}
max_duration_minutes = 0
wake = "{wake}"
"""
