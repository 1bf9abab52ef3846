"""Frame subscribers that take keyframes only: one decode per GOP, not every frame."""

from __future__ import annotations

import threading

from reactivex.scheduler import HistoricalScheduler

from pipeline.app.replay.clip_reader import ClipReader
from pipeline.core.config import CameraConfig
from pipeline.core.frame import Frame
from sources.camera import CameraSource
from sources.camera_stream import full_decode_hint
from tests.support.clips import Clip


def test_a_clip_gives_keyframes_only_each_decoded_alone(h264_clip: Clip) -> None:
    # 4 s at 10 fps, a keyframe every 10 frames: 4 keyframes, 4 decodes (not 40).
    sched = HistoricalScheduler()
    got: list[Frame] = []
    with ClipReader(h264_clip.path, scheduler=sched) as clip:
        sub = clip.frames(5, keyframes=True).subscribe(got.append)
        clip.start()
        sched.advance_to(clip.at(10.0))
        sub.dispose()
        decoded = clip.decoded
    assert [f.stream_time for f in got] == [0.0, 1.0, 2.0, 3.0]
    assert all(f.keyframe for f in got)
    assert decoded == 4


def test_every_frame_at_5_fps_decodes_the_whole_clip(h264_clip: Clip) -> None:
    """The contrast (the check above can fail): 5 fps of a 10 fps stream decodes it all."""
    sched = HistoricalScheduler()
    got: list[Frame] = []
    with ClipReader(h264_clip.path, scheduler=sched) as clip:
        sub = clip.frames(5).subscribe(got.append)
        clip.start()
        sched.advance_to(clip.at(10.0))
        sub.dispose()
        decoded = clip.decoded
    assert len(got) == 20
    assert decoded >= 30  # nearly every frame (P-frames need the ones before them)


def test_a_file_camera_gives_keyframes_only(h264_clip: Clip) -> None:
    camera = CameraSource("kf", CameraConfig(url=str(h264_clip.path), realtime=False))
    got: list[Frame] = []
    done = threading.Event()
    try:
        sub = camera.frames(None, keyframes=True).subscribe(got.append, on_completed=done.set)
        assert done.wait(30)
        sub.dispose()
    finally:
        camera.close()
    assert len(got) == 4 and all(f.keyframe for f in got)
    assert camera.stats().frames_decoded <= 5  # the first picture may be decoded once more


def test_a_file_camera_kept_current_gives_its_keyframe_taps_every_frame(h264_clip: Clip) -> None:
    """Kept current, every frame is decoded anyway: a keyframe tap takes them all (at its pace)."""
    config = CameraConfig(url=str(h264_clip.path), realtime=False, keep_current_share=1.0)
    camera = CameraSource("kf", config)
    got: list[Frame] = []
    done = threading.Event()
    try:
        camera.keep_current(60.0)  # far longer than the file takes to read
        sub = camera.frames(None, keyframes=True).subscribe(got.append, on_completed=done.set)
        assert done.wait(30)
        sub.dispose()
    finally:
        camera.close()
    assert len(got) == 40 and sum(f.keyframe for f in got) == 4


def test_a_detector_decoding_every_frame_of_an_hd_stream_gets_a_hint() -> None:
    motion = CameraConfig(url="rtsp://cam/main", detect={"type": "motion"})
    hint = full_decode_hint(motion, 1920, 1080)
    assert hint is not None and "1920x1080" in hint and "keyframes = true" in hint
    assert full_decode_hint(motion, 1280, 720) is None  # small enough to decode in full
    keyed = CameraConfig(url="rtsp://cam/main", detect={"type": "motion", "keyframes": True})
    assert full_decode_hint(keyed, 3840, 2160) is None
    assert full_decode_hint(CameraConfig(url="rtsp://cam/main"), 3840, 2160) is None
