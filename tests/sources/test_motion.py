import dataclasses
import itertools
import threading
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
import reactivex
from reactivex.testing import ReactiveTest, TestScheduler

from pipeline.core.config import CameraConfig, MotionDetectConfig
from pipeline.core.detection import Detection
from pipeline.core.frame import Frame
from sources.camera import CameraSource
from sources.motion import MotionDetector, detect_motion, motion_boxes, motion_detections
from tests.support.clips import Clip, linear_path, make_clip

_CROSSING = ((0, 90, 40, 150), (280, 90, 320, 150))


def _decode(path: Path) -> list[Frame]:
    out: list[Frame] = []
    with av.open(str(path)) as c:
        for i, vf in enumerate(c.decode(video=0)):
            out.append(
                Frame(
                    camera="cam",
                    seq=i,
                    wall_time=i / 10,
                    stream_time=None,
                    width=vf.width,
                    height=vf.height,
                    video=vf,
                )
            )
    return out


def test_motion_on_a_real_clip_follows_the_moving_box(tmp_path: Path) -> None:
    clip = make_clip(
        tmp_path / "walk.mp4",
        seconds=3,
        fps=10,
        width=320,
        height=240,
        shapes=linear_path(1.0, 2.5, (20, 80, 60, 160), (200, 80, 240, 160)),
    )
    det = MotionDetector(MotionDetectConfig(width=160, min_area=0.005))
    per_frame = [det.detect(f) for f in _decode(clip.path)]
    # Still frames before the box shows up: no motion.
    assert all(not d for d in per_frame[1:10])
    moving = per_frame[12:24]
    assert all(moving), "each frame with a moving box has motion"
    for i, dets in enumerate(moving, start=12):
        ((gx1, gy1, gx2, gy2),) = clip.boxes[i]
        d = max(dets, key=lambda d: d.box.area)
        assert d.label == "motion" and d.source == "motion" and d.camera == "cam"
        assert d.frame_size == (320, 240)
        # The union of the old and new box positions, within a few pixels.
        assert gy1 - 6 <= d.box.y1 and d.box.y2 <= gy2 + 6
        assert d.box.x1 <= gx2 and d.box.x2 >= gx1
        assert 0 < d.score <= 1


def _rgb_frame(seq: int, box: tuple[int, int, int, int] | None) -> Frame:
    rgb = np.full((120, 160, 3), 60, np.uint8)
    if box:
        x1, y1, x2, y2 = box
        rgb[y1:y2, x1:x2] = 220
    return Frame(
        camera="c", seq=seq, wall_time=float(seq), stream_time=None, width=160, height=120, rgb=rgb
    )


def test_threshold_min_area_and_size_change() -> None:
    det = MotionDetector(MotionDetectConfig(width=160, min_area=0.01, threshold=25))
    assert det.detect(_rgb_frame(0, None)) == []
    # 4x4 px change is 0.08 % of the frame: below min_area.
    assert det.detect(_rgb_frame(1, (10, 10, 14, 14))) == []
    boxes = det.detect(_rgb_frame(2, (50, 40, 90, 100)))
    assert len(boxes) == 1  # the vanished small box is below min_area too
    big = max(boxes, key=lambda d: d.box.area)
    assert (big.box.x1, big.box.y1, big.box.x2, big.box.y2) == (50, 40, 90, 100)
    # A frame of a new size only resets the reference.
    other = Frame(
        camera="c",
        seq=3,
        wall_time=3.0,
        stream_time=None,
        width=80,
        height=60,
        rgb=np.zeros((60, 80, 3), np.uint8),
    )
    assert det.detect(other) == []


def test_small_grey_change_below_threshold_is_ignored() -> None:
    det = MotionDetector(MotionDetectConfig(width=160, threshold=50))
    a = _rgb_frame(0, None)
    rgb = np.full((120, 160, 3), 90, np.uint8)  # +30 grey levels everywhere
    b = Frame(camera="c", seq=1, wall_time=1.0, stream_time=None, width=160, height=120, rgb=rgb)
    det.detect(a)
    assert det.detect(b) == []


@pytest.mark.parametrize(
    ("pixels", "expected"),
    [
        ([], 0),
        ([(5, 5)], 1),
        ([(5, 5), (5, 9)], 1),  # one empty cell between: bridged
        ([(5, 5), (5, 30)], 2),
    ],
)
def test_motion_boxes_grouping(pixels: list[tuple[int, int]], expected: int) -> None:
    m = np.zeros((40, 40), bool)
    for y, x in pixels:
        m[y, x] = True
    assert len(motion_boxes(m, 0.0)) == expected


def test_operator_limits_rate_on_virtual_time() -> None:
    s = TestScheduler()
    on_next = ReactiveTest.on_next
    # Ten frames at 0.1 s intervals (1 tick = 1 s in TestScheduler floats: use seconds),
    # carrying their stream times: the rate counts the frames' own time.
    frames = [
        dataclasses.replace(_rgb_frame(i, (10 + 10 * i, 20, 30 + 10 * i, 80)), stream_time=i * 0.1)
        for i in range(10)
    ]
    xs = s.create_hot_observable([on_next(200.0 + i * 0.1, f) for i, f in enumerate(frames)])

    def create():  # type: ignore[no-untyped-def]
        return xs.pipe(detect_motion(MotionDetectConfig(fps=5, width=160), scheduler=s))

    results = s.start(create, created=0.0, subscribed=100.0, disposed=1000.0)
    seen = [m.value.value for m in results.messages]
    # At 5 fps frames 0, 2, 4, 6, 8 are analysed; the first only sets the reference.
    assert sorted({round(d.time) for d in seen}) == [2, 4, 6, 8]


def test_bad_config_type() -> None:
    with pytest.raises(ValueError):
        detect_motion("motion")  # type: ignore[arg-type]


def test_motion_on_a_file_decoded_faster_than_real_time_analyses_at_its_frame_rate(
    clip_factory: Callable[..., Clip],
) -> None:
    # 6 s of video, a box moving all along, read as fast as the CPU allows (an embedded
    # stream, realtime = false): at 5 fps of *video* time that is 30 frames analysed,
    # the first one the reference. Paced on the wall clock it was one or two.
    clip = clip_factory(seconds=6.0, fps=10, gop=10, shapes=linear_path(0.0, 6.0, *_CROSSING))
    ticks = itertools.count()
    config = CameraConfig(url=str(clip.path), realtime=False, decode="on_demand")
    with CameraSource("yard", config, clock=lambda: float(next(ticks))) as camera:
        found: list[Detection] = []
        done = threading.Event()
        motion_detections(camera.frames(), MotionDetectConfig(fps=5, width=160)).subscribe(
            found.append, on_completed=done.set
        )
        assert done.wait(30), "the file never ended"
    analysed = sorted({d.time for d in found})  # one clock tick per packet: one time per frame
    assert len(analysed) == 29


def test_motion_paces_on_stream_time_not_on_arrival() -> None:
    # Frames 0.1 s apart in the stream that arrived 1 ms apart (decoded from a file).
    frames = [
        Frame(camera="c", seq=i, wall_time=1000 + i / 1000, stream_time=i * 0.1, width=160,
              height=120, rgb=_rgb_frame(i, (10 + 10 * i, 20, 30 + 10 * i, 80)).rgb)
        for i in range(10)
    ]  # fmt: skip
    found: list[Detection] = []
    reactivex.from_iterable(frames).pipe(
        detect_motion(MotionDetectConfig(fps=5, width=160))
    ).subscribe(found.append)
    # Frames 0, 2, 4, 6, 8 analysed; the first sets the reference.
    assert sorted({round((d.time - 1000) * 1000) for d in found}) == [2, 4, 6, 8]
