import io

import av
import numpy as np
import pytest
import reactivex
from PIL import Image

from operators.encode import encode_jpeg, frame_to_jpeg, scaled_size
from pipeline.core.frame import Frame


@pytest.mark.parametrize(
    ("size", "max_h", "expected"),
    [
        ((1920, 1080), 480, (854, 480)),
        ((1280, 720), 480, (854, 480)),
        ((768, 576), 480, (640, 480)),
        ((640, 360), 480, (640, 360)),
        ((640, 480), 480, (640, 480)),
        ((1080, 1920), 480, (270, 480)),
        ((4000, 10), 5, (2000, 5)),
        ((1, 1000), 10, (2, 10)),
    ],
)
def test_scaled_size(size: tuple[int, int], max_h: int, expected: tuple[int, int]) -> None:
    assert scaled_size(*size, max_h) == expected


def _video_frame(w: int, h: int) -> Frame:
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:, : w // 2] = (200, 30, 30)  # red left half, blue right half
    rgb[:, w // 2 :] = (30, 30, 200)
    vf = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    return Frame(camera="c", seq=1, wall_time=0.0, stream_time=None, width=w, height=h, video=vf)


def _decode(jpeg: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(jpeg))
    im.load()
    return im


def test_encode_video_frame_shrinks_and_keeps_content() -> None:
    im = _decode(encode_jpeg(_video_frame(1920, 1080)))
    assert im.format == "JPEG"
    assert im.size == (854, 480)
    px = np.asarray(im.convert("RGB")).astype(int)
    assert abs(px[240, 100] - (200, 30, 30)).max() < 20
    assert abs(px[240, 750] - (30, 30, 200)).max() < 20


def test_encode_rgb_frame_and_small_frames_keep_size() -> None:
    rgb = np.full((100, 200, 3), 128, np.uint8)
    f = Frame(camera="c", seq=1, wall_time=0.0, stream_time=None, width=200, height=100, rgb=rgb)
    assert _decode(encode_jpeg(f)).size == (200, 100)
    assert _decode(encode_jpeg(f, max_height=50)).size == (100, 50)
    assert _decode(encode_jpeg(_video_frame(320, 240))).size == (320, 240)


def test_quality_changes_size() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    f = Frame(camera="c", seq=1, wall_time=0.0, stream_time=None, width=320, height=240, rgb=rgb)
    assert len(encode_jpeg(f, quality=30)) < len(encode_jpeg(f, quality=95))


@pytest.mark.parametrize(("max_h", "q"), [(0, 85), (480, 0), (480, 101)])
def test_bad_arguments(max_h: int, q: int) -> None:
    with pytest.raises(ValueError):
        frame_to_jpeg(max_h, q)
    with pytest.raises(ValueError):
        encode_jpeg(_video_frame(64, 64), max_h, q)


def test_frame_to_jpeg_operator() -> None:
    f = _video_frame(64, 48)
    out: list[tuple[Frame, bytes]] = []
    reactivex.of(f).pipe(frame_to_jpeg(max_height=24)).subscribe(out.append)
    assert out[0][0] is f
    assert _decode(out[0][1]).size == (32, 24)


def test_threads_sharing_one_decoded_frame_get_the_same_jpeg() -> None:
    # A camera hands one decoded frame to every watch; their looks encode it at once.
    from concurrent.futures import ThreadPoolExecutor

    frame = _video_frame(640, 480)
    expected = encode_jpeg(frame, max_height=240)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: encode_jpeg(frame, max_height=240), range(64)))
    assert all(r == expected for r in results)
    with ThreadPoolExecutor(max_workers=4) as pool:  # no scaling: the RGBX conversion only
        same_size = list(pool.map(lambda _: encode_jpeg(frame, 480), range(16)))
    assert len(set(same_size)) == 1
