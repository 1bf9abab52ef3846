"""Per-item cost of the watch chain, zone tests, and frame-to-JPEG, against references.

Run: ``.venv/bin/python -m benchmarks.operators [--quick]``

Measured in one run:

- ``chain_us``: microseconds per detection through the watch chain
  (``filter_labels`` -> ``in_zones`` -> ``wake_signals`` (the baseline policy
  with zones) -> ``adaptive_sampler``)
  against ``bare_us``, the same number of plain ``ops.map`` stages (target: the
  ratio stays at or under 3).
- ``zone_frame_us``: one frame of 20 objects against 10 zones (200 zone
  tests with inertia bookkeeping, ``ZoneTracker.update_batch``; target under
  50 us), ``zone_test_us`` per test, and ``zone_exact_frame_us``, the plain
  exact polygon test of every object against every zone (geometry only).
- ``jpeg_ms``: CPU milliseconds from a decoded 1080p frame to 854x480 JPEG bytes
  with ``encode_jpeg`` against ``to_image()`` + Pillow resize + save
  (``pil_ms``); target ratio at least 8.

CPU time (thread time; process time for JPEG, where swscale may use threads),
the two sides of each comparison measured alternately, medians of several
rounds; each ratio is the median of the per-round ratios. The last line
printed is one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import reactivex
from PIL import Image
from reactivex import operators as ops
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

from operators.cooldown import baseline_policy
from operators.encode import encode_jpeg
from operators.labels import filter_labels
from operators.sampler import adaptive_sampler
from operators.wakes import wake_signals
from operators.zones import Zone, ZoneRule, ZoneTracker, in_zones
from pipeline.core.detection import Box, Detection
from pipeline.core.frame import Frame

FOOTAGE = Path(__file__).resolve().parents[1] / "tests" / "footage" / "vtest.mp4"


def _median(fn: Callable[[], float], repeats: int) -> float:
    return statistics.median(fn() for _ in range(repeats))


def _detections(n: int) -> list[Detection]:
    return [
        Detection(
            camera="c",
            label="person",
            score=0.9,
            box=Box(40, 40 + i % 10, 60, 90),
            time=i * 0.1,
            frame_size=(100, 100),
            object_id=str(i % 5),
        )
        for i in range(n)
    ]


def _interleaved(
    a: Callable[[], float], b: Callable[[], float], repeats: int
) -> tuple[float, float, float]:
    """Run ``a`` and ``b`` alternately; return their medians and the median of a/b per round.

    The machine is shared and noisy: a ratio taken within one round (the two
    measured back to back) is steadier than the ratio of two separate medians.
    """
    ra, rb, ratios = [], [], []
    for _ in range(repeats):
        x, y = a(), b()
        ra.append(x)
        rb.append(y)
        ratios.append(x / y)
    return statistics.median(ra), statistics.median(rb), statistics.median(ratios)


def bench_chain(n: int, repeats: int) -> tuple[float, float, float]:
    dets = _detections(n)
    zones = {"yard": ZoneRule(points=[(0.2, 0.2), (0.8, 0.2), (0.8, 0.95), (0.2, 0.95)])}

    def run(build: Callable[[Subject[Detection]], object]) -> float:
        subject: Subject[Detection] = Subject()
        obs = build(subject)
        sub = obs.subscribe(lambda _: None)  # type: ignore[attr-defined]
        t0 = time.thread_time()
        for d in dets:
            subject.on_next(d)
        dt = time.thread_time() - t0
        sub.dispose()
        return dt / n * 1e6

    def watch_chain(subject: Subject[Detection]) -> object:
        s = TestScheduler()  # virtual time that never advances: looks never finish
        return subject.pipe(
            filter_labels(["person"]),
            in_zones(zones, ["yard"]),
            wake_signals(baseline_policy(10.0, zones=True), waits=reactivex.never(), scheduler=s),
            adaptive_sampler(lambda t, _due: t, lambda _: 30.0, scheduler=s, look_scheduler=s),
        )

    def bare_chain(subject: Subject[Detection]) -> object:
        return subject.pipe(ops.map(lambda d: d), ops.map(lambda d: d),
                            ops.map(lambda d: d), ops.map(lambda d: d))  # fmt: skip

    return _interleaved(lambda: run(watch_chain), lambda: run(bare_chain), repeats)


def _zone_frames() -> tuple[dict[str, ZoneRule], list[list[Detection]]]:
    square = [(0.1, 0.1), (0.9, 0.1), (0.9, 0.9), (0.1, 0.9)]
    zones = {
        f"z{i}": ZoneRule(points=[(x * (0.5 + i / 40), y) for x, y in square] + [(0.05, 0.5)])
        for i in range(10)
    }
    rng = np.random.default_rng(0)
    frames = []
    for f in range(50):
        objs = []
        for o in range(20):
            # Every object jumps to a random place each frame: the worst case for
            # the counters (objects keep entering and leaving zones).
            x, y = (float(v) for v in rng.uniform(0, 90, 2))
            objs.append(Detection(camera="c", label="person", score=0.9,
                                  box=Box(x, y, x + 10, y + 10), time=f * 0.2,
                                  frame_size=(100, 100), object_id=str(o)))  # fmt: skip
        frames.append(objs)
    return zones, frames


def bench_zones(repeats: int) -> tuple[float, float]:
    """Return (CPU us per frame of 20 objects x 10 zones, same with the exact polygon test)."""
    zones, frames = _zone_frames()
    tracker = ZoneTracker(zones)  # builds (and caches) the zone grids
    exact = [Zone(name, cfg) for name, cfg in zones.items()]

    def run() -> float:
        t0 = time.thread_time()
        for objs in frames:
            tracker.update_batch(objs)
        return (time.thread_time() - t0) / len(frames) * 1e6

    def run_exact() -> float:  # geometry only: the plain per-zone polygon test
        t0 = time.thread_time()
        for objs in frames:
            for d in objs:
                for z in exact:
                    z.contains(d.box, d.frame_size)
        return (time.thread_time() - t0) / len(frames) * 1e6

    ours, ref, _ = _interleaved(run, run_exact, repeats)
    return ours, ref


def _frame_1080p() -> Frame:
    if FOOTAGE.exists():
        with av.open(str(FOOTAGE)) as c:
            decoded = next(f for i, f in enumerate(c.decode(video=0)) if i == 50)
        vf = decoded.reformat(1920, 1080, format="yuv420p", interpolation="BICUBIC")
    else:
        ys, xs = np.mgrid[0:1080, 0:1920]
        rgb = np.stack([(xs // 8) % 256, (ys // 8) % 256, (xs + ys) % 256], -1).astype(np.uint8)
        vf = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    return Frame(camera="c", seq=0, wall_time=0.0, stream_time=None, width=1920, height=1080,
                 video=vf)  # fmt: skip


def bench_jpeg(repeats: int) -> tuple[float, float, float]:
    """Return (our CPU ms, the to_image path's CPU ms, median per-round ratio)."""
    frame = _frame_1080p()
    vf = frame.video

    def cpu_ms(fn: Callable[[], object]) -> float:
        t0 = time.process_time()  # swscale may use threads of its own
        fn()
        return (time.process_time() - t0) * 1e3

    def pil_path() -> bytes:
        im = vf.to_image().resize((854, 480), Image.Resampling.BOX)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=85)
        return buf.getvalue()

    encode_jpeg(frame)  # warm the scaler
    pil, ours, ratio = _interleaved(
        lambda: cpu_ms(pil_path), lambda: cpu_ms(lambda: encode_jpeg(frame)), repeats
    )
    return ours, pil, ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer items and repeats")
    args = parser.parse_args()
    n, repeats = (2_000, 5) if args.quick else (20_000, 9)
    chain, bare, chain_ratio = bench_chain(n, repeats)
    print(
        f"watch chain  {chain:8.2f} us/detection   bare 4x map {bare:8.2f} us   "
        f"ratio {chain_ratio:.2f} (target <= 3)"
    )
    zone_frame, zone_exact = bench_zones(repeats)
    print(
        f"zones 10x20  {zone_frame:8.1f} us/frame (target < 50)   plain polygon tests "
        f"{zone_exact:.1f} us/frame   {zone_exact / zone_frame:.1f}x"
    )
    ours, pil, pil_ratio = bench_jpeg(max(repeats, 15))
    print(
        f"1080p->JPEG  {ours:8.2f} ms CPU (swscale)  to_image+Pillow {pil:.2f} ms   "
        f"{pil_ratio:.1f}x cheaper (target >= 8)"
    )
    print(json.dumps({
        "chain_us": round(chain, 3), "bare_us": round(bare, 3),
        "chain_ratio": round(chain_ratio, 2),
        "zone_frame_us": round(zone_frame, 1), "zone_test_us": round(zone_frame / 200, 3),
        "zone_exact_frame_us": round(zone_exact, 1),
        "jpeg_ms": round(ours, 2), "pil_ms": round(pil, 2), "jpeg_speedup": round(pil_ratio, 1),
        "quick": args.quick,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
