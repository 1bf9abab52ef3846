"""HTTP inputs: MPEG-TS that stalls mid-stream, MJPEG from ffmpeg, HLS from ffmpeg's segmenter."""

from __future__ import annotations

import mimetypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline.core.backoff import Backoff
from pipeline.core.config import CameraConfig
from pipeline.core.events import CameraState
from sources.camera import CameraSource
from tests.support.clips import Clip
from tests.support.http_receiver import HttpReceiver, Received, Reply
from tests.support.ports import free_port
from tests.support.waiting import wait_until

READ_S = 1.5


class _Watch:
    """Record a camera's states with the monotonic time each arrived."""

    def __init__(self) -> None:
        self.items: list[tuple[float, CameraState]] = []
        self.cond = threading.Condition()

    def __call__(self, state: CameraState) -> None:
        with self.cond:
            self.items.append((time.monotonic(), state))
            self.cond.notify_all()

    def wait(
        self, pred: Callable[[CameraState], bool], timeout: float, after: float = 0.0
    ) -> float:
        """Wait for a state matching ``pred`` that arrived after ``after``; return its time."""

        def found() -> float | None:
            return next((t for t, s in self.items if t >= after and pred(s)), None)

        with self.cond:
            assert self.cond.wait_for(lambda: found() is not None, timeout), [
                s for _, s in self.items
            ]
            t = found()
            assert t is not None
            return t


def _camera(url: str, retry_s: float = 5.0) -> CameraSource:
    config = CameraConfig(url=url, open_timeout_s=5, read_timeout_s=READ_S, stall_timeout_s=5)
    return CameraSource("http", config, backoff=Backoff(initial=retry_s, cap=retry_s))


def _ffmpeg(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _end(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
    proc.wait(10)


def test_mpegts_over_http_that_stalls_is_detected_within_the_read_timeout(
    clip_factory: Callable[..., Clip], receiver_factory: Callable[..., HttpReceiver]
) -> None:
    clip = clip_factory("live.ts", seconds=3.0, fps=10, gop=10)
    data = clip.path.read_bytes()
    # Half the stream, then the connection stays open, silent (until the server stops).
    half = Reply(
        headers={"Content-Type": "video/mp2t"},
        body=data[: len(data) // 2 // 188 * 188],
        content_length=False,
        stall_s=30,
    )
    server = receiver_factory(default=half)
    watch = _Watch()
    camera = _camera(server.url_for("/live.ts"))
    try:
        camera.states.subscribe(watch)
        hold = camera.connect()
        watch.wait(lambda s: s.online, timeout=10)
        detected = watch.wait(lambda s: s.last_error is not None, timeout=10)
        hold.dispose()
    finally:
        server.stop()
        camera.close()
    assert detected - server.all()[0].at < READ_S + 1.0


def test_mjpeg_from_ffmpeg_gives_frames_and_a_stall_is_detected(h264_clip: Clip) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/cam.mjpg"
    proc = _ffmpeg(
        "-re", "-stream_loop", "-1", "-i", str(h264_clip.path), "-an", "-c:v", "mjpeg",
        "-q:v", "5", "-f", "mpjpeg", "-listen", "1", url,
    )  # fmt: skip
    watch = _Watch()
    camera = _camera(url, retry_s=0.3)  # ffmpeg serves one client: no port probing
    try:
        camera.states.subscribe(watch)
        hold = camera.connect()
        watch.wait(lambda s: s.online, timeout=10)
        frame = camera.latest(timeout=5)
        assert frame is not None and (frame.width, frame.height) == (320, 240)
        os.kill(proc.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        detected = watch.wait(lambda s: s.last_error is not None, timeout=10, after=stopped)
        hold.dispose()
    finally:
        camera.close()
        _end(proc)
    assert detected - stopped < READ_S + 1.0


def _files(folder: Path) -> Callable[[Received], Reply]:
    """Answer each GET with the file of that name in ``folder`` (404 when it is gone)."""

    def respond(request: Received) -> Reply:
        name = request.path.partition("?")[0].lstrip("/")
        try:
            body = (folder / name).read_bytes()
        except OSError:
            return Reply(404)
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return Reply(headers={"Content-Type": kind}, body=body)

    return respond


@pytest.fixture
def hls_dir(tmp_path: Path, h264_clip: Clip) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    folder = tmp_path / "hls"
    folder.mkdir()
    proc = _ffmpeg(
        "-re", "-stream_loop", "-1", "-i", str(h264_clip.path), "-c", "copy", "-f", "hls",
        "-hls_time", "1", "-hls_list_size", "3", "-hls_flags", "delete_segments",
        str(folder / "live.m3u8"),
    )  # fmt: skip
    try:
        yield folder, proc
    finally:
        _end(proc)


def test_hls_from_ffmpeg_gives_frames_and_a_dead_segmenter_is_detected(
    hls_dir: tuple[Path, subprocess.Popen[bytes]], receiver_factory: Callable[..., HttpReceiver]
) -> None:
    folder, segmenter = hls_dir
    wait_until(lambda: len(list(folder.glob("*.ts"))) >= 2, 15, "two HLS segments")
    server = receiver_factory(respond=_files(folder))
    watch = _Watch()
    camera = _camera(server.url_for("/live.m3u8"))
    try:
        camera.states.subscribe(watch)
        hold = camera.connect()
        watch.wait(lambda s: s.online, timeout=15)
        assert camera.latest(timeout=5) is not None
        segmenter.kill()
        killed = time.monotonic()
        detected = watch.wait(lambda s: s.last_error is not None, timeout=20)
        hold.dispose()
    finally:
        camera.close()
    # The playlist still lists up to 3 s of segments it may read first.
    assert detected - killed < READ_S + 3 + 1.0
