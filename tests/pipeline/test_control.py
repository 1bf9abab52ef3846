"""Watches at run time over MQTT: set, cancel, list, refusals, MQTT 5 and 3.1.1 replies, persistence."""

from __future__ import annotations

import json
import threading
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.app.control import (
    MAX_QUEUED,
    RequestRefused,
    WatchControl,
    WatchStore,
    parse_body,
    parse_topic,
    reply_topic_for,
    validate_watch,
)
from pipeline.app.process import App
from pipeline.core.config_loader import load_config_text
from tests.support.clips import Clip
from tests.support.control_app import control_responder, write_control_config
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_recorder import MqttRecorder
from tests.support.mqtt_requester import Requester
from tests.support.waiting import wait_until

CFG = """
[cameras.front]
url = "clip.mp4"
[cameras.front.zones.porch]
points = [[0, 0], [1, 0], [1, 1]]
[backends.vlm]
type = "none"
"""


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("lk/watches/set", ("set", None)),
        ("lk/watches/list", ("list", None)),
        ("lk/watches/gate/cancel", ("cancel", "gate")),
        ("lk/watches/gate/state", None),
        ("lk/watches/set/extra", None),
        ("other/watches/set", None),
        ("lk/watches//cancel", None),
    ],
)
def test_parse_topic(topic: str, expected: tuple[str, str | None] | None) -> None:
    assert parse_topic(topic, "lk") == expected


@pytest.mark.parametrize(
    ("payload", "error"),
    [(b"{", "not valid JSON"), (b"[1]", "JSON object"), (b'"x"', "JSON object")],
)
def test_parse_body_refuses_what_is_not_an_object(payload: bytes, error: str) -> None:
    with pytest.raises(RequestRefused, match=error):
        parse_body(payload)


def test_parse_body_accepts_empty_and_objects() -> None:
    assert parse_body(b"") == {}
    assert parse_body(b' {"a": 1} ') == {"a": 1}


def test_reply_topic_prefers_mqtt5_then_body_then_default() -> None:
    assert reply_topic_for({"reply_to": "b"}, "a", "d") == "a"
    assert reply_topic_for({"reply_to": "b"}, None, "d") == "b"
    assert reply_topic_for({"reply_to": "b/#"}, None, "d") == "d"
    assert reply_topic_for({}, None, "d") == "d"


@pytest.mark.parametrize(
    ("body", "response_topic", "expected"),
    [
        ({}, None, "lk/watches/reply"),
        ({"reply_to": "lk/watches/reply"}, None, "lk/watches/reply"),
        ({"reply_to": "lk/watches/reply/app1"}, None, "lk/watches/reply/app1"),
        ({}, "client/replies", "client/replies"),
        ({}, "lk/watches/reply/me", "lk/watches/reply/me"),
        ({"reply_to": "lk/available"}, None, "reply_to must be"),
        ({"reply_to": "lk/watches/gate/state"}, None, "reply_to must be"),
        ({"reply_to": "elsewhere/replies"}, None, "reply_to must be"),
        ({"reply_to": "lk/watches/reply/#"}, None, "without wildcards"),
        ({"reply_to": 5}, None, "without wildcards"),
        ({}, "lk/available", "must not be one of Lookout's topics"),
        ({}, "lk/watches/set", "must not be one of Lookout's topics"),
    ],
)
def test_reply_topic_stays_out_of_lookouts_own_topics(
    body: dict[str, Any], response_topic: str | None, expected: str
) -> None:
    if "/" in expected and " " not in expected:
        assert reply_topic_for(body, response_topic, "lk/watches/reply", "lk") == expected
    else:
        with pytest.raises(RequestRefused, match=expected):
            reply_topic_for(body, response_topic, "lk/watches/reply", "lk")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            {"name": "g", "camera": "back", "condition": "a cat"},
            "watch.camera: unknown camera 'back'",
        ),
        ({"name": "g", "camera": "front", "condition": "a cat", "zones": ["yard"]}, "watch.zones:"),
        ({"name": "g", "camera": "front", "condition": "a cat", "backend": "x"}, "watch.backend:"),
        ({"name": "g", "camera": "front", "condition": "a cat", "sinks": ["x"]}, "watch.sinks[0]:"),
        ({"name": "g", "camera": "front"}, "watch.condition: is required but missing"),
        (
            {"name": "g", "camera": "front", "condition": "cat", "colour": 1},
            "watch.colour: unknown key",
        ),
        ({"name": "a b", "camera": "front", "condition": "a cat"}, "watch.name: must use only"),
        ({"name": "g", "camera": "front", "condition": "a cat", "agree_looks": 3}, "agree_looks"),
    ],
)
def test_validate_watch_gives_key_paths(body: dict[str, Any], problem: str) -> None:
    cfg = load_config_text(CFG)
    with pytest.raises(RequestRefused) as err:
        validate_watch(cfg, body)
    assert any(problem in p for p in err.value.problems), err.value.problems


def test_validate_watch_ignores_control_keys() -> None:
    cfg = load_config_text(CFG)
    body = {
        "name": "g",
        "camera": "front",
        "condition": "a cat",
        "reply_to": "x",
        "correlation_id": 1,
    }
    assert validate_watch(cfg, body).name == "g"


def test_watch_store_round_trip(tmp_path: Path) -> None:
    cfg = load_config_text(CFG)
    store = WatchStore(tmp_path / "state" / "w.json")
    assert store.load() == []
    w = validate_watch(
        cfg, {"name": "g", "camera": "front", "condition": "a cat", "persistent": True}
    )
    store.put(w)
    store.put(w)
    assert [b["name"] for b in store.load()] == ["g"]
    assert validate_watch(cfg, store.load()[0]) == w
    assert store.remove("g") and not store.remove("g")
    assert store.load() == []
    (tmp_path / "broken.json").write_text("{not json")
    assert WatchStore(tmp_path / "broken.json").load() == []


# ---------------------------------------------------------------- over a real broker


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_set_list_cancel_and_refusals_over_mqtt(
    tmp_path: Path,
    mosquitto: Mosquitto,
    model_server_factory: Any,
    h264_clip: Clip,
    app_factory: Any,
    protocol: str,
) -> None:
    model = model_server_factory(responder=control_responder)
    path = write_control_config(tmp_path, h264_clip, mosquitto, model, protocol)
    v5 = protocol == "5"
    recorder = MqttRecorder.under(mosquitto, "ctl")
    requester = Requester(mosquitto, "client/replies" if v5 else "ctl/watches/reply", v5)
    try:
        app = app_factory(path)
        requester.wait_ready("ctl")

        # A valid watch starts, runs and alerts.
        gate = {
            "name": "gate",
            "camera": "front",
            "condition": "the gate is open",
            "backend": "vlm",
        }
        reply = requester.request("ctl/watches/set", gate)
        assert reply["ok"] is True and reply["action"] == "set" and reply["watch"] == "gate", reply
        assert reply["job_id"] and reply["replaced"] is False
        alert = orjson.loads(recorder.wait_topic("ctl/watches/gate/alert", 30))
        assert alert["message"] == "Gate open" and alert["job_id"] == reply["job_id"]

        # Refusals: invalid fields, unknown camera, bad JSON, a config watch's name, unknown cancel.
        bad = requester.request(
            "ctl/watches/set", {"name": "x", "camera": "back", "condition": "c"}
        )
        assert bad["ok"] is False
        assert any("watch.camera: unknown camera 'back'" in p for p in bad["problems"]), bad
        assert any("watch.condition" in p for p in bad["problems"]), bad
        if v5:
            broken = requester.request("ctl/watches/set", b"{not json")
            assert broken["ok"] is False and "not valid JSON" in broken["error"]
        clash = requester.request(
            "ctl/watches/set", {"name": "fixed", "camera": "front", "condition": "a dog"}
        )
        assert clash["ok"] is False and "config file" in clash["error"]
        missing = requester.request("ctl/watches/nope/cancel", None)
        assert missing["ok"] is False and "no watch named 'nope'" in missing["error"]

        # The list shows both watches with their origin.
        listed = requester.request("ctl/watches/list", None)
        assert listed["ok"] is True
        by_name = {w["name"]: w for w in listed["watches"]}
        assert by_name["fixed"]["origin"] == "config"
        assert by_name["gate"]["origin"] == "runtime"
        assert by_name["gate"]["status"] == "success"

        # Cancel a running run-time watch.
        slow = {"name": "slow", "camera": "front", "condition": "a fox", "backend": "vlm"}
        assert requester.request("ctl/watches/set", slow)["ok"]
        cancelled = requester.request("ctl/watches/slow/cancel", None)
        assert cancelled == {**cancelled, "ok": True, "watch": "slow", "status": "cancelled"}
        recorder.wait_topic("ctl/watches/slow/state", 10, b'"cancelled"')
        names = {w["name"] for w in requester.request("ctl/watches/list", None)["watches"]}
        assert "slow" not in names and "fixed" in names
        assert app.control.stats.refused["set"] >= 2
    finally:
        requester.close()
        recorder.close()


def test_persistent_watch_survives_a_restart(
    tmp_path: Path,
    mosquitto: Mosquitto,
    model_server_factory: Any,
    h264_clip: Clip,
    app_factory: Any,
) -> None:
    model = model_server_factory(responder=control_responder)
    path = write_control_config(tmp_path, h264_clip, mosquitto, model, "3.1.1")
    requester = Requester(mosquitto, "ctl/watches/reply", v5=False)
    try:
        app = app_factory(path)
        requester.wait_ready("ctl")
        keep = {
            "name": "keep",
            "camera": "front",
            "condition": "a fox in the yard",
            "backend": "vlm",
            "persistent": True,
        }
        temp = {"name": "temp", "camera": "front", "condition": "a deer", "backend": "vlm"}
        assert requester.request("ctl/watches/set", keep)["persistent"] is True
        assert requester.request("ctl/watches/set", temp)["ok"]
        state_file = tmp_path / "lookout-watches.json"
        stored = json.loads(state_file.read_text())
        assert [w["name"] for w in stored["watches"]] == ["keep"]
        app.stop()

        # A new process (here: a new App) starts the persistent watch again, and only it.
        app2 = app_factory(path)
        requester.wait_ready("ctl")
        names = {w["name"]: w for w in app2.pipeline.watch_list()}
        assert set(names) == {"fixed", "keep"}
        assert names["keep"]["origin"] == "runtime" and names["keep"]["persistent"]
        # Cancelling it removes it from the file.
        assert requester.request("ctl/watches/keep/cancel", None)["ok"]
        assert json.loads(state_file.read_text())["watches"] == []
    finally:
        requester.close()


def test_reply_to_outside_the_reply_topic_is_refused_and_ended_watches_free_their_slot(
    tmp_path: Path,
    mosquitto: Mosquitto,
    model_server_factory: Any,
    h264_clip: Clip,
    app_factory: Any,
) -> None:
    model = model_server_factory(responder=control_responder)
    path = write_control_config(tmp_path, h264_clip, mosquitto, model, "3.1.1")
    path.write_text(path.read_text() + "max_watches = 1\n")  # [control] is the last table
    recorder = MqttRecorder.under(mosquitto, "ctl")
    requester = Requester(mosquitto, "ctl/watches/reply", v5=False)
    try:
        app = app_factory(path)
        requester.wait_ready("ctl")

        # A reply_to on one of Lookout's own topics: refused, answered on the reply topic.
        hijack = {"name": "h", "camera": "front", "condition": "c", "reply_to": "ctl/available"}
        refused = requester.request("ctl/watches/set", hijack)
        assert refused["ok"] is False and "reply_to must be" in refused["error"], refused
        assert "h" not in {w["name"] for w in app.pipeline.watch_list()}

        # One-shot run-time watches that end do not count against max_watches = 1.
        for name in ("gate1", "gate2", "gate3"):
            gate = {"name": name, "camera": "front", "condition": "the gate is open"}
            reply = requester.request("ctl/watches/set", {**gate, "backend": "vlm"})
            assert reply["ok"] is True, reply
            recorder.wait_topic(f"ctl/watches/{name}/state", 30, b'"success"')
            wait_until(partial(_ended, app, name), 10, f"watch {name} to end")
        listed = {w["name"]: w for w in requester.request("ctl/watches/list", None)["watches"]}
        assert listed["gate3"]["status"] == "success"
        # A running one does count.
        slow = {"name": "slow", "camera": "front", "condition": "a fox", "backend": "vlm"}
        assert requester.request("ctl/watches/set", slow)["ok"] is True
        full = requester.request("ctl/watches/set", {**slow, "name": "slow2"})
        assert full["ok"] is False and "max_watches" in full["error"], full
        # Replacing the running one is not a new watch.
        assert requester.request("ctl/watches/set", {**slow, "condition": "a deer"})["ok"]
        assert not any(b"action" in p for p in recorder.payloads("ctl/available"))
    finally:
        requester.close()
        recorder.close()


def test_control_is_off_unless_enabled(
    tmp_path: Path,
    mosquitto: Mosquitto,
    model_server_factory: Any,
    h264_clip: Clip,
    app_factory: Any,
) -> None:
    assert load_config_text(CFG).control.enabled is False
    model = model_server_factory(responder=control_responder)
    path = write_control_config(tmp_path, h264_clip, mosquitto, model, "3.1.1")
    path.write_text(path.read_text().replace("[control]\nenabled = true\n", ""))
    recorder = MqttRecorder.under(mosquitto, "ctl")
    requester = Requester(mosquitto, "ctl/watches/reply", v5=False)
    try:
        app = app_factory(path)
        assert app.control is None
        recorder.wait_topic("ctl/available", 10, b"online")  # Lookout is on the broker
        gate = {"name": "gate", "camera": "front", "condition": "the gate is open"}
        with pytest.raises(AssertionError, match="no reply"):
            requester.request("ctl/watches/set", {**gate, "backend": "vlm"}, timeout=3)
        assert "gate" not in {w["name"] for w in app.pipeline.watch_list()}
        assert not recorder.payloads("ctl/watches/gate/state")
    finally:
        requester.close()
        recorder.close()


def test_a_one_megabyte_condition_is_refused_with_its_limit(
    tmp_path: Path,
    mosquitto: Mosquitto,
    model_server_factory: Any,
    h264_clip: Clip,
    app_factory: Any,
) -> None:
    model = model_server_factory(responder=control_responder)
    path = write_control_config(tmp_path, h264_clip, mosquitto, model, "5")
    requester = Requester(mosquitto, "client/replies", v5=True)
    try:
        app = app_factory(path)
        requester.wait_ready("ctl")
        huge = {"name": "huge", "camera": "front", "condition": "c" * 1_048_576}
        reply = requester.request("ctl/watches/set", {**huge, "labels": ["cat"] * 40})
        assert reply["ok"] is False and reply["error"] == "request too large", reply
        assert reply["problems"] == [
            "watch.condition: at most 2000 characters, got 1048576",
            "watch.labels: at most 32 items, got 40",
        ]
        assert "huge" not in {w["name"] for w in app.pipeline.watch_list()}

        # Nothing unbounded is echoed: neither a long correlation_id nor a long cancel name.
        long_id = requester.request("ctl/watches/set", {**huge, "correlation_id": "i" * 300})
        assert long_id["ok"] is False and "correlation_id" not in long_id, long_id
        assert "correlation_id: at most 256 characters as JSON, got 302" in long_id["problems"]
        cancel = requester.request(f"ctl/watches/{'n' * 100}/cancel", None)
        assert cancel["ok"] is False and "watch" not in cancel, cancel
        assert cancel["problems"] == ["watch name: at most 64 characters, got 100"]

        # A watch within the bounds still starts.
        fine = {**huge, "condition": "c" * 2000, "backend": "vlm"}
        assert requester.request("ctl/watches/set", fine)["ok"] is True
        assert app.control is not None and app.control.stats.refused["set"] == 2
    finally:
        requester.close()


class _BlockedHost:
    """A control host whose start_watch blocks until released (the worker stays busy)."""

    def __init__(self) -> None:
        self.config = load_config_text(CFG)
        self.release = threading.Event()
        self.started = threading.Event()

    @property
    def stopping(self) -> bool:
        return False

    def start_watch(self, watch: Any, origin: Any = "config") -> Any:
        self.started.set()
        self.release.wait(20)
        return None

    def cancel_watch(self, name: str, wait_s: float = 5.0, *, forget: bool = False) -> bool:
        return False

    def watch_list(self) -> list[dict[str, Any]]:
        return []


def test_a_full_request_queue_refuses_at_once(tmp_path: Path, mosquitto: Mosquitto) -> None:
    from pipeline.core.config import ControlConfig, MqttConfig
    from pipeline.net.mqtt_connection import MqttConnection, MqttMessage

    conn = MqttConnection(
        MqttConfig(host=mosquitto.host, port=mosquitto.port, topic_prefix="q", protocol="3.1.1")
    )
    conn.start()
    recorder = MqttRecorder.under(mosquitto, "q")
    host = _BlockedHost()
    control = WatchControl(host, conn, ControlConfig(), tmp_path / "w.json")
    try:
        conn.wait_connected(10)
        control.start()
        body = {"name": "g", "camera": "front", "condition": "a cat"}
        for i in range(MAX_QUEUED + 3):
            payload = orjson.dumps({**body, "correlation_id": i})
            control._on_message(MqttMessage("q/watches/set", payload))
            if i == 0:
                assert host.started.wait(10)
        refusals = recorder.wait_for(
            lambda ms: sum(b"too many control requests" in p for _t, p, _r in ms) >= 2, 15
        )
        ids = [
            orjson.loads(p)["correlation_id"]
            for _t, p, _r in refusals
            if b"too many control requests" in p
        ]
        assert set(ids) == {MAX_QUEUED + 1, MAX_QUEUED + 2}
        assert control.stats.refused["set"] == 2
    finally:
        host.release.set()
        control.stop()
        recorder.close()
        conn.stop(1)


def _ended(app: App, name: str) -> bool:
    return name not in app.pipeline.watches
