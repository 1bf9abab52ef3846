"""CameraSource on real inputs: a PyAV clip file and the GStreamer RTSP server."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import pytest

from pipeline.core.config import CameraConfig
from pipeline.core.events import CameraState
from pipeline.core.frame import Frame, FrameProvider
from sources.camera import CameraSource
from tests.support.clips import Clip
from tests.support.rtsp import RtspServer


def _collect(camera: CameraSource, fps: float | None, count: int, timeout: float) -> list[Frame]:
    got: list[Frame] = []
    enough = threading.Event()

    def on_next(frame: Frame) -> None:
        got.append(frame)
        if len(got) >= count:
            enough.set()

    sub = camera.frames(fps).subscribe(on_next, on_completed=enough.set)
    try:
        enough.wait(timeout)
    finally:
        sub.dispose()
    return got


def test_is_a_frame_provider(h264_clip: Clip) -> None:
    with CameraSource("porch", CameraConfig(url=str(h264_clip.path))) as camera:
        provider: FrameProvider = camera
        assert provider.name == "porch"
        assert provider.latest(timeout=0.5) is None  # nobody holds it: nothing starts


@pytest.mark.parametrize("decode", ["every_frame", "on_demand", "keyframes"])
def test_file_plays_in_real_time_and_latest_decodes(h264_clip: Clip, decode: str) -> None:
    config = CameraConfig(url=str(h264_clip.path), decode=decode, loop=True)  # type: ignore[arg-type]
    with CameraSource("porch", config) as camera:
        hold = camera.connect()
        first = camera.latest(timeout=10)
        assert first is not None
        assert first.camera == "porch" and first.seq >= 1
        assert (first.width, first.height) == (320, 240)
        assert first.video is not None and first.to_rgb().shape == (240, 320, 3)
        assert camera.state.online
        frames = _collect(camera, None, 5, timeout=10)
        later = camera.latest(timeout=1)
        assert later is not None and later.seq > first.seq
        hold.dispose()
    assert len(frames) == 5
    seqs = [f.seq for f in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    if decode == "keyframes":
        assert all(f.keyframe for f in frames)
        assert all(f.seq % h264_clip.gop == 1 for f in frames)
    else:
        assert seqs == list(range(seqs[0], seqs[0] + 5))


def test_file_as_fast_as_possible_gives_every_frame_then_completes(h264_clip: Clip) -> None:
    config = CameraConfig(url=str(h264_clip.path), realtime=False, decode="every_frame")
    with CameraSource("fast", config) as camera:
        frames = _collect(camera, None, 10_000, timeout=20)
        assert camera.state.last_error == "end of file"
    assert [f.seq for f in frames] == list(range(1, h264_clip.frame_count + 1))
    times = [f.stream_time for f in frames]
    assert times == pytest.approx([h264_clip.frame_time(i) for i in range(h264_clip.frame_count)])


def test_loop_keeps_stream_time_increasing(clip_factory: Callable[..., Clip]) -> None:
    clip = clip_factory(seconds=1.0, fps=10, gop=5)
    config = CameraConfig(url=str(clip.path), realtime=False, loop=True, decode="on_demand")
    with CameraSource("loop", config) as camera:
        frames = _collect(camera, None, 25, timeout=20)
    assert len(frames) >= 25
    times = [f.stream_time for f in frames]
    assert all(t is not None for t in times)
    assert all(b > a for a, b in itertools.pairwise(times))  # type: ignore[operator]


def test_fps_request_samples_stream_time(clip_factory: Callable[..., Clip]) -> None:
    clip = clip_factory(seconds=3.0, fps=10, gop=10)
    config = CameraConfig(url=str(clip.path), realtime=False, decode="on_demand")
    with CameraSource("sampled", config) as camera:
        frames = _collect(camera, 2.0, 10_000, timeout=20)
    times = [f.stream_time for f in frames]
    assert times == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])


def test_rtsp_stream_gives_frames_and_goes_online(rtsp_server: RtspServer) -> None:
    config = CameraConfig(url=rtsp_server.url(), open_timeout_s=5, read_timeout_s=5)
    states: list[CameraState] = []
    with CameraSource("rtsp", config) as camera:
        camera.states.subscribe(states.append)
        frames = _collect(camera, None, 10, timeout=20)
        hold = camera.connect()
        latest = camera.latest(timeout=10)
        hold.dispose()
    assert len(frames) >= 10  # a few more may arrive before the unsubscribe
    assert latest is not None and latest.to_rgb().shape == (240, 320, 3)
    assert [f.seq for f in frames] == sorted(f.seq for f in frames)
    assert any(s.online for s in states)
    assert not states[-1].online  # closed
