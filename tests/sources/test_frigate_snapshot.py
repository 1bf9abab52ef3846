"""FrigateSnapshotSource against a real HTTP server that speaks Frigate's latest.jpg API."""

from __future__ import annotations

import logging
import threading

import pytest

from pipeline.core.config import CameraConfig
from pipeline.core.events import CameraState
from pipeline.core.frame import Frame
from sources.camera import CameraSource
from sources.camera_factory import make_camera
from sources.frigate_snapshot import FrigateSnapshotSource, snapshot_url
from tests.support.frigate_api import FrigateApi


def test_snapshot_url() -> None:
    assert snapshot_url("frigate://nvr:5000/porch?h=480") == (
        "http://nvr:5000/api/porch/latest.jpg?h=480",
        None,
    )
    assert snapshot_url("frigate://nvr/porch?tls=1")[0] == "https://nvr/api/porch/latest.jpg"
    with pytest.raises(ValueError, match="one camera"):
        snapshot_url("frigate://nvr:5000/")


def test_latest_and_frames_from_frigate(frigate: FrigateApi) -> None:
    config = CameraConfig(url=f"frigate://127.0.0.1:{frigate.port}/porch?h=120")
    camera = make_camera("porch", config)
    assert isinstance(camera, FrigateSnapshotSource)
    with camera:
        assert camera.latest(timeout=2) is None  # not held: no request
        assert frigate.requests == []
        hold = camera.connect()
        frame = camera.latest(timeout=5)
        assert frame is not None and frame.rgb is not None
        assert (frame.width, frame.height) == (160, 120)
        assert frame.to_rgb()[60, 80, 0] > 150  # red
        assert camera.state.online
        got: list[Frame] = []
        three = threading.Event()

        def on_next(f: Frame) -> None:
            got.append(f)
            if len(got) >= 3:
                three.set()

        sub = camera.frames(fps=10).subscribe(on_next)
        assert three.wait(10)
        sub.dispose()
        hold.dispose()
    assert [f.seq for f in got] == sorted({f.seq for f in got})
    assert all(path == "/api/porch/latest.jpg?h=120" for path in frigate.requests)


def test_errors_go_offline_and_keep_the_password_out(
    frigate: FrigateApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    states: list[CameraState] = []
    config = CameraConfig(url=f"frigate://al:SECRET@127.0.0.1:{frigate.port}/porch")
    with FrigateSnapshotSource("porch", config) as camera:
        camera.states.subscribe(states.append)
        hold = camera.connect()
        assert camera.latest(timeout=5) is not None
        frigate.status = 500
        assert camera.latest(timeout=5) is None
        frigate.status = 200
        assert camera.latest(timeout=5) is not None
        hold.dispose()
    assert frigate.server.all()[0].headers["authorization"].startswith("Basic ")
    assert [s.online for s in states][:4] == [False, True, False, True]
    assert "500" in (states[2].last_error or "") and states[2].reconnects == 1
    texts = [s.to_json().decode() for s in states] + [r.getMessage() for r in caplog.records]
    texts.append(repr(camera))
    assert not [t for t in texts if "SECRET" in t]


def test_factory_gives_pyav_source_for_other_urls() -> None:
    camera = make_camera("x", CameraConfig(url="rtsp://cam.lan/live"))
    assert isinstance(camera, CameraSource)
    camera.close()
