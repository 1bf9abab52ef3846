"""A stream that stops sending: noticed within stall_timeout_s, and said in plain words."""

from __future__ import annotations

import errno
import re
import time
from collections.abc import Callable

import av.error
import pytest

from pipeline.core.backoff import Backoff
from pipeline.core.config import CameraConfig
from sources.camera import CameraSource
from sources.stream_errors import explain_read_error
from sources.stream_spec import open_spec
from tests.support.rtsp import RtspServer
from tests.support.waiting import wait_until

STALL_S = 4.0
SLACK_S = 3.0  # a loaded machine; the issue allows this much


def _until(ok: Callable[[], bool], timeout: float, what: str) -> float:
    """Wait until ``ok`` holds; return the monotonic time it was seen to."""
    wait_until(ok, timeout, what)
    return time.monotonic()


def test_a_paused_rtsp_server_is_noticed_within_the_stall_timeout(
    rtsp_server: RtspServer,
) -> None:
    # read_timeout_s keeps its default (10 s): the stall timeout alone must bound the wait.
    config = CameraConfig(url=rtsp_server.url(), open_timeout_s=5, stall_timeout_s=STALL_S)
    camera = CameraSource("gate", config, backoff=Backoff(initial=30.0, cap=30.0))
    hold = camera.connect()
    try:
        _until(lambda: camera.state.online, 20, "picture")
        assert camera.latest(timeout=5) is not None
        rtsp_server.pause()
        paused = time.monotonic()
        try:
            noticed = _until(lambda: not camera.state.online, STALL_S + SLACK_S + 20, "stall")
        finally:
            rtsp_server.resume()
        error = camera.state.last_error
    finally:
        hold.dispose()
        camera.close()
    assert noticed - paused <= STALL_S + SLACK_S, noticed - paused
    assert error is not None
    said = re.fullmatch(rf"{re.escape(rtsp_server.url())}: no video for ([0-9.]+) s", error)
    assert said is not None, error  # plain words: no "ExitError", no errno
    assert STALL_S <= float(said.group(1)) <= STALL_S + SLACK_S


@pytest.mark.parametrize(
    ("exc", "reason", "timed_out"),
    [
        (av.error.ExitError(1414092869, "Immediate exit requested"), "no video for 10 s", True),
        (TimeoutError(errno.ETIMEDOUT, "Connection timed out"), "no video for 10 s", True),
        (
            ConnectionResetError(errno.ECONNRESET, "reset"),
            "the server closed the connection",
            False,
        ),
        (BrokenPipeError(errno.EPIPE, "Broken pipe"), "the server closed the connection", False),
        (
            av.error.InvalidDataError(1094995529, "Invalid data found"),
            "the stream sent data that is not valid video (corrupt or cut off)",
            False,
        ),
        (
            OSError(errno.EIO, "Input/output error"),
            "input/output error (did the connection drop?)",
            False,
        ),
        (OSError(errno.ENOMEM, "Cannot allocate memory"), "cannot allocate memory", False),
    ],
)
def test_read_errors_are_plain_words(exc: BaseException, reason: str, timed_out: bool) -> None:
    spec = open_spec(CameraConfig(url="rtsp://al:s3cret@127.0.0.1:8554/live"))
    said, stalled = explain_read_error(exc, spec, idle_s=10.02)
    assert (said, stalled) == (reason, timed_out)
    assert "Errno" not in said and "s3cret" not in said


def test_the_read_timeout_is_capped_at_the_stall_timeout() -> None:
    spec = open_spec(CameraConfig(url="rtsp://127.0.0.1:8554/live", stall_timeout_s=4))
    assert spec.read_timeout_s == 4.0  # a silent stream is noticed at the stall timeout
    assert open_spec(CameraConfig(url="rtsp://127.0.0.1:8554/live")).read_timeout_s == 10.0
