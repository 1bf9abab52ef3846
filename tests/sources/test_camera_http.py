"""HTTP inputs: MPEG-TS that stalls mid-stream, MJPEG from ffmpeg, HLS from ffmpeg's segmenter."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.core.backoff import Backoff
from pipeline.core.config import CameraConfig
from pipeline.core.events import CameraState
from sources.camera import CameraSource
from tests.support.clips import Clip
from tests.support.ports import free_port

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


def _serve(handler: Callable[..., BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


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
    clip_factory: Callable[..., Clip],
) -> None:
    clip = clip_factory("live.ts", seconds=3.0, fps=10, gop=10)
    data = clip.path.read_bytes()
    stalled_at: list[float] = []
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "video/mp2t")
            self.end_headers()
            self.wfile.write(data[: len(data) // 2 // 188 * 188])
            self.wfile.flush()
            stalled_at.append(time.monotonic())
            release.wait(30)  # the connection stays open, silent

        def log_message(self, format: str, *args: object) -> None:
            pass

    for server in _serve(Handler):
        watch = _Watch()
        camera = _camera(f"http://127.0.0.1:{server.server_address[1]}/live.ts")
        try:
            camera.states.subscribe(watch)
            hold = camera.connect()
            watch.wait(lambda s: s.online, timeout=10)
            detected = watch.wait(lambda s: s.last_error is not None, timeout=10)
            hold.dispose()
        finally:
            release.set()
            camera.close()
    assert detected - stalled_at[0] < READ_S + 1.0


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


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


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
    hls_dir: tuple[Path, subprocess.Popen[bytes]],
) -> None:
    folder, segmenter = hls_dir
    deadline = time.monotonic() + 15
    while len(list(folder.glob("*.ts"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    handler = functools.partial(_Quiet, directory=str(folder))
    for server in _serve(handler):  # type: ignore[arg-type]
        watch = _Watch()
        camera = _camera(f"http://127.0.0.1:{server.server_address[1]}/live.m3u8")
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
