"""More inputs: RTMP from ffmpeg, RTSP over UDP, V4L2 devices and an explicit input format."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable

import pytest

from pipeline.core.backoff import Backoff
from pipeline.core.config import CameraConfig
from pipeline.core.events import CameraState
from sources.camera import CameraSource
from sources.stream_open import StreamOpenError, open_container
from sources.stream_spec import open_spec
from tests.support.clips import Clip
from tests.support.ports import free_port
from tests.support.rtsp import RtspServer


def _online_with_a_picture(camera: CameraSource, timeout: float) -> list[CameraState]:
    states: list[CameraState] = []
    online = threading.Event()

    def on_state(state: CameraState) -> None:
        states.append(state)
        if state.online:
            online.set()

    camera.states.subscribe(on_state)
    hold = camera.connect()
    try:
        assert online.wait(timeout), states
        frame = camera.latest(timeout=5)
        assert frame is not None and frame.to_rgb().shape == (240, 320, 3)
        later = camera.latest(timeout=5)
        assert later is not None
    finally:
        hold.dispose()
    return states


def test_rtmp_from_ffmpeg_gives_frames(h264_clip: Clip) -> None:
    url = f"rtmp://127.0.0.1:{free_port()}/live/cam"
    server = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop",
         "-1", "-i", str(h264_clip.path), "-c", "copy", "-f", "flv", "-listen", "1", url],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    config = CameraConfig(url=url, open_timeout_s=5, read_timeout_s=5)
    assert open_spec(config).options == {"rw_timeout": "5000000", "analyzeduration": "1000000"}
    # ffmpeg serves one client: retry until it listens instead of probing the port.
    camera = CameraSource("rtmp", config, backoff=Backoff(initial=0.2, cap=0.3))
    try:
        _online_with_a_picture(camera, timeout=15)
    finally:
        camera.close()
        if server.poll() is None:
            os.kill(server.pid, signal.SIGKILL)
        server.wait(10)


def test_rtsp_over_udp_gives_frames(
    rtsp_server_factory: Callable[..., RtspServer], h264_clip: Clip
) -> None:
    server = rtsp_server_factory({"cam": h264_clip.path})
    config = CameraConfig(url=server.url("cam"), transport="udp", open_timeout_s=5)
    assert open_spec(config).options["rtsp_transport"] == "udp"
    camera = CameraSource("udp", config)
    try:
        states = _online_with_a_picture(camera, timeout=15)
    finally:
        camera.close()
    assert not any(s.last_error for s in states), states


@pytest.mark.parametrize(
    ("url", "target"),
    [("/dev/video0", "/dev/video0"), ("v4l2:///dev/video2", "/dev/video2")],
)
def test_v4l2_devices_are_opened_with_the_v4l2_format(url: str, target: str) -> None:
    spec = open_spec(CameraConfig(url=url))
    assert (spec.format, spec.target, spec.live) == ("v4l2", target, True)
    assert spec.options == {}  # no network timeouts on a device


def test_a_missing_v4l2_device_says_no_such_device() -> None:
    missing = next(
        f"/dev/video{n}" for n in range(63, 0, -1) if not os.path.exists(f"/dev/video{n}")
    )
    with pytest.raises(StreamOpenError) as info:
        open_container(open_spec(CameraConfig(url=missing, open_timeout_s=2)))
    assert str(info.value).startswith(f"cannot open {missing}: no such device")
    assert "Errno" not in str(info.value)


def test_format_field_and_the_older_options_format() -> None:
    assert open_spec(CameraConfig(url="http://cam.lan/video")).format is None
    field = CameraConfig(url="http://cam.lan/video", format="mpjpeg")
    legacy = CameraConfig(url="http://cam.lan/video", options={"format": "mpjpeg"})
    both = CameraConfig(url="http://cam.lan/video", format="hls", options={"format": "mpjpeg"})
    assert open_spec(field).format == "mpjpeg"
    assert open_spec(legacy).format == "mpjpeg"
    assert "format" not in open_spec(legacy).options  # not also passed as an FFmpeg option
    assert open_spec(both).format == "hls"
    with pytest.raises(ValueError, match="format"):
        CameraConfig(url="http://cam.lan/video", format="mp jpeg")


def test_a_wrong_or_unknown_format_is_named_in_the_error(h264_clip: Clip) -> None:
    wrong = CameraConfig(url=str(h264_clip.path), format="mpjpeg")
    with pytest.raises(StreamOpenError, match="read as format 'mpjpeg': is that the right one"):
        open_container(open_spec(wrong))
    unknown = CameraConfig(url=str(h264_clip.path), format="nosuchformat")
    with pytest.raises(StreamOpenError, match="unknown input format 'nosuchformat'"):
        open_container(open_spec(unknown))


def test_mjpeg_with_an_explicit_format(h264_clip: Clip) -> None:
    url = f"http://127.0.0.1:{free_port()}/cam.mjpg"
    server = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop",
         "-1", "-i", str(h264_clip.path), "-an", "-c:v", "mjpeg", "-q:v", "5",
         "-f", "mpjpeg", "-listen", "1", url],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    config = CameraConfig(url=url, format="mpjpeg", open_timeout_s=5, read_timeout_s=5)
    camera = CameraSource("mjpeg", config, backoff=Backoff(initial=0.2, cap=0.3))
    try:
        _online_with_a_picture(camera, timeout=15)
    finally:
        camera.close()
        if server.poll() is None:
            os.kill(server.pid, signal.SIGKILL)
        server.wait(10)
