"""The low-rate stream clip of the cluster benchmark's ``stream`` row, made once and cached.

A cheap camera that streams: 320x240 H.264 at 2 fps with a keyframe every
2 s (4 frames), a grey scene with sensor-like noise and a box crossing it,
60 s long, played by each camera as a live one (``realtime = true``,
``loop = true``). It is made with PyAV the first time and kept in
``~/.cache/lookout/bench/`` (``$XDG_CACHE_HOME`` honoured) under a name that
holds every setting and a digest of them with the PyAV version, so changing
any of them makes a new clip.

Example:
    >>> clip_name(StreamClip())[:40]
    'lowrate-320x240-2fps-gop4-60s-noise-box-'
    >>> path = cached_stream_clip()  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from benchmarks.decode import encode_all


@dataclass(frozen=True)
class StreamClip:
    """What the low-rate clip is: size, rate, GOP (frames) and length."""

    width: int = 320
    height: int = 240
    fps: int = 2
    gop: int = 4
    seconds: int = 60

    def settings(self) -> str:
        """Every setting, readable: the start of the cached file's name."""
        return (
            f"lowrate-{self.width}x{self.height}-{self.fps}fps-gop{self.gop}"
            f"-{self.seconds}s-noise-box"
        )


def clip_name(clip: StreamClip, pyav: str = av.__version__) -> str:
    """The cached file's name: the settings and a digest of them with the PyAV version."""
    digest = hashlib.sha1(f"{clip.settings()}|{pyav}".encode()).hexdigest()[:10]
    return f"{clip.settings()}-{digest}.mp4"


def cache_folder() -> Path:
    """``~/.cache/lookout/bench`` (or under ``$XDG_CACHE_HOME``): the benchmarks' clips."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lookout" / "bench"


def stream_cameras(cameras: int, clip: Path) -> dict[str, str]:
    """``str000``... each a ``[cameras.NAME]`` table playing ``clip`` as live, on demand.

    Example:
        >>> stream_cameras(1, Path("/c/low.mp4"))["str000"].splitlines()[:2]
        ['[cameras.str000]', 'url = "/c/low.mp4"']
    """
    return {
        f"str{i:03}": f'[cameras.str{i:03}]\nurl = "{clip}"\nrealtime = true\nloop = true\n'
        'decode = "on_demand"\n'
        for i in range(cameras)
    }


def frames(clip: StreamClip) -> Iterator[np.ndarray]:
    """Grey with noise (-4..4 per pixel, seeded) and a dark box crossing left to right."""
    rng = np.random.default_rng(16)
    box = clip.height // 4
    for i in range(clip.seconds * clip.fps):
        img = np.full((clip.height, clip.width, 3), 128, np.int16)
        img += rng.integers(-4, 5, (clip.height, clip.width, 1), dtype=np.int16)
        x = (i * 8) % (clip.width - box)
        y = clip.height // 2 - box // 2
        img[y : y + box, x : x + box] = 40
        yield img.astype(np.uint8)


def make_stream_clip(path: Path, clip: StreamClip) -> Path:
    """Write ``clip`` to ``path`` (H.264, keyframe exactly every ``gop`` frames, no B-frames)."""
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("libx264", rate=clip.fps)
        stream.width, stream.height, stream.pix_fmt = clip.width, clip.height, "yuv420p"
        stream.time_base = Fraction(1, clip.fps)
        stream.codec_context.gop_size = clip.gop
        stream.options = {
            "preset": "veryfast",
            "crf": "28",
            "x264-params": f"keyint={clip.gop}:min-keyint={clip.gop}:scenecut=0:bframes=0",
        }
        encode_all(out, stream, frames(clip))
    return path


def cached_stream_clip(clip: StreamClip | None = None) -> Path:
    """The clip's cached file, made first (about a second) when it is not there yet."""
    clip = clip or StreamClip()
    path = cache_folder() / clip_name(clip)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(f".{os.getpid()}.part.mp4")
        make_stream_clip(part, clip)
        os.replace(part, path)
    return path
