"""Decode cost of a camera source per strategy, against raw PyAV full decode.

Run: ``.venv/bin/python -m benchmarks.decode [--quick]``

Generates 1080p30 H.264 clips (keyframe every 60 frames, about 4 Mbit/s) and
measures, in one run, CPU seconds (user + system, all threads) per minute of
video on each. Several clips, because the ``keyframes`` figure depends on how
much of the bitrate goes into keyframes:

- ``pattern`` (the headline figures, the generated clip the issue describes):
  FFmpeg's ``testsrc2`` test pattern (through PyAV's lavfi input): moving
  content, ordinary keyframes;
- ``footage``: the real walkway footage in ``tests/footage/vtest.mp4`` (all of
  ``vtest.avi`` in H.264) upscaled, with sensor-like noise: like a fixed
  camera, cheap P-frames and costly keyframes (about 225 KB each);
- ``synthetic``: a panning random block texture with a moving box (about 3.3
  Mbit/s): every keyframe is as costly as the whole texture.

Runs on each clip:

- ``raw_pyav``: ``for f in container.decode(video=0)`` (the reference);
- ``demux_only``: reading the packets without decoding;
- ``raw_keyframe_floor``: raw PyAV demuxing everything and decoding one keyframe
  per 5 s (the least any source can spend for one look per 5 s);
- ``every_frame``: ``CameraSource`` decoding every frame;
- ``on_demand``: ``CameraSource`` with one look per 5 s of video;
- ``keyframes``: ``CameraSource`` with one look per 5 s of video;
- ``wake_path``: what a watch's wake path decodes, no looks: the motion
  detector at 5 fps and the news wake policy measuring the same pictures
  (the shipped detector settings);
- ``wake_path_keyframes``: the same with ``keyframes = true`` in the
  detector (the recommended configuration for high-resolution cameras): one
  decode per GOP; target <= 0.25x of a full decode's frames;

plus the resident memory one 1080p camera adds (measured in a fresh process, on
the first clip). Each figure is the median of several runs. ``keyframes`` can
never be cheaper than ``raw_keyframe_floor``; the JSON reports both. The last
line is one JSON object: the first clip's figures at the top level, every
clip's under ``clips``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from operators.news_wakes import NewsPolicy
from pipeline.core.config import CameraConfig, MotionDetectConfig
from sources.camera import CameraSource
from sources.motion import motion_detections

WIDTH, HEIGHT, FPS, GOP, BITRATE = 1920, 1080, 30, 60, 4_000_000
LOOK_EVERY_S = 5.0
TARGETS = {"every_frame": 1.15, "on_demand": 0.25, "keyframes": 0.03, "rss_mb_per_camera": 80.0}
WAKE_FPS = 5.0
WAKE_FRAMES_TARGET = 0.25
"""Frames the recommended wake path decodes, as a share of a full decode's."""


FOOTAGE = Path(__file__).resolve().parents[1] / "tests" / "footage" / "vtest.mp4"


def _x264_stream(out: av.container.OutputContainer) -> av.VideoStream:
    stream = out.add_stream("libx264", rate=FPS)
    stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    stream.time_base = Fraction(1, FPS)
    stream.bit_rate = BITRATE
    stream.codec_context.gop_size = GOP
    stream.options = {
        "preset": "superfast",
        "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0:bframes=0"
        f":vbv-maxrate={BITRATE // 1000}:vbv-bufsize={2 * BITRATE // 1000}",
    }
    return stream


def _footage_frames(seconds: float) -> Iterator[np.ndarray]:
    """Real walkway footage (10 fps) upscaled to 1080p30, with per-frame sensor-like noise."""
    rng = np.random.default_rng(7)
    noise = [rng.integers(-3, 4, (HEIGHT, WIDTH, 1), dtype=np.int16) for _ in range(5)]
    n = round(seconds * FPS)
    i = 0
    while i < n:
        with av.open(str(FOOTAGE)) as src:
            for f in src.decode(video=0):
                img = f.to_ndarray(width=WIDTH, height=HEIGHT, format="rgb24").astype(np.int16)
                for _ in range(3):
                    if i >= n:
                        return
                    yield np.clip(img + noise[i % 5], 0, 255).astype(np.uint8)
                    i += 1


def _synthetic_frames(seconds: float) -> Iterator[np.ndarray]:
    """A panning block texture with a moving box (when the footage is missing)."""
    rng = np.random.default_rng(7)
    texture = rng.integers(0, 256, (HEIGHT // 8, (WIDTH + 2 * FPS * 60) // 8, 3), np.uint8)
    texture = np.repeat(np.repeat(texture, 8, axis=0), 8, axis=1)
    for i in range(round(seconds * FPS)):
        x = (2 * i) % (texture.shape[1] - WIDTH)
        img = np.ascontiguousarray(texture[:, x : x + WIDTH])
        bx = (i * 12) % (WIDTH - 200)
        img[400:600, bx : bx + 200] = 250
        yield img


def _pattern_frames(seconds: float) -> Iterator[np.ndarray]:
    """FFmpeg's ``testsrc2`` pattern at 1080p30, read through PyAV's lavfi input."""
    spec = f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}:duration={seconds:g}"
    with av.open(spec, format="lavfi") as src:
        for f in src.decode(video=0):
            yield f.to_ndarray(format="rgb24")


CLIP_KINDS = {
    "footage": _footage_frames,
    "synthetic": _synthetic_frames,
    "pattern": _pattern_frames,
}


def make_clip(path: Path, seconds: float, content: str = "footage") -> tuple[Path, str]:
    """Write a 1080p30 H.264 test clip; return it and what it shows.

    ``content`` is ``footage`` (falls back to ``synthetic`` when the file is missing),
    ``synthetic`` or ``pattern``.
    """
    source = "synthetic" if content == "footage" and not FOOTAGE.is_file() else content
    frames = CLIP_KINDS[source](seconds)
    with av.open(str(path), mode="w") as out:
        stream = _x264_stream(out)
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path, source


def cpu_seconds() -> float:
    """User + system CPU time of this process (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(runs: dict[str, Callable[[], int]], reps: int) -> dict[str, tuple[float, int]]:
    """Median CPU seconds of each run and the frames it decoded; runs interleave per rep."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    decoded: dict[str, int] = {}
    for _ in range(reps):
        for name, run in runs.items():
            start = cpu_seconds()
            decoded[name] = run()
            samples[name].append(cpu_seconds() - start)
    return {name: (statistics.median(samples[name]), decoded[name]) for name in runs}


def raw_pyav(path: Path) -> int:
    """Full decode with PyAV's defaults."""
    n = 0
    with av.open(str(path)) as container:
        for _ in container.decode(video=0):
            n += 1
    return n


def demux_only(path: Path) -> int:
    """Packets only."""
    n = 0
    with av.open(str(path)) as container:
        for packet in container.demux(video=0):
            n += packet.size > 0
    return n


def raw_keyframes(path: Path, every_s: float) -> int:
    """Demux everything, decode one keyframe per ``every_s`` seconds of video."""
    n = 0
    next_due = 0.0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        codec = stream.codec_context
        tb = stream.time_base or Fraction(1, 90_000)
        for packet in container.demux(stream):
            if not packet.size or not packet.is_keyframe or packet.pts is None:
                continue
            t = float(packet.pts * tb)
            if t + 1e-9 >= next_due:
                n += len(codec.decode(packet))
                codec.flush_buffers()
                next_due += every_s
    return n


def source_run(path: Path, strategy: str, look_fps: float | None) -> int:
    """Play the file as fast as possible through ``CameraSource``, looking at ``look_fps``."""
    config = CameraConfig(url=str(path), realtime=False, decode=strategy)
    done = threading.Event()
    camera = CameraSource("bench", config)
    try:
        if look_fps is None:
            sub = camera.frames(None).subscribe(lambda _f: None, on_completed=done.set)
        else:
            sub = camera.frames(look_fps).subscribe(lambda _f: None, on_completed=done.set)
        if not done.wait(600):
            raise RuntimeError("the camera did not reach the end of the clip")
        sub.dispose()
    finally:
        camera.close()
    return camera.decoded_frames


def wake_path_run(path: Path, keyframes: bool) -> int:
    """A watch's wake path alone: motion at 5 fps and the news policy on the same pictures."""
    config = CameraConfig(url=str(path), realtime=False, decode="on_demand")
    detect = MotionDetectConfig(fps=WAKE_FPS, keyframes=keyframes)
    policy = NewsPolicy(pictures_fps=WAKE_FPS)
    done = threading.Event()
    camera = CameraSource("bench", config)
    try:
        dets = motion_detections(camera.frames(WAKE_FPS, keyframes), detect)
        subs = [
            dets.subscribe(lambda _d: None),
            camera.frames(WAKE_FPS, keyframes).subscribe(policy.picture, on_completed=done.set),
        ]
        if not done.wait(600):
            raise RuntimeError("the camera did not reach the end of the clip")
        for sub in subs:
            sub.dispose()
    finally:
        camera.close()
    return camera.decoded_frames


def rss_probe(path: Path, cameras: int) -> None:
    """Print the RSS (MB) that ``cameras`` looping 1080p cameras add, as JSON (child process)."""

    def rss_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6

    # Warm up imports and the codec once, so the baseline holds the shared libraries.
    raw_pyav(path)
    base = rss_mb()
    sources, subs = [], []
    for i in range(cameras):
        config = CameraConfig(url=str(path), realtime=False, loop=True, decode="on_demand")
        camera = CameraSource(f"cam{i}", config)
        sources.append(camera)
        subs.append(camera.frames(1 / LOOK_EVERY_S).subscribe(lambda _f: None))
    time.sleep(6.0)
    peak = rss_mb()
    for sub in subs:
        sub.dispose()
    for camera in sources:
        camera.close()
    print(json.dumps({"base_mb": base, "with_cameras_mb": peak, "cameras": cameras}))


def bench_clip(path: Path, seconds: float, reps: int) -> dict[str, dict[str, float]]:
    """CPU seconds per minute of video, frames decoded and ratio to raw PyAV, per run."""
    look = 1 / LOOK_EVERY_S
    runs: dict[str, Callable[[], int]] = {
        "raw_pyav": lambda: raw_pyav(path),
        "demux_only": lambda: demux_only(path),
        "raw_keyframe_floor": lambda: raw_keyframes(path, LOOK_EVERY_S),
        "every_frame": lambda: source_run(path, "every_frame", None),
        "on_demand": lambda: source_run(path, "on_demand", look),
        "keyframes": lambda: source_run(path, "keyframes", look),
        "wake_path": lambda: wake_path_run(path, keyframes=False),
        "wake_path_keyframes": lambda: wake_path_run(path, keyframes=True),
    }
    per_min = 60.0 / seconds
    results: dict[str, dict[str, float]] = {}
    for name, (cpu, decoded) in measure(runs, reps).items():
        results[name] = {"cpu_s_per_min": cpu * per_min, "decoded_frames": decoded}
    ref = results["raw_pyav"]["cpu_s_per_min"]
    frames = max(1.0, results["raw_pyav"]["decoded_frames"])
    for r in results.values():
        r["ratio"] = r["cpu_s_per_min"] / ref
        r["frames_ratio"] = r["decoded_frames"] / frames
    return results


def _verdict(results: dict[str, dict[str, float]]) -> dict[str, bool]:
    verdict = {name: results[name]["ratio"] <= TARGETS[name] for name in STRATEGY_TARGETS}
    verdict["wake_path_keyframes_frames"] = (
        results["wake_path_keyframes"]["frames_ratio"] <= WAKE_FRAMES_TARGET
    )
    return verdict


STRATEGY_TARGETS = ("every_frame", "on_demand", "keyframes")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the tables and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 s clips, 3 runs (default 60 s, 5)")
    parser.add_argument(
        "--clips",
        default="pattern,footage,synthetic",
        help="comma-separated clips to measure: footage, pattern, synthetic",
    )
    parser.add_argument("--rss-probe", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cameras", type=int, default=2, help="cameras in the RSS probe")
    args = parser.parse_args(argv)
    if args.rss_probe:
        rss_probe(args.rss_probe, args.cameras)
        return 0
    kinds = [k.strip() for k in args.clips.split(",") if k.strip()]
    if not kinds or any(k not in CLIP_KINDS for k in kinds):
        parser.error(f"--clips takes any of {', '.join(CLIP_KINDS)}")

    seconds, reps = (20.0, 3) if args.quick else (60.0, 5)
    clips: dict[str, dict[str, object]] = {}
    probe: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-decode-") as tmp:
        for kind in kinds:
            t0 = time.monotonic()
            path, content = make_clip(Path(tmp) / f"{kind}.mp4", seconds, kind)
            mbit = path.stat().st_size * 8 / seconds / 1e6
            print(
                f"clip: {content}, {seconds:g} s 1080p30 GOP {GOP}, {mbit:.2f} Mbit/s "
                f"(made in {time.monotonic() - t0:.1f} s)",
                file=sys.stderr,
            )
            results = bench_clip(path, seconds, reps)
            if not probe:
                child = subprocess.run(
                    [sys.executable, "-m", "benchmarks.decode", "--rss-probe", str(path),
                     "--cameras", str(args.cameras)],
                    capture_output=True, text=True, check=True, timeout=300,
                )  # fmt: skip
                probe = json.loads(child.stdout.strip().splitlines()[-1])
            print(f"\n{content} clip ({mbit:.2f} Mbit/s)")
            print(f"{'run':<19} {'CPU s/min of video':>18} {'ratio':>7} {'frames decoded':>15}")
            for name, r in results.items():
                print(
                    f"{name:<19} {r['cpu_s_per_min']:>18.3f} {r['ratio']:>7.3f} "
                    f"{int(r['decoded_frames']):>15}"
                )
            clips[content] = {
                "seconds": seconds,
                "mbit_s": round(mbit, 3),
                "cpu_s_per_min": {k: round(v["cpu_s_per_min"], 4) for k, v in results.items()},
                "ratio_to_raw_pyav": {k: round(v["ratio"], 4) for k, v in results.items()},
                "decoded_frames": {k: int(v["decoded_frames"]) for k, v in results.items()},
                "frames_ratio": {k: round(v["frames_ratio"], 4) for k, v in results.items()},
                "keyframes_over_floor": round(
                    results["keyframes"]["cpu_s_per_min"]
                    / results["raw_keyframe_floor"]["cpu_s_per_min"],
                    3,
                ),
                "meets_targets": _verdict(results),
            }
    rss_per_camera = (probe["with_cameras_mb"] - probe["base_mb"]) / probe["cameras"]
    print(
        f"\nRSS per 1080p camera (on_demand, {probe['cameras']} cameras): {rss_per_camera:.1f} MB"
    )
    head_name = next(iter(clips))
    head = clips[head_name]
    verdict = dict(head["meets_targets"])  # type: ignore[call-overload]
    verdict["rss_mb_per_camera"] = rss_per_camera <= TARGETS["rss_mb_per_camera"]
    print(
        json.dumps(
            {
                "benchmark": "decode",
                "quick": args.quick,
                "clip": {
                    "content": head_name,
                    "seconds": seconds,
                    "width": WIDTH,
                    "height": HEIGHT,
                    "fps": FPS,
                    "gop": GOP,
                    "mbit_s": head["mbit_s"],
                },
                "runs": reps,
                "look_every_s": LOOK_EVERY_S,
                "cpu_s_per_min": head["cpu_s_per_min"],
                "ratio_to_raw_pyav": head["ratio_to_raw_pyav"],
                "decoded_frames": head["decoded_frames"],
                "rss_mb_per_camera": round(rss_per_camera, 1),
                "targets": TARGETS,
                "meets_targets": verdict,
                "clips": clips,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
