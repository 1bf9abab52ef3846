"""``latest(timeout)`` waits for a decoded picture, not merely for the first keyframe packet.

An H.264 stream with B-frames gives its first picture a few packets after the
keyframe (decoder delay). At 2 fps that is about 1.5 s of real time in which
the keyframe is in but no picture is out: a ``latest(10)`` called then must
wait for the picture instead of answering ``None``. (The RTSP fixture encodes
with ``tune=zerolatency``, no B-frames: there it guards against regressions
only; the file clips reproduce the bug.)
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from pipeline.core.config import CameraConfig
from sources.camera import CameraSource
from tests.support.clips import Clip
from tests.support.rtsp import RtspServer


@pytest.fixture
def delayed_clip(clip_factory: Callable[..., Clip]) -> Clip:
    """2 fps, two B-frames: the decoder's first picture comes out about 1.5 s after the keyframe."""
    return clip_factory(seconds=4.0, fps=2, gop=8, bframes=2)


# (``keyframes`` drains the decoder for each keyframe: it has no such delay.)
@pytest.mark.parametrize("decode", ["on_demand", "every_frame"])
def test_first_latest_on_a_fresh_file_camera_gets_a_frame(delayed_clip: Clip, decode: str) -> None:
    config = CameraConfig(url=str(delayed_clip.path), decode=decode, loop=True)  # type: ignore[arg-type]
    with CameraSource("porch", config) as camera:
        hold = camera.connect()
        # Let the keyframe packet arrive; the first picture is about 1.5 s away
        # (real-time pacing), so the camera cannot be online yet.
        time.sleep(0.3)
        assert not camera.state.online
        frame = camera.latest(timeout=10)
        hold.dispose()
    assert frame is not None
    assert frame.camera == "porch" and (frame.width, frame.height) == (320, 240)
    assert frame.to_rgb().shape == (240, 320, 3)


def test_every_latest_gets_a_frame_across_loops(clip_factory: Callable[..., Clip]) -> None:
    # A looped file reopens (a new decoder, a new decoder delay) every 3 s; at
    # 2 fps the first picture of each pass comes 1 s after its keyframe.
    clip = clip_factory(seconds=3.0, fps=2, gop=3, bframes=2)
    config = CameraConfig(url=str(clip.path), decode="on_demand", loop=True)
    with CameraSource("porch", config) as camera:
        hold = camera.connect()
        got = []
        for _ in range(4):
            got.append(camera.latest(timeout=10))
            time.sleep(0.7)
        hold.dispose()
    assert all(f is not None for f in got), [f and f.seq for f in got]


def test_first_latest_on_a_fresh_rtsp_camera_gets_a_frame(rtsp_server: RtspServer) -> None:
    config = CameraConfig(url=rtsp_server.url(), open_timeout_s=5, read_timeout_s=5)
    with CameraSource("rtsp", config) as camera:
        hold = camera.connect()
        frame = camera.latest(timeout=10)
        hold.dispose()
    assert frame is not None and frame.to_rgb().shape == (240, 320, 3)


def test_latest_without_a_timeout_does_not_wait(delayed_clip: Clip) -> None:
    config = CameraConfig(url=str(delayed_clip.path), loop=True)
    with CameraSource("porch", config) as camera:
        hold = camera.connect()
        assert camera.latest() is None  # the camera is still opening: no wait, no frame
        assert camera.latest(timeout=10) is not None
        assert camera.latest() is not None  # now there is a picture
        hold.dispose()
