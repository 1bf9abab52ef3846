"""Deterministic test clips made with PyAV: a still background and bright rectangles.

Example::

    clip = make_clip(tmp_path / "porch.mp4", seconds=6, shapes=[(2.0, 4.0, (40, 60, 120, 160))])
    # the rectangle is visible for 2.0 <= t < 4.0 (frames 20..39 at 10 fps)
    av.open(clip.path)  # or av.open(clip): a Clip is os.PathLike

Boxes are ``(x1, y1, x2, y2)`` in pixels, ``x2``/``y2`` exclusive, clipped to the frame.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

Box = tuple[int, int, int, int]
"""A rectangle ``(x1, y1, x2, y2)`` in pixels; ``x2`` and ``y2`` are exclusive."""

ShapeFn = Callable[[float], Box | Sequence[Box] | None]
"""Given a time in seconds, the box(es) to draw in that frame, or ``None`` for none."""

Segments = Sequence[tuple[float, float, Box]]
"""``(t_start, t_end, box)`` items: draw ``box`` while ``t_start <= t < t_end``."""


@dataclass(frozen=True)
class Clip:
    """What ``make_clip`` wrote: the file and the ground truth per frame."""

    path: Path
    seconds: float
    fps: int
    width: int
    height: int
    gop: int
    frame_count: int
    boxes: tuple[tuple[Box, ...], ...] = field(repr=False)
    """``boxes[i]``: the rectangles drawn in frame ``i`` (at ``t = i / fps``)."""

    def __fspath__(self) -> str:
        return str(self.path)

    def frame_time(self, index: int) -> float:
        """Return the presentation time in seconds of frame ``index``."""
        return index / self.fps

    def frames_with_shape(self) -> list[int]:
        """Return the indexes of frames that show at least one rectangle."""
        return [i for i, b in enumerate(self.boxes) if b]


def linear_path(t_start: float, t_end: float, box_from: Box, box_to: Box) -> ShapeFn:
    """Return a shape function moving a box linearly from ``box_from`` to ``box_to``.

    The box is visible only while ``t_start <= t < t_end``.
    """
    if t_end <= t_start:
        raise ValueError("t_end must be after t_start")

    def at(t: float) -> Box | None:
        if not t_start <= t < t_end:
            return None
        k = (t - t_start) / (t_end - t_start)
        x1, y1, x2, y2 = (round(a + (b - a) * k) for a, b in zip(box_from, box_to, strict=True))
        return (x1, y1, x2, y2)

    return at


def _segments_fn(segments: Segments) -> ShapeFn:
    items = [(float(t0), float(t1), tuple(box)) for t0, t1, box in segments]
    for t0, t1, box in items:
        if t1 <= t0:
            raise ValueError(f"segment ({t0}, {t1}, {box}) ends before it starts")
        if len(box) != 4:
            raise ValueError(f"box {box} must be (x1, y1, x2, y2)")

    def at(t: float) -> list[Box]:
        return [box for t0, t1, box in items if t0 <= t < t1]  # type: ignore[misc]

    return at


def _is_box(value: Any) -> bool:
    return (
        isinstance(value, tuple | list)
        and len(value) == 4
        and all(isinstance(v, int | float) for v in value)
    )


def _boxes_at(shapes: ShapeFn, t: float, width: int, height: int) -> tuple[Box, ...]:
    got = shapes(t)
    if got is None:
        return ()
    raw: list[Any] = [got] if _is_box(got) else list(got)
    out: list[Box] = []
    for box in raw:
        if not _is_box(box):
            raise ValueError(f"shape function returned {box!r}, not an (x1, y1, x2, y2) box")
        x1, y1, x2, y2 = (round(v) for v in box)
        x1, x2 = max(0, min(x1, width)), max(0, min(x2, width))
        y1, y2 = max(0, min(y1, height)), max(0, min(y2, height))
        if x2 > x1 and y2 > y1:
            out.append((x1, y1, x2, y2))
    return tuple(out)


def background(width: int, height: int) -> np.ndarray:
    """Return the clip's still background: a dim gradient with a faint grid (RGB uint8)."""
    ys = np.linspace(30, 70, height, dtype=np.float32)[:, None]
    xs = np.linspace(0, 20, width, dtype=np.float32)[None, :]
    gray = (ys + xs).astype(np.uint8)
    img = np.repeat(gray[:, :, None], 3, axis=2)
    img[::40, :, :] = 90
    img[:, ::40, :] = 90
    return img


def make_clip(
    path: Path | str,
    *,
    seconds: float = 4.0,
    fps: int = 10,
    width: int = 320,
    height: int = 240,
    gop: int = 10,
    codec: str = "libx264",
    shapes: ShapeFn | Segments | None = None,
    color: tuple[int, int, int] = (250, 250, 250),
    bframes: int = 0,
    preset: str = "veryfast",
) -> Clip:
    """Write a deterministic H.264 (yuv420p) clip and return its ground truth.

    Args:
        path: output file; the container follows the suffix (``.mp4``, ``.mkv``, ...).
        seconds: duration; ``round(seconds * fps)`` frames are written.
        fps: frames per second (constant frame rate, time base ``1/fps``).
        width: frame width in pixels (even).
        height: frame height in pixels (even).
        gop: keyframe interval in frames (exact: scene-cut detection is off for libx264).
        codec: PyAV encoder name.
        shapes: bright rectangles: a function of time, or ``(t_start, t_end, box)`` segments.
        color: RGB colour of the rectangles.
        bframes: B-frames between references (0, like most cameras).
        preset: x264 preset.

    Returns:
        A ``Clip`` (``os.PathLike``) with the per-frame boxes.
    """
    if fps <= 0 or seconds <= 0:
        raise ValueError("fps and seconds must be positive")
    if width % 2 or height % 2:
        raise ValueError("width and height must be even for yuv420p")
    if gop < 1:
        raise ValueError("gop must be at least 1")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    shape_fn: ShapeFn | None
    if shapes is None:
        shape_fn = None
    elif callable(shapes):
        shape_fn = shapes
    else:
        shape_fn = _segments_fn(shapes)

    frame_count = max(1, round(seconds * fps))
    base = background(width, height)
    all_boxes: list[tuple[Box, ...]] = []
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        if not isinstance(stream, av.VideoStream):
            raise ValueError(f"{codec!r} is not a video encoder")
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.codec_context.gop_size = gop
        stream.codec_context.max_b_frames = bframes
        if codec == "libx264":
            stream.options = {
                "preset": preset,
                "x264-params": (
                    f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}:threads=1"
                ),
            }
        for index in range(frame_count):
            t = index / fps
            boxes = _boxes_at(shape_fn, t, width, height) if shape_fn is not None else ()
            all_boxes.append(boxes)
            img = base.copy()
            for x1, y1, x2, y2 in boxes:
                img[y1:y2, x1:x2] = color
            frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return Clip(
        path=path,
        seconds=frame_count / fps,
        fps=fps,
        width=width,
        height=height,
        gop=gop,
        frame_count=frame_count,
        boxes=tuple(all_boxes),
    )


__all__ = ["Box", "Clip", "Segments", "ShapeFn", "background", "linear_path", "make_clip"]


def _main() -> None:  # pragma: no cover - manual helper
    import argparse

    parser = argparse.ArgumentParser(description="Write a test clip with a bright rectangle.")
    parser.add_argument("path", type=Path)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--fps", type=int, default=10)
    args = parser.parse_args()
    clip = make_clip(
        args.path,
        seconds=args.seconds,
        fps=args.fps,
        shapes=linear_path(0, args.seconds, (0, 80, 60, 160), (260, 80, 320, 160)),
    )
    print(os.fspath(clip))


if __name__ == "__main__":  # pragma: no cover
    _main()
