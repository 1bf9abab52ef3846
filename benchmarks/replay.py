"""Replay speed: clip seconds per real second, against raw PyAV decode of the same clip.

Run: ``.venv/bin/python -m benchmarks.replay [--quick]``

Generates the 1080p30 H.264 clip of :mod:`benchmarks.decode` (the walkway
footage upscaled, keyframe every 2 s, about 4 Mbit/s) and measures, in one
run, the wall time of:

- ``raw_decode``: ``for f in container.decode(video=0)`` over the whole clip
  (the reference: what any replay that decodes every frame would cost);
- ``replay``: ``replay_watch`` of a ``repeat`` watch with the ``detections``
  backend and no detector: one look per 5 s (decode on demand, 480 px JPEG,
  the backend), on virtual time;
- ``replay_motion``: the same watch woken by the motion detector at 5 fps,
  which must decode (nearly) every frame (for information).

Each figure is the median of several runs; the speed is clip seconds per wall
second ("x real time"). Target: ``replay`` >= 20x real time. The last line is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av

from benchmarks.decode import FPS, GOP, HEIGHT, WIDTH
from benchmarks.decode import make_clip as make_1080p_clip
from pipeline.app.replay.engine import replay_watch
from pipeline.core.config_loader import load_config_text

LOOK_EVERY_S = 5
TARGET_X = 20.0


def raw_decode(path: Path) -> int:
    """Decode every frame with PyAV's defaults; return the frame count."""
    n = 0
    with av.open(str(path)) as container:
        for _ in container.decode(video=0):
            n += 1
    return n


def config_text(path: Path, motion: bool) -> str:
    """One camera on the clip, a detections backend looking every 5 s, one repeat watch."""
    detect = '[cameras.cam.detect]\ntype = "motion"\nfps = 5\n' if motion else ""
    return f"""
[cameras.cam]
url = "{path}"
[cameras.cam.zones.lower]
points = [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]
{detect}
[backends.det]
type = "detections"
next_run_in_s = {LOOK_EVERY_S}

[[watches]]
name = "bench"
camera = "cam"
condition = "someone is on the path"
zones = ["lower"]
backend = "det"
mode = "repeat"
quiet_period_s = {LOOK_EVERY_S}
max_duration_minutes = 0
"""


def replay_run(path: Path, motion: bool) -> dict[str, float]:
    """One replay; return its looks and decoded frames."""
    cfg = load_config_text(config_text(path, motion))
    run = replay_watch(cfg, "bench", path)
    return {"looks": len(run.looks), "decoded": run.decoded, "clip_s": run.duration_s}


def measure(runs: dict[str, Callable[[], object]], reps: int) -> dict[str, tuple[float, object]]:
    """Median wall seconds of each run and its last result; runs interleave per rep."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    last: dict[str, object] = {}
    for _ in range(reps):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            last[name] = fn()
            samples[name].append(time.perf_counter() - t0)
    return {name: (statistics.median(samples[name]), last[name]) for name in runs}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table and the JSON line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 s clip, 2 runs (default 60 s, 3)")
    args = parser.parse_args(argv)
    seconds, reps = (20.0, 2) if args.quick else (60.0, 3)
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        t0 = time.monotonic()
        path, content = make_1080p_clip(Path(tmp) / "1080p30.mp4", seconds)
        print(
            f"clip: {content}, {seconds:g} s {WIDTH}x{HEIGHT}@{FPS} GOP {GOP} "
            f"(made in {time.monotonic() - t0:.1f} s)",
            file=sys.stderr,
        )
        runs: dict[str, Callable[[], object]] = {
            "raw_decode": lambda: raw_decode(path),
            "replay": lambda: replay_run(path, motion=False),
            "replay_motion": lambda: replay_run(path, motion=True),
        }
        results = measure(runs, reps)
    speed = {name: seconds / wall for name, (wall, _) in results.items()}
    ref = speed["raw_decode"]
    print(f"{'run':<14} {'wall s':>8} {'x real time':>12} {'vs raw decode':>14}  detail")
    for name, (wall, detail) in results.items():
        print(f"{name:<14} {wall:>8.3f} {speed[name]:>12.1f} {speed[name] / ref:>14.2f}  {detail}")
    replay_detail = results["replay"][1]
    print(
        json.dumps(
            {
                "benchmark": "replay",
                "quick": args.quick,
                "clip": {
                    "content": content,
                    "seconds": seconds,
                    "width": WIDTH,
                    "height": HEIGHT,
                    "fps": FPS,
                    "gop": GOP,
                },
                "runs": reps,
                "look_every_s": LOOK_EVERY_S,
                "wall_s_median": {k: round(w, 4) for k, (w, _) in results.items()},
                "x_real_time": {k: round(v, 2) for k, v in speed.items()},
                "ratio_to_raw_decode": {k: round(v / ref, 3) for k, v in speed.items()},
                "replay_detail": replay_detail,
                "target_x_real_time": TARGET_X,
                "meets_target": speed["replay"] >= TARGET_X,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
