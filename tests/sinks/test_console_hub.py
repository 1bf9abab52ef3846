from __future__ import annotations

import io
import logging

import orjson
import pytest

from pipeline.core.config import ConsoleSinkConfig, JsonlSinkConfig, MqttSinkConfig
from pipeline.core.events import Alert, CameraState, WatchState, WatchStatus
from sinks.base import Sink, SinkClosedError
from sinks.console import ConsoleSink
from sinks.jsonl import JsonlSink
from sinks.registry import SinkHub, build_sink
from tests.support.events import make_alert, make_state


class Exploding(Sink):
    def _write_alert(self, alert: Alert) -> None:
        raise RuntimeError("disk on fire")

    def _write_state(self, state: WatchState) -> None:
        raise RuntimeError("disk on fire")


class Collecting(Sink):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.alerts: list[Alert] = []

    def _write_alert(self, alert: Alert) -> None:
        self.alerts.append(alert)


def test_console_text_lines() -> None:
    out = io.StringIO()
    with ConsoleSink("console", ConsoleSinkConfig(), stream=out) as sink:
        sink.send_alert(make_alert(2, message="Box\nat door"))
        sink.send_state(
            make_state(status=WatchStatus.FAILED, error_message="timed out after 60 minutes")
        )
        sink.send_camera_state(CameraState(camera="front", online=False, last_error="EOF"))
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert "ALERT porch (front): Box at door" in lines[0]
    assert "event=evt-2" in lines[0]
    assert "failed" in lines[1] and "timed out after 60 minutes" in lines[1]
    assert lines[2] == "CAMERA front: offline (EOF)"


def test_console_json_and_states_off() -> None:
    out = io.StringIO()
    with ConsoleSink("c", ConsoleSinkConfig(format="json", states=False), stream=out) as sink:
        sink.send_alert(make_alert(3))
        sink.send_state(make_state())
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert orjson.loads(lines[0])["event_id"] == "evt-3"


def test_sink_after_close_raises() -> None:
    sink = ConsoleSink("c", stream=io.StringIO())
    sink.close()
    with pytest.raises(SinkClosedError, match="'c' is closed"):
        sink.send_alert(make_alert())


def test_hub_isolates_a_failing_sink(caplog: pytest.LogCaptureFixture) -> None:
    good = Collecting("good")
    hub = SinkHub({"bad": Exploding("bad"), "good": good})
    hub.open()
    with caplog.at_level(logging.ERROR):
        hub.send_alert(make_alert(1))
        hub.send_alert(make_alert(2))
        hub.send_state(make_state())
    assert [a.event_id for a in good.alerts] == ["evt-1", "evt-2"]
    assert hub.failures["bad"] == 3
    assert hub.delivered["good"] == 3
    assert "sink 'bad' failed" in caplog.text
    hub.close()


def test_hub_routes_by_name() -> None:
    a, b = Collecting("a"), Collecting("b")
    hub = SinkHub({"a": a, "b": b})
    hub.send_alert(make_alert(1), names=["b"])
    assert a.alerts == [] and len(b.alerts) == 1


def test_build_sink_types(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(build_sink("c", ConsoleSinkConfig(), None), ConsoleSink)
    path = Path(str(tmp_path)) / "a.jsonl"
    assert isinstance(build_sink("j", JsonlSinkConfig(path=path), None), JsonlSink)
    with pytest.raises(ValueError, match=r"sinks\.m: an mqtt sink needs an \[mqtt\] table"):
        build_sink("m", MqttSinkConfig(), None)


def test_console_camera_lines_say_connecting_before_any_failure() -> None:
    from pipeline.core.events import CameraState
    from sinks.console import format_camera_state

    assert format_camera_state(CameraState("porch", online=False)) == "CAMERA porch: connecting"
    assert format_camera_state(CameraState("porch", online=True)) == "CAMERA porch: online"
    failed = CameraState("porch", online=False, reconnects=2, last_error="connection refused")
    assert format_camera_state(failed) == "CAMERA porch: offline (connection refused)"


def test_console_state_line_rounds_the_next_look() -> None:
    from pipeline.core.events import WatchState, WatchStatus
    from sinks.console import format_state

    state = WatchState(
        id="j",
        name="w",
        camera="c",
        condition="x",
        status=WatchStatus.RUNNING,
        next_look_in=19.99994,
    )
    assert "next_in=20s" in format_state(state)
