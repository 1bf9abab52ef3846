"""Bad input: each camera gets a clear error of its own, and the good camera keeps running."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.core.backoff import Backoff
from pipeline.core.config import CameraConfig
from pipeline.core.events import CameraState
from pipeline.core.frame import Frame
from sources.camera import CameraSource
from sources.stream_open import StreamOpenError, open_container
from sources.stream_spec import open_spec
from tests.support.clips import Clip
from tests.support.ports import free_port
from tests.support.rtsp import RtspServer

SECRET = "Pa55-SECRET"
FAST = {"open_timeout_s": 2.0, "read_timeout_s": 2.0}


def _audio_only(path: Path) -> Path:
    """An .m4a with one AAC stream and no video (a microphone URL, say)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate = 16000
            frame.pts = i * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def _avs2_avi(path: Path) -> Path:
    """An AVI whose video is tagged AVS2 (China's surveillance codec; FFmpeg has no decoder).

    Written as MPEG-4 Part 2 with PyAV, then the two FourCCs in the header (the
    stream header's handler and the bitmap header's compression) are set to
    ``AVS2``, as an NVR exporting AVS2 would write them.
    """
    mpeg4 = path.with_suffix(".mpeg4.avi")
    with av.open(str(mpeg4), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(10):
            image = np.full((120, 160, 3), i * 20, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    data = mpeg4.read_bytes()
    header = data[: data.index(b"movi")]
    assert header.count(b"FMP4") == 2, "the AVI header layout changed"
    path.write_bytes(header.replace(b"FMP4", b"AVS2") + data[len(header) :])
    return path


def _scrambled(clip: Clip, path: Path) -> Path:
    """The clip with a valid MP4 index but random bytes where the H.264 data was."""
    data = bytearray(clip.path.read_bytes())
    start, end = data.index(b"mdat") + 4, data.index(b"moov") - 4
    rnd = random.Random(7)
    data[start:end] = bytes(rnd.randrange(256) for _ in range(end - start))
    path.write_bytes(bytes(data))
    return path


@dataclass
class _Case:
    name: str
    config: CameraConfig
    expect: str  # regular expression the camera's last_error must match


def _errors_of(camera: CameraSource, got: dict[str, str], all_in: threading.Event, n: int) -> None:
    def on_state(state: CameraState) -> None:
        if state.last_error and camera.name not in got:
            got[camera.name] = state.last_error
            if len(got) >= n:
                all_in.set()

    camera.states.subscribe(on_state)


def test_each_bad_input_gets_a_plain_error_and_the_good_camera_keeps_running(
    tmp_path: Path,
    h264_clip: Clip,
    html_port: int,
    rtsp_server_factory: Callable[..., RtspServer],
) -> None:
    server = rtsp_server_factory({"cam": h264_clip.path}, user="al", password=SECRET)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(h264_clip.path.read_bytes()[:2000])
    cases = [
        _Case(
            "refused",
            CameraConfig(url=f"rtsp://al:{SECRET}@127.0.0.1:{free_port()}/cam", **FAST),
            r"connection refused: nothing is listening at 127\.0\.0\.1:\d+",
        ),
        _Case(
            "wrong_path",
            CameraConfig(url=server.url("nope", "al", SECRET), **FAST),
            r"no stream at this path \(404 Not Found\)",
        ),
        _Case(
            "wrong_password",
            CameraConfig(url=server.url("cam", "al", "not-" + SECRET), **FAST),
            r"refused the user name or password \(401",
        ),
        _Case(
            "html",
            CameraConfig(url=f"http://al:{SECRET}@127.0.0.1:{html_port}/video", **FAST),
            r"answer is not a video stream",
        ),
        _Case(
            "truncated",
            CameraConfig(url=str(truncated), **FAST),
            r"not a readable video file \(corrupt, truncated",
        ),
        _Case(
            "scrambled",
            CameraConfig(url=str(_scrambled(h264_clip, tmp_path / "s.mp4")), realtime=False),
            r"the video cannot be decoded",
        ),
        _Case(
            "audio_only",
            CameraConfig(url=str(_audio_only(tmp_path / "mic.m4a"))),
            r"no video stream in the input \(found 1 audio stream\)",
        ),
        _Case(
            "avs2",
            CameraConfig(url=str(_avs2_avi(tmp_path / "nvr.avi"))),
            r"unsupported video codec: this FFmpeg build has no decoder",
        ),
        _Case("missing", CameraConfig(url=str(tmp_path / "gone.mp4")), r": no such file$"),
        _Case("no_device", CameraConfig(url="/dev/video63"), r"/dev/video63: no such device"),
    ]
    bad = [CameraSource(c.name, c.config, backoff=Backoff(initial=0.2, cap=0.5)) for c in cases]
    good = CameraSource("good", CameraConfig(url=str(h264_clip.path), loop=True))
    errors: dict[str, str] = {}
    all_in = threading.Event()
    for camera in bad:
        _errors_of(camera, errors, all_in, len(bad))
    frames: list[Frame] = []
    sub = good.frames().subscribe(frames.append)
    holds = []
    try:
        assert good.latest(timeout=10) is not None  # the good one held by its subscription
        holds = [camera.connect() for camera in bad]
        assert all_in.wait(20), sorted(set(c.name for c in cases) - set(errors))
        before = len(frames)
        failing = {camera.name: camera.state.reconnects for camera in bad}
        frame = good.latest(timeout=5)
        threading.Event().wait(1.0)  # the bad ones keep failing meanwhile
        after = len(frames)
        assert good.state.online and good.state.last_error is None
        assert frame is not None and frame.to_rgb().shape == (240, 320, 3)
    finally:
        for hold in holds:
            hold.dispose()
        sub.dispose()
        for camera in [*bad, good]:
            camera.close()
    assert after > before  # frames kept coming while ten cameras failed
    assert all(n >= 1 for n in failing.values())
    for case in cases:
        text = errors[case.name]
        assert re.search(case.expect, text), (case.name, text)
        assert SECRET not in text, (case.name, text)
        assert "Errno" not in text and "1094995529" not in text, (case.name, text)
        assert text.startswith(("cannot open ", "rtsp://", "/", "http://")), (case.name, text)


def test_open_names_the_rtsp_transport_the_server_refuses(
    rtsp_server_factory: Callable[..., RtspServer], h264_clip: Clip
) -> None:
    server = rtsp_server_factory({"cam": h264_clip.path}, tcp_only=True)
    config = CameraConfig(url=server.url("cam"), transport="udp", **FAST)
    with pytest.raises(StreamOpenError, match=r"does not offer transport 'udp'"):
        open_container(open_spec(config))
