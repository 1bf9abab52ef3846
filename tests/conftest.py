"""Shared fixtures: real Mosquitto, RTSP and model servers, clips, MQTT and HTTP recorders.

Every service listens on 127.0.0.1 only, and every fixture stops what it started,
even when the test fails. No fixture skips: a missing binary is an error that says
how to install it (``scripts/install-system-deps``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from pipeline.core import redact
from tests.support.clips import Clip, linear_path, make_clip
from tests.support.http_receiver import HttpReceiver, Reply
from tests.support.model_server import ScriptedModelServer, Step
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_recorder import MqttRecorder
from tests.support.rtsp import RtspServer, StrPath


@pytest.fixture(autouse=True)
def _forget_secrets_registered_by_the_test() -> Iterator[None]:
    """Secrets a test registers for redaction are forgotten after it.

    ``register_secret`` is process-wide: a notify URL's host ``127.0.0.1`` registered
    by one test would otherwise mask ``127.0.0.1`` in the error texts of later ones.
    """
    before = set(redact._known_secrets)
    try:
        yield
    finally:
        with redact._lock:
            redact._known_secrets.intersection_update(before)


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    """Start brokers with ``Mosquitto(**kwargs)`` options; all are stopped afterwards.

    Example: ``broker = mosquitto_factory(persistence=True, users={"u": "p"})``.
    """
    started: list[Mosquitto] = []

    def factory(**kwargs: Any) -> Mosquitto:
        kwargs.setdefault("workdir", tmp_path / f"mosquitto-{len(started)}")
        broker = Mosquitto(**kwargs)
        started.append(broker)
        return broker.start()

    try:
        yield factory
    finally:
        _close_all(started)


@pytest.fixture
def mosquitto(mosquitto_factory: Callable[..., Mosquitto]) -> Mosquitto:
    """A started anonymous Mosquitto on a free loopback port (``.host``, ``.port``)."""
    return mosquitto_factory()


@pytest.fixture
def recorder_factory() -> Iterator[Callable[..., MqttRecorder]]:
    """Record MQTT messages with ``MqttRecorder`` options; all are closed afterwards.

    Example: ``rec = recorder_factory(broker, "lookout/#", protocol=mqtt.MQTTv5)``.
    """
    made: list[MqttRecorder] = []

    def factory(broker: Mosquitto, topic: str = "#", **kwargs: Any) -> MqttRecorder:
        recorder = MqttRecorder(broker.host, broker.port, topic, **kwargs)
        made.append(recorder)
        return recorder

    try:
        yield factory
    finally:
        _close_all(made)


@pytest.fixture
def receiver_factory() -> Iterator[Callable[..., HttpReceiver]]:
    """Start scripted HTTP receivers (``HttpReceiver(script, **kwargs)``); all are stopped after.

    Example: ``hook = receiver_factory([Reply(429, {"Retry-After": "1"})])``;
    ``receiver_factory(start=False)`` makes one to start later.
    """
    made: list[HttpReceiver] = []

    def factory(
        script: list[Reply] | None = None, *, start: bool = True, **kwargs: Any
    ) -> HttpReceiver:
        receiver = HttpReceiver(script, **kwargs)
        made.append(receiver)
        return receiver.start() if start else receiver

    try:
        yield factory
    finally:
        _close_all(made)


@pytest.fixture
def rtsp_server_factory(tmp_path: Path) -> Iterator[Callable[..., RtspServer]]:
    """Start RTSP servers with ``RtspServer(mounts, **kwargs)``; all are stopped afterwards.

    Example: ``srv = rtsp_server_factory({"cam1": clip.path}, user="u", password="p")``
    then ``srv.auth_url("cam1")``.
    """
    started: list[RtspServer] = []

    def factory(mounts: Mapping[str, StrPath] | StrPath, **kwargs: Any) -> RtspServer:
        kwargs.setdefault("workdir", tmp_path / f"rtsp-{len(started)}")
        server = RtspServer(mounts, **kwargs)
        started.append(server)
        return server.start()

    try:
        yield factory
    finally:
        _close_all(started)


@pytest.fixture
def rtsp_server(rtsp_server_factory: Callable[..., RtspServer], h264_clip: Clip) -> RtspServer:
    """A started RTSP server looping ``h264_clip`` at mount ``"stream"`` (no auth)."""
    return rtsp_server_factory({"stream": h264_clip.path})


@pytest.fixture
def model_server_factory() -> Iterator[Callable[..., ScriptedModelServer]]:
    """Start scripted model servers with ``ScriptedModelServer(steps, **kwargs)``."""
    started: list[ScriptedModelServer] = []

    def factory(steps: list[Step] | None = None, **kwargs: Any) -> ScriptedModelServer:
        server = ScriptedModelServer(steps or [], **kwargs)
        started.append(server)
        return server.start()

    try:
        yield factory
    finally:
        _close_all(started)


@pytest.fixture
def model_server(
    model_server_factory: Callable[..., ScriptedModelServer],
) -> ScriptedModelServer:
    """A started scripted model server with an empty queue; ``push()`` steps onto it."""
    return model_server_factory()


@pytest.fixture
def clip_factory(tmp_path: Path) -> Callable[..., Clip]:
    """Write clips with ``make_clip`` options into the test's ``tmp_path``.

    Example: ``clip = clip_factory("zone.mp4", seconds=6, shapes=[(2, 4, (10, 10, 60, 60))])``.
    """
    counter = iter(range(1_000_000))

    def factory(name: str | None = None, **kwargs: Any) -> Clip:
        filename = name if name is not None else f"clip-{next(counter)}.mp4"
        return make_clip(tmp_path / "clips" / filename, **kwargs)

    return factory


@pytest.fixture(scope="session")
def h264_clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """A 4 s, 10 fps, 320x240 H.264 clip (GOP 10) with a bright box crossing it in 1..3 s."""
    path = tmp_path_factory.mktemp("h264_clip") / "crossing.mp4"
    return make_clip(
        path,
        seconds=4.0,
        fps=10,
        width=320,
        height=240,
        gop=10,
        shapes=linear_path(1.0, 3.0, (0, 90, 60, 150), (260, 90, 320, 150)),
    )


def _close_all(services: list[Any]) -> None:
    """Close every service, newest first; re-raise the first error after trying them all."""
    first_error: BaseException | None = None
    for service in reversed(services):
        try:
            service.close()
        except BaseException as exc:  # keep closing the others
            if first_error is None:
                first_error = exc
    if first_error is not None:
        raise first_error
