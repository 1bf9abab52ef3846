"""Motion detections on a video file, in your own Rx stream, then a zone filter.

Run: ``.venv/bin/python examples/motion_on_a_clip.py [CLIP]`` (default:
``demo/walkway.mp4``, people walking along a path).

Frames are decoded with PyAV and pushed into a subject while a virtual-time
scheduler follows each frame's presentation time, so ``detect_motion`` keeps
its rate limit (5 analysed frames per second of video) and the run takes a
fraction of the clip's length. Motion boxes then go through ``in_zones``: the
lower half of the picture, one detection inside is enough.
"""

from __future__ import annotations

import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import av
from reactivex import operators as ops
from reactivex.scheduler import HistoricalScheduler
from reactivex.subject import Subject

from operators.zones import ZoneRule, in_zones
from pipeline.core.config import MotionDetectConfig
from pipeline.core.detection import Detection
from pipeline.core.frame import Frame
from sources.motion import detect_motion

CLIP = Path(__file__).resolve().parents[1] / "demo" / "walkway.mp4"
SECONDS = 15.0  # of video; enough to see people come and go
ZONES = {"lower_half": ZoneRule(points=[(0, 0.5), (1, 0.5), (1, 1), (0, 1)], inertia=1)}


def main() -> None:
    clip = Path(sys.argv[1]) if len(sys.argv) > 1 else CLIP
    scheduler = HistoricalScheduler(datetime.fromtimestamp(0, UTC))
    frames: Subject[Frame] = Subject()
    per_second: Counter[int] = Counter()
    in_zone: list[Detection] = []

    def seen(d: Detection) -> None:
        per_second[int(d.time)] += 1
        if per_second[int(d.time)] == 1:  # the first box of each second
            b = d.box
            print(f"t={d.time:5.1f}s motion box ({b.x1:.0f},{b.y1:.0f})-({b.x2:.0f},{b.y2:.0f}) "
                  f"area={b.area:.0f} px")  # fmt: skip

    # share(): one detector (one reference frame) for both subscribers below.
    motion = frames.pipe(detect_motion(MotionDetectConfig(fps=5), scheduler=scheduler), ops.share())
    motion.subscribe(seen)
    motion.pipe(in_zones(ZONES, ["lower_half"])).subscribe(in_zone.append)

    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        for seq, vf in enumerate(container.decode(stream)):
            t = float(vf.time or 0.0)
            if t > SECONDS:
                break
            scheduler.advance_to(datetime.fromtimestamp(t, UTC))
            # wall_time = stream time here, so detection times are seconds into the clip.
            frames.on_next(Frame(camera="walkway", seq=seq, wall_time=t, stream_time=t,
                                 width=vf.width, height=vf.height, video=vf))  # fmt: skip
    frames.on_completed()
    total = sum(per_second.values())
    print(f"{total} motion detections ({len(per_second)} seconds with motion); "
          f"{len(in_zone)} in zone lower_half")  # fmt: skip


if __name__ == "__main__":
    main()
