"""Decode cost of a camera source per strategy, against raw PyAV full decode.

Run: ``.venv/bin/python -m benchmarks.decode [--quick]``

Generates 1080p30 H.264 clips (keyframe every 60 frames, about 4 Mbit/s) and
measures, in one run, CPU seconds (user + system, all threads) per minute of
video on each. Several clips, because the ``keyframes`` figure depends on how
much of the bitrate goes into keyframes:

- ``footage`` (the headline figures): the real walkway footage in
  ``tests/footage/vtest.mp4`` (all of ``vtest.avi`` in H.264) upscaled, with
  sensor-like noise: like a fixed camera, cheap P-frames and costly keyframes
  (about 240 KB each);
- ``pattern``: FFmpeg's ``testsrc2`` test pattern (through PyAV's lavfi input):
  moving content, ordinary keyframes;
- ``synthetic``: a panning random block texture with a moving box (about 3.3
  Mbit/s): every keyframe is as costly as the whole texture.

Runs on each clip:

- ``raw_pyav``: ``for f in container.decode(video=0)`` (the reference);
- ``demux_only``: reading the packets without decoding;
- ``raw_keyframe_floor``: raw PyAV demuxing everything and decoding one keyframe
  per 5 s (the least any source can spend for one look per 5 s);
- ``ffmpeg_5fps`` (the Frigate-style peer): ``ffmpeg`` decoding every frame
  and handing out 5 pictures a second, as Frigate's detect stream does;
- ``every_frame``: ``CameraSource`` decoding every frame;
- ``on_demand`` (live-like, the shipped defaults): looks as a watch makes them
  (:mod:`benchmarks.live_looks`): one every 4-6 s, so each falls at a random
  GOP phase (seeded; each rep other phases); timer looks take the newest
  keyframe when it is at most ``timer_max_age_s`` (2 s) old; target <= 0.15x;
- ``on_demand_freshest``: the same looks, each decoding to the newest packet
  (what every look cost before keyframe-aligned timer looks);
- ``on_demand_wakes``: ``on_demand`` plus an accepted wake every 20-40 s: a
  look at the newest frame, then the decoder kept current for
  ``keep_current_s`` (5 s): the cost of keeping current;
- ``on_demand_wakes_unkept``: the same wakes without keeping current;
- ``on_demand_busy``: a wake every 1-3 s (constant movement): keeping current
  stays within ``keep_current_share`` (0.2 in the long run; a burst gets up
  to 6 s more), never a permanent full decode;
- ``keyframes``: ``CameraSource`` with one look per 5 s of video;
- ``wake_path``: what a watch's wake path decodes, no looks of its own: the
  motion detector at 5 fps and the news wake policy measuring the same
  pictures (the shipped detector settings), as in a watch whose model answers
  at once (the first picture and every woken one judged, each wake kept
  current as an accepted wake is); the clip plays on a virtual clock through
  the replay's clip reader (the same decoder, taps and keeping current as a
  camera, so seconds kept current are seconds of video);
- ``wake_path_keyframes``: the same with ``keyframes = true`` in the
  detector (the recommended configuration for high-resolution cameras):
  keyframes, and every frame at 5 fps only while the camera is kept current
  after a sign of change or a wake, within ``keep_current_share``; target
  <= 0.25x of a full decode's frames on the full run's 60 s clips (the
  ``--quick`` 20 s clips are mostly the bucket's first burst, 6 s kept
  current, so they show about 0.45x there: judge the target on a full run);

plus the resident memory one 1080p camera adds (measured in a fresh process, on
the first clip). CPU figures are medians of 3 runs; the live-like runs also
report frames decoded per look, the frame's age at each look and the looks'
lateness (median and p95, over every run's looks). ``keyframes`` can never be
cheaper than ``raw_keyframe_floor``; the JSON reports both. The last line is
one JSON object: the first clip's figures at the top level, every clip's under
``clips``.

The clips are made once and kept in ``~/.cache/lookout/bench/`` (the file
name holds the settings). Encoder settings, fixed: libx264 ``preset=superfast``,
4 Mbit/s (VBV max rate 4 Mbit/s, buffer 8 Mbit), 30 fps, keyframe every 60
frames exactly (``keyint=min-keyint=60``, ``scenecut=0``: a 2 s GOP), no
B-frames, ``yuv420p``; the footage clip shows each 10 fps frame of
``vtest.mp4``, scaled to 1920x1080 (swscale bicubic), three times with fixed
sensor-like noise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from reactivex.scheduler import HistoricalScheduler

from benchmarks.live_looks import LookStats, keyframe_times, live_looks, wake_times
from operators.frame_selector import FrameSelector, FreshestFrame
from operators.news_wakes import NewsPolicy
from operators.timer_keyframes import KeyframeTimerLooks
from pipeline.app.replay.clip_reader import ClipReader
from pipeline.core.config import CameraConfig, MotionDetectConfig
from pipeline.core.frame import Frame
from sources.camera import CameraSource
from sources.keep_current import KeepCurrent
from sources.motion import motion_detections

WIDTH, HEIGHT, FPS, GOP, BITRATE = 1920, 1080, 30, 60, 4_000_000
LOOK_EVERY_S = 5.0
TARGETS = {"every_frame": 1.15, "on_demand": 0.15, "keyframes": 1.25, "rss_mb_per_camera": 80.0}
"""Ratios to a full raw PyAV decode; ``keyframes``: to ``raw_keyframe_floor`` (the least one
keyframe decode per look can cost, which depends on how large the clip's keyframes are)."""
SEED = 17
"""Seed of the look phases and wake times of the live-like runs (the same in every rep)."""
WAKES_EVERY_S = (20.0, 40.0)
"""``on_demand_wakes``: an accepted wake every 20-40 s (uniform), each kept current after."""
BUSY_EVERY_S = (1.0, 3.0)
"""``on_demand_busy``: a wake every 1-3 s, constant movement: keeping current is bounded."""
PEER_FPS = 5
"""The rate the Frigate-style ffmpeg peer hands pictures out at (it decodes every frame)."""
CAMERA_DEFAULTS = CameraConfig(url="clip.mp4")
"""A camera's defaults: the staleness bound of timer looks, how long to keep current."""
WAKE_FPS = 5.0
WAKE_FRAMES_TARGET = 0.25
"""Frames the recommended wake path decodes, as a share of a full decode's."""


FOOTAGE = Path(__file__).resolve().parents[1] / "tests" / "footage" / "vtest.mp4"
CACHE = Path.home() / ".cache" / "lookout" / "bench"
"""Where :func:`cached_clip` keeps the clips it made."""


def _x264_stream(
    out: av.container.OutputContainer, width: int = WIDTH, height: int = HEIGHT
) -> av.VideoStream:
    stream = out.add_stream("libx264", rate=FPS)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.time_base = Fraction(1, FPS)
    stream.bit_rate = BITRATE
    stream.codec_context.gop_size = GOP
    stream.options = {
        "preset": "superfast",
        "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0:bframes=0"
        f":vbv-maxrate={BITRATE // 1000}:vbv-bufsize={2 * BITRATE // 1000}",
    }
    return stream


def _footage_frames(
    seconds: float, width: int = WIDTH, height: int = HEIGHT
) -> Iterator[np.ndarray]:
    """Real walkway footage (10 fps) scaled to ``width`` x ``height`` at 30 fps, with noise.

    Each source frame is shown three times, each time with one of five fixed
    sensor-like noise patterns (uniform -3..3 per pixel, seeded), so no two
    consecutive frames are equal, as from a real sensor.
    """
    rng = np.random.default_rng(7)
    noise = [rng.integers(-3, 4, (height, width, 1), dtype=np.int16) for _ in range(5)]
    n = round(seconds * FPS)
    i = 0
    while i < n:
        with av.open(str(FOOTAGE)) as src:
            for f in src.decode(video=0):
                img = f.to_ndarray(width=width, height=height, format="rgb24").astype(np.int16)
                for _ in range(3):
                    if i >= n:
                        return
                    yield np.clip(img + noise[i % 5], 0, 255).astype(np.uint8)
                    i += 1


def _synthetic_frames(
    seconds: float, width: int = WIDTH, height: int = HEIGHT
) -> Iterator[np.ndarray]:
    """A panning block texture with a moving box (when the footage is missing)."""
    rng = np.random.default_rng(7)
    texture = rng.integers(0, 256, (height // 8, (width + 2 * FPS * 60) // 8, 3), np.uint8)
    texture = np.repeat(np.repeat(texture, 8, axis=0), 8, axis=1)
    for i in range(round(seconds * FPS)):
        x = (2 * i) % (texture.shape[1] - width)
        img = np.ascontiguousarray(texture[:, x : x + width])
        bx = (i * 12) % (width - 200)
        img[400:600, bx : bx + 200] = 250
        yield img


def _pattern_frames(
    seconds: float, width: int = WIDTH, height: int = HEIGHT
) -> Iterator[np.ndarray]:
    """FFmpeg's ``testsrc2`` pattern at 30 fps, read through PyAV's lavfi input."""
    spec = f"testsrc2=size={width}x{height}:rate={FPS}:duration={seconds:g}"
    with av.open(spec, format="lavfi") as src:
        for f in src.decode(video=0):
            yield f.to_ndarray(format="rgb24")


CLIP_KINDS = {
    "footage": _footage_frames,
    "synthetic": _synthetic_frames,
    "pattern": _pattern_frames,
}


def make_clip(
    path: Path, seconds: float, content: str = "footage", width: int = WIDTH, height: int = HEIGHT
) -> tuple[Path, str]:
    """Write a 30 fps H.264 test clip (1080p unless told); return it and what it shows.

    ``content`` is ``footage`` (falls back to ``synthetic`` when the file is missing),
    ``synthetic`` or ``pattern``.
    """
    source = "synthetic" if content == "footage" and not FOOTAGE.is_file() else content
    frames = CLIP_KINDS[source](seconds, width, height)
    with av.open(str(path), mode="w") as out:
        encode_all(out, _x264_stream(out, width, height), frames)
    return path, source


def encode_all(out: Any, stream: Any, frames: Iterable[np.ndarray]) -> None:
    """Encode RGB ``frames`` (pts 0, 1, 2...) into ``stream`` of container ``out``, and flush."""
    for i, img in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = i
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def cached_clip(
    seconds: float, content: str = "footage", width: int = WIDTH, height: int = HEIGHT
) -> tuple[Path, str]:
    """:func:`make_clip` once, kept under ``~/.cache/lookout/bench/`` for later runs.

    The file name holds every setting (content, size, rate, GOP, bitrate, preset,
    length) and a digest of them with the PyAV version and the footage's size,
    so a change of any of them makes a new clip.

    Example:
        >>> path, content = cached_clip(20.0)  # doctest: +SKIP
    """
    source = "synthetic" if content == "footage" and not FOOTAGE.is_file() else content
    settings = (
        f"{source}-{width}x{height}-{FPS}fps-gop{GOP}-{BITRATE // 1000}k-superfast-{seconds:g}s"
    )
    footage = FOOTAGE.stat().st_size if source == "footage" else 0
    digest = hashlib.sha1(f"{settings}|{av.__version__}|{footage}".encode()).hexdigest()[:10]
    path = CACHE / f"{settings}-{digest}.mp4"
    if not path.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(f".{os.getpid()}.part.mp4")
        make_clip(part, seconds, source, width, height)
        os.replace(part, path)
    return path, source


def cpu_seconds() -> float:
    """User + system CPU time of this process (every thread) and of its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


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


def wake_path_run(
    path: Path, keyframes: bool, share: float = CAMERA_DEFAULTS.keep_current_share
) -> int:
    """A watch's wake path: motion at 5 fps and the news policy on the same pictures.

    As in a watch whose model answers at once: the first picture is judged
    (``next_run_in`` 60: nothing relevant), and so is the picture of every wake
    (5: something in view), which also keeps the camera current for
    ``keep_current_s``, as an accepted wake does. The clip plays on a virtual
    clock (:class:`~pipeline.app.replay.clip_reader.ClipReader`: the same
    decoder, taps and keeping current as a camera, at each packet's own time,
    so seconds kept current are seconds of video). With ``keyframes`` the
    policy keeps the camera current on a first sign of change
    (:meth:`~operators.news_wakes.NewsPolicy.keep_current_on_sign`).
    """
    detect = MotionDetectConfig(fps=WAKE_FPS, keyframes=keyframes)
    policy = NewsPolicy(pictures_fps=WAKE_FPS, keyframes=keyframes)
    sched = HistoricalScheduler(datetime.fromtimestamp(0, UTC))
    camera = ClipReader(
        path,
        scheduler=sched,
        camera="bench",
        on_end=sched.stop,
        keep_current_s=CAMERA_DEFAULTS.keep_current_s,
        keep_current_share=share,
    )

    def on_picture(frame: Frame) -> None:
        if policy.tracker.reference is None:
            policy.judged(frame, 60.0)
        decision = policy.picture(frame)
        policy.keep_current_on_sign(camera)
        if decision is not None and decision.wake:
            policy.judged(frame, 5.0)
            camera.keep_current()

    try:
        dets = motion_detections(camera.frames(WAKE_FPS, keyframes), detect)
        subs = [
            dets.subscribe(lambda _d: None),
            camera.frames(WAKE_FPS, keyframes).subscribe(on_picture),
        ]
        camera.start()
        sched.start()
        if not camera.ended:
            raise RuntimeError("the clip did not play to its end")
        for sub in subs:
            sub.dispose()
    finally:
        camera.close()
    return camera.decoded


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


def ffmpeg_peer(path: Path) -> int:
    """A Frigate-style peer: ``ffmpeg`` decoding every frame and handing out 5 fps (its CPU).

    The command Frigate runs for a detect stream, minus the network input:
    ``ffmpeg -threads 2 -i CLIP -r 5 -vf fps=5 -f rawvideo -pix_fmt yuv420p -``
    (raw pictures to a pipe, read and dropped here). Returns the frames it decoded.
    """
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-threads", "2", "-i", str(path),
               "-r", str(PEER_FPS), "-vf", f"fps={PEER_FPS}", "-f", "rawvideo",
               "-pix_fmt", "yuv420p", "-"]  # fmt: skip
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True, timeout=600)
    with av.open(str(path)) as container:
        return sum(1 for p in container.demux(video=0) if p.size)


def live_run(
    path: Path,
    keys: list[float],
    selector: Callable[[], FrameSelector],
    passes: list[LookStats],
    wakes_every: tuple[float, float] | None = None,
    keep_s: float = CAMERA_DEFAULTS.keep_current_s,
) -> int:
    """One :func:`~benchmarks.live_looks.live_looks` pass, appended to ``passes``.

    Pass ``n`` (counted by ``passes``) looks at phases and wakes seeded with
    ``SEED + n``: every rep looks at other GOP phases, and the look figures are
    taken over all of them.
    """
    seed = SEED + len(passes)
    seconds = keys[-1] + 2.0 if keys else 0.0
    wakes = None if wakes_every is None else wake_times(seconds, wakes_every, seed=seed + 1000)
    keep = KeepCurrent(keep_s, CAMERA_DEFAULTS.keep_current_share)
    stats = live_looks(path, keys, selector(), seed=seed, wakes=wakes, keep=keep)
    passes.append(stats)
    return stats.decoded


def bench_clip(
    path: Path, seconds: float, reps: int, looks: dict[str, dict[str, float]] | None = None
) -> dict[str, dict[str, float]]:
    """CPU seconds per minute of video, frames decoded and ratio to raw PyAV, per run.

    The look figures of the live-like runs (frames per look, frame age and
    lateness, median and p95) go to ``looks`` when given.
    """
    look = 1 / LOOK_EVERY_S
    keys = keyframe_times(path)
    bound = CAMERA_DEFAULTS.timer_max_age_s
    passes: dict[str, list[LookStats]] = {}

    def live(
        name: str,
        pick: Callable[[], FrameSelector],
        wakes: tuple[float, float] | None = None,
        keep_s: float = CAMERA_DEFAULTS.keep_current_s,
    ) -> Callable[[], int]:
        done = passes.setdefault(name, [])
        return lambda: live_run(path, keys, pick, done, wakes, keep_s)

    def timer_keyframes() -> FrameSelector:
        return KeyframeTimerLooks(bound)

    runs: dict[str, Callable[[], int]] = {
        "raw_pyav": lambda: raw_pyav(path),
        "ffmpeg_5fps": lambda: ffmpeg_peer(path),
        "demux_only": lambda: demux_only(path),
        "raw_keyframe_floor": lambda: raw_keyframes(path, LOOK_EVERY_S),
        "every_frame": lambda: source_run(path, "every_frame", None),
        "on_demand": live("on_demand", timer_keyframes),
        "on_demand_freshest": live("on_demand_freshest", FreshestFrame),
        "on_demand_wakes": live("on_demand_wakes", timer_keyframes, WAKES_EVERY_S),
        "on_demand_wakes_unkept": live("on_demand_wakes_unkept", timer_keyframes, WAKES_EVERY_S, 0),
        "on_demand_busy": live("on_demand_busy", timer_keyframes, BUSY_EVERY_S),
        "keyframes": lambda: source_run(path, "keyframes", look),
        "wake_path": lambda: wake_path_run(path, keyframes=False),
        "wake_path_keyframes": lambda: wake_path_run(path, keyframes=True),
    }
    per_min = 60.0 / seconds
    results: dict[str, dict[str, float]] = {}
    measured = measure(runs, reps)
    if looks is not None:
        looks.update({name: LookStats.merged(done).summary() for name, done in passes.items()})
    for name, (cpu, decoded) in measured.items():
        results[name] = {"cpu_s_per_min": cpu * per_min, "decoded_frames": decoded}
    ref = results["raw_pyav"]["cpu_s_per_min"]
    frames = max(1.0, results["raw_pyav"]["decoded_frames"])
    for r in results.values():
        r["ratio"] = r["cpu_s_per_min"] / ref
        r["frames_ratio"] = r["decoded_frames"] / frames
    return results


def _verdict(results: dict[str, dict[str, float]]) -> dict[str, bool]:
    verdict = {name: results[name]["ratio"] <= TARGETS[name] for name in STRATEGY_TARGETS}
    floor = results["raw_keyframe_floor"]["cpu_s_per_min"]
    verdict["keyframes"] = results["keyframes"]["cpu_s_per_min"] <= TARGETS["keyframes"] * floor
    verdict["wake_path_keyframes_frames"] = (
        results["wake_path_keyframes"]["frames_ratio"] <= WAKE_FRAMES_TARGET
    )
    return verdict


STRATEGY_TARGETS = ("every_frame", "on_demand", "keyframes")


def print_looks(looks: dict[str, dict[str, float]]) -> None:
    """The look figures of the live-like runs, as a table."""
    print(
        f"{'looks (random phase)':<22} {'looks':>5} {'frames/look':>11} {'age med':>7} "
        f"{'age p95':>7} {'late p95':>8} {'keyframes':>9} {'kept current':>12}"
    )
    for name, lk in looks.items():
        print(
            f"{name:<22} {int(lk['looks']):>5} {lk['frames_per_look']:>11.2f} "
            f"{lk['age_median_s']:>7.3f} {lk['age_p95_s']:>7.3f} {lk['lateness_p95_s']:>8.3f} "
            f"{lk['keyframe_share']:>9.2f} {lk['kept_current_share']:>12.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the tables and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 s clips (default 60 s); 3 runs")
    parser.add_argument(
        "--clips",
        default="footage,pattern,synthetic",
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

    seconds, reps = (20.0, 3) if args.quick else (60.0, 3)
    clips: dict[str, dict[str, object]] = {}
    probe: dict[str, float] = {}
    for kind in kinds:
        t0 = time.monotonic()
        path, content = cached_clip(seconds, kind)
        mbit = path.stat().st_size * 8 / seconds / 1e6
        print(
            f"clip: {content}, {seconds:g} s 1080p30 GOP {GOP}, {mbit:.2f} Mbit/s "
            f"({path}, ready in {time.monotonic() - t0:.1f} s)",
            file=sys.stderr,
        )
        looks: dict[str, dict[str, float]] = {}
        results = bench_clip(path, seconds, reps, looks)
        if not probe:
            child = subprocess.run(
                [sys.executable, "-m", "benchmarks.decode", "--rss-probe", str(path),
                 "--cameras", str(args.cameras)],
                capture_output=True, text=True, check=True, timeout=300,
            )  # fmt: skip
            probe = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"\n{content} clip ({mbit:.2f} Mbit/s); references: raw_pyav, ffmpeg_5fps")
        print(
            f"{'run':<22} {'CPU s/min of video':>18} {'ratio':>7} {'vs ffmpeg':>9} "
            f"{'frames decoded':>15}"
        )
        peer = results["ffmpeg_5fps"]["cpu_s_per_min"]
        for name, r in results.items():
            print(
                f"{name:<22} {r['cpu_s_per_min']:>18.3f} {r['ratio']:>7.3f} "
                f"{r['cpu_s_per_min'] / peer:>9.3f} {int(r['decoded_frames']):>15}"
            )
        print_looks(looks)
        clips[content] = {
            "seconds": seconds,
            "mbit_s": round(mbit, 3),
            "cpu_s_per_min": {k: round(v["cpu_s_per_min"], 4) for k, v in results.items()},
            "ratio_to_raw_pyav": {k: round(v["ratio"], 4) for k, v in results.items()},
            "decoded_frames": {k: int(v["decoded_frames"]) for k, v in results.items()},
            "frames_ratio": {k: round(v["frames_ratio"], 4) for k, v in results.items()},
            "ratio_to_ffmpeg_5fps": {
                k: round(v["cpu_s_per_min"] / results["ffmpeg_5fps"]["cpu_s_per_min"], 4)
                for k, v in results.items()
            },
            "looks": looks,
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
                "ratio_to_ffmpeg_5fps": head["ratio_to_ffmpeg_5fps"],
                "decoded_frames": head["decoded_frames"],
                "looks": head["looks"],
                "timer_max_age_s": CAMERA_DEFAULTS.timer_max_age_s,
                "keep_current": {
                    "seconds": CAMERA_DEFAULTS.keep_current_s,
                    "share": CAMERA_DEFAULTS.keep_current_share,
                },
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
