"""Embed a whole watch in your own Rx stream, on a live camera: no pipeline.toml, no runner.

Run: ``.venv/bin/python examples/watch_a_live_camera.py [SECONDS]``

The demo clip is played as a live camera (looped, in real time). Its frames go
through a motion detector; the watch (``run_watch``) wakes on motion in the
lower half of the picture and asks a backend, your own here: a tiny class that
says the condition is met when at least three motion boxes were seen around
the look. Swap in ``OpenAIBackend`` to ask a real vision model. Everything the
watch emits (states, one record per look, alerts) is printed; the stream ends
after SECONDS (default 12).
"""

from __future__ import annotations

import sys
from pathlib import Path

import reactivex
from reactivex import operators as ops

from operators.backends.base import Availability, LookRequest
from operators.watch import WatchSpec, run_watch
from pipeline.core.config import CameraConfig, MotionDetectConfig
from pipeline.core.events import Alert, LookRecord, WatchEvent, WatchState
from pipeline.core.verdict import Verdict
from sources.camera_factory import make_camera
from sources.motion import detect_motion

CLIP = Path(__file__).resolve().parents[1] / "demo" / "walkway.mp4"
LOWER_HALF = [(0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)]


class BusyPathBackend:
    """A backend of your own: met when the look comes with at least three motion boxes."""

    name = "busy-path"
    type = "custom"
    needs_gpu = False
    ram_mb = 0
    takes_images = False

    def availability(self) -> Availability:
        """Always available: it needs nothing."""
        return Availability(True, "counts motion boxes")

    def start(self) -> None:
        """Nothing to load."""

    def stop(self) -> None:
        """Nothing to release."""

    def judge(self, request: LookRequest) -> Verdict:
        """Met when three or more matching boxes came with the look; look again in 3 s."""
        boxes = len(request.detections)
        met = boxes >= 3
        message = "The path is busy." if met else None
        return Verdict.answered(met, 3, f"{boxes} motion boxes on the path.", message)

    def describe(self, jpeg: bytes, prompt: str) -> str:
        """No captions from this one."""
        return ""


def show(event: WatchEvent) -> None:
    if isinstance(event, Alert):
        print(f"ALERT  {event.message}")
    elif isinstance(event, LookRecord):
        print(f"LOOK   {event.trigger:<5} {event.verdict.kind.value:<8} {event.verdict.reasoning}")
    elif isinstance(event, WatchState):
        print(f"STATE  {event.status}")


def main(seconds: float) -> None:
    camera = make_camera("walkway", CameraConfig(url=str(CLIP), loop=True, realtime=True))
    spec = WatchSpec(
        name="busy_path",
        camera="walkway",
        condition="three or more people are on the path",
        labels=("motion",),
        zones=("path",),
        mode="repeat",
        quiet_period_s=5.0,
    )
    detections = camera.frames().pipe(detect_motion(MotionDetectConfig(fps=5)), ops.share())
    events = run_watch(
        spec,
        frames=camera,
        backend=BusyPathBackend(),
        detections=detections,
        zones={"path": LOWER_HALF},
        cancel=reactivex.timer(seconds),
    )
    hold = camera.connect()
    try:
        events.pipe(ops.do_action(on_next=show), ops.to_list()).run()
    finally:
        hold.dispose()
        camera.close()
    print(f"done after {seconds:g} s")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 12.0)
