"""Opening is always bounded: a server that accepts and never answers, a refused port."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from pipeline.core.backoff import Backoff
from pipeline.core.config import CameraConfig
from pipeline.core.events import CameraState
from sources.camera import CameraSource
from sources.stream_open import StreamOpenError, open_container
from sources.stream_spec import open_spec
from tests.support.ports import free_port
from tests.support.silent_server import SilentServer

OPEN_S = 1.5


@pytest.mark.parametrize("scheme", ["rtsp", "http"])
def test_open_on_a_silent_server_fails_within_the_timeout(
    silent_server: SilentServer, scheme: str
) -> None:
    config = CameraConfig(
        url=f"{scheme}://127.0.0.1:{silent_server.port}/live",
        open_timeout_s=OPEN_S,
        read_timeout_s=OPEN_S,
    )
    start = time.monotonic()
    with pytest.raises(StreamOpenError, match="cannot open"):
        open_container(open_spec(config))
    assert time.monotonic() - start < OPEN_S + 1.0
    assert silent_server.accepted  # it did get as far as the TCP connection


def test_camera_on_a_silent_server_reports_offline_within_the_timeout(
    silent_server: SilentServer,
) -> None:
    config = CameraConfig(
        url=f"rtsp://127.0.0.1:{silent_server.port}/live",
        open_timeout_s=OPEN_S,
        read_timeout_s=OPEN_S,
    )
    failed = threading.Event()
    errors: list[CameraState] = []

    def on_state(state: CameraState) -> None:
        if state.last_error:
            errors.append(state)
            failed.set()

    with CameraSource("hung", config) as camera:
        camera.states.subscribe(on_state)
        start = time.monotonic()
        hold = camera.connect()
        assert failed.wait(OPEN_S + 1.0)
        elapsed = time.monotonic() - start
        assert camera.latest(timeout=0.1) is None
        hold.dispose()
    assert elapsed < OPEN_S + 1.0
    assert errors[0].reconnects == 1 and not errors[0].online
    assert "cannot open rtsp://127.0.0.1" in (errors[0].last_error or "")


def test_refused_port_retries_with_growing_delays() -> None:
    port = free_port()
    config = CameraConfig(url=f"rtsp://127.0.0.1:{port}/x", open_timeout_s=1, read_timeout_s=1)

    times: list[float] = []
    three = threading.Event()

    def on_state(state: CameraState) -> None:
        if state.last_error:
            times.append(time.monotonic())
            if len(times) >= 3:
                three.set()

    backoff = Backoff(initial=0.2, cap=5.0, jitter=0.0)
    with CameraSource("refused", config, backoff=backoff) as camera:
        camera.states.subscribe(on_state)
        hold = camera.connect()
        assert three.wait(10)
        hold.dispose()
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4  # never a zero-delay loop
