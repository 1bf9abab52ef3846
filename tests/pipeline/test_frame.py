"""Frame scaling is safe when many threads share one decoded frame."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import av
import numpy as np

from pipeline.core.frame import Frame


def make_frame() -> Frame:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    video = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    return Frame(
        camera="c", seq=1, wall_time=0.0, stream_time=None, width=1280, height=720, video=video
    )


def test_to_rgb_scales_with_area_averaging() -> None:
    frame = make_frame()
    small = frame.to_rgb(640, 360)
    assert small.shape == (360, 640, 3)
    assert small.dtype == np.uint8
    assert frame.to_rgb().shape == (720, 1280, 3)


def test_many_threads_scale_one_shared_frame() -> None:
    frame = make_frame()
    sizes = [(854, 480), (160, 90), (640, 360), (320, 180)] * 50

    def scale(size: tuple[int, int]) -> tuple[int, ...]:
        out = frame.reformat(size[0], size[1], format="gray")
        return tuple(out.to_ndarray().shape)

    with ThreadPoolExecutor(max_workers=8) as pool:
        shapes = list(pool.map(scale, sizes))
    assert [s[:2] for s in shapes] == [(h, w) for w, h in sizes]
