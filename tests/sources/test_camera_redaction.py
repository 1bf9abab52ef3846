"""A password in a camera URL never leaves the process, whatever fails."""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable

import pytest
from pydantic import SecretStr

from pipeline.core.backoff import Backoff
from pipeline.core.config import CameraConfig
from pipeline.core.events import CameraState
from sources.camera import CameraSource
from sources.stream_open import open_container
from sources.stream_spec import open_spec
from tests.support.clips import Clip
from tests.support.ports import free_port
from tests.support.rtsp import RtspServer
from tests.support.silent_server import SilentServer

SECRET = "SECRET"


def _drive(
    config: CameraConfig, *, until_errors: int = 1, during: Callable[[], None] | None = None
) -> list[str]:
    """Run a camera until it has reported ``until_errors`` errors; return every text it made."""
    texts: list[str] = []
    states: list[CameraState] = []
    done = threading.Event()
    online = threading.Event()

    def on_state(state: CameraState) -> None:
        states.append(state)
        if state.online:
            online.set()
        if sum(1 for s in states if s.last_error) >= until_errors:
            done.set()

    camera = CameraSource("cam", config, backoff=Backoff(initial=0.1, cap=0.5))
    try:
        texts.append(repr(camera))
        camera.states.subscribe(on_state)
        hold = camera.connect()
        if during is not None:
            assert online.wait(20), states
            during()
        assert done.wait(20), states
        hold.dispose()
    finally:
        camera.close()
    texts += [s.to_json().decode() for s in states] + [repr(s) for s in states]
    try:
        open_container(open_spec(config))
    except Exception as exc:
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    return texts


def test_secret_never_leaves_on_any_failure_path(
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    silent_server: SilentServer,
    html_port: int,
    rtsp_server_factory: Callable[..., RtspServer],
    h264_clip: Clip,
) -> None:
    caplog.set_level(logging.DEBUG)
    server = rtsp_server_factory({"cam": h264_clip.path}, user="al", password=SECRET)
    fast = {"open_timeout_s": 1.5, "read_timeout_s": 1.5}
    texts: list[str] = []
    # refused connection
    texts += _drive(CameraConfig(url=f"rtsp://al:{SECRET}@127.0.0.1:{free_port()}/x", **fast))
    # accepted and never answered (open timeout)
    texts += _drive(
        CameraConfig(url=f"rtsp://al:{SECRET}@127.0.0.1:{silent_server.port}/x", **fast)
    )
    # HTTP that is not video
    texts += _drive(CameraConfig(url=f"http://al:{SECRET}@127.0.0.1:{html_port}/cam", **fast))
    # wrong path on a real server, right credentials
    texts += _drive(CameraConfig(url=server.url("nope", "al", SECRET), **fast))
    # wrong password (the secret is the wrong one)
    texts += _drive(CameraConfig(url=server.url("cam", "bob", SECRET), **fast))
    # password given separately, right; the server is killed mid-stream
    config = CameraConfig(url=server.url("cam"), username="al", password=SecretStr(SECRET), **fast)
    texts += _drive(config, during=server.kill)
    captured = capfd.readouterr()
    texts += [r.getMessage() for r in caplog.records] + [captured.out, captured.err]
    leaks = [t for t in texts if SECRET in t]
    assert not leaks, leaks[:3]
    assert any("***" in t for t in texts)  # the URLs were there, masked
    assert any("cannot open" in t for t in texts)
