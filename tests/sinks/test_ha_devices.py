"""Home Assistant device-based discovery: payloads checked against HA's documented rules
(tests/support/ha_rules.py cites the pages, Home Assistant 2025.10), and on a real Mosquitto
the devices of watches and cameras come and go without leaving a retained config behind."""

from __future__ import annotations

import re
from collections.abc import Callable

import orjson
import pytest

from pipeline.app.control.request import RuntimeWatchRequest
from pipeline.core.config import MqttSinkConfig
from pipeline.core.events import CameraState
from pipeline.core.frame import CameraStats
from pipeline.net.mqtt_connection import MqttConnection
from sinks.ha_devices import (
    HaSetup,
    camera_device,
    camera_device_topic,
    hub_device,
    hub_device_topic,
    new_watch_template,
    watch_device,
    watch_device_topic,
)
from sinks.mqtt import MqttSink
from tests.support.events import make_alert, make_state
from tests.support.ha_rules import DOCS, device_problems
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_recorder import retained
from tests.support.waiting import wait_until

HA = "homeassistant"


@pytest.mark.parametrize("control", [False, True])
@pytest.mark.parametrize("make", [watch_device, camera_device])
def test_device_payloads_follow_the_documented_rules(
    make: Callable[[str, HaSetup], tuple[str, bytes]], control: bool
) -> None:
    setup = HaSetup("home/lookout", HA, "http://lookout.lan:9108/metrics", control)
    topic, payload = make("front-door", setup)
    doc = orjson.loads(payload)
    assert device_problems(topic, doc) == [], DOCS
    assert doc["dev"]["sw_version"] and doc["dev"]["configuration_url"]
    assert doc["dev"]["via_device"] == "lookout_home_lookout"
    assert doc["o"]["name"] == "Lookout"
    has_control = {"cancel", "new_watch"} & set(doc["cmps"])
    assert bool(has_control) == control


def test_hub_device_follows_the_rules() -> None:
    topic, payload = hub_device(HaSetup("lookout", HA))
    assert device_problems(topic, orjson.loads(payload)) == []
    assert topic == "homeassistant/device/lookout/lookout/config"


def test_the_rules_catch_what_ha_refuses() -> None:
    _, payload = watch_device("porch", HaSetup("lookout", HA, control=True))
    doc = orjson.loads(payload)
    broken = {**doc, "o": {}, "cmps": {**doc["cmps"]}}
    broken["cmps"]["met"] = {**doc["cmps"]["met"], "object_id": "x", "unique_id": None}
    broken["cmps"]["snapshot"] = {**doc["cmps"]["snapshot"], "url_topic": "a/b"}
    broken["cmps"]["cancel"] = {
        k: v for k, v in doc["cmps"]["cancel"].items() if k != "command_topic"
    }
    problems = device_problems("homeassistant/device/look out/config", broken)
    assert any("origin" in p for p in problems)
    assert any("object_id is deprecated" in p for p in problems)
    assert any("unique_id is required" in p for p in problems)
    assert any("exactly one of image_topic and url_topic" in p for p in problems)
    assert any("cmps.cancel: command_topic is required" in p for p in problems)
    assert any("not <prefix>/device" in p for p in problems)


def test_watch_device_entities() -> None:
    _, payload = watch_device("porch", HaSetup("lookout", HA, control=True))
    cmps = orjson.loads(payload)["cmps"]
    assert cmps["snapshot"]["image_topic"] == "lookout/watches/porch/snapshot"
    assert cmps["snapshot"]["content_type"] == "image/jpeg"
    assert cmps["cancel"]["command_topic"] == "lookout/watches/porch/cancel"
    assert orjson.loads(cmps["cancel"]["payload_press"]) == {}  # control takes an empty object
    assert cmps["status"]["options"] == ["queued", "running", "success", "failed", "cancelled"]


def render(template: str, value: str, now: int) -> str:
    """The two Home Assistant template expressions the text entity uses, rendered."""
    out = template.replace("{{ now().timestamp() | int }}", str(now))
    out = out.replace("{{ value | tojson }}", orjson.dumps(value).decode())
    assert "{{" not in out, out
    return out


def test_new_watch_text_makes_a_valid_control_request() -> None:
    _, payload = camera_device("front door", HaSetup("lookout", HA, control=True))
    text = orjson.loads(payload)["cmps"]["new_watch"]
    assert text["command_topic"] == "lookout/watches/set"
    assert text["command_template"] == new_watch_template("front door")
    body = orjson.loads(render(text["command_template"], 'a "parcel" on the steps', 1_700_000_000))
    request = RuntimeWatchRequest.model_validate(body)
    assert request.camera == "front door"
    assert request.condition == 'a "parcel" on the steps'
    assert re.fullmatch(r"ha_front_door_1700000000", request.name)


def test_devices_come_and_go_on_a_real_broker(
    mosquitto: Mosquitto, connection_factory: Callable[..., MqttConnection]
) -> None:
    conn = connection_factory(mosquitto)
    conn.start(wait_s=10)
    setup = HaSetup("lookout", HA)
    jpeg = b"\xff\xd8 snapshot \xff\xd9"
    with MqttSink("mqtt", MqttSinkConfig(home_assistant=True), conn) as sink:
        sink.home_assistant_setup(["front", "back"], control=True)
        sink.send_state(make_state("porch"))
        sink.send_alert(make_alert(1, watch="porch", jpeg=jpeg))
        sink.send_camera_state(CameraState(camera="side", online=True, since=5.0))
        sink.publish_camera_stats(
            "front", CameraStats(last_frame_time=1_700_000_000.5, online=True)
        )
        assert conn.flush(10)
        left = retained(mosquitto, f"{HA}/#")
        expected = {
            hub_device_topic(setup),
            watch_device_topic("porch", setup),
            *(camera_device_topic(c, setup) for c in ("front", "back", "side")),
        }
        assert set(left) == expected
        for topic, payload in left.items():
            assert device_problems(topic, orjson.loads(payload)) == [], (topic, DOCS)
        watch = orjson.loads(left[watch_device_topic("porch", setup)])
        assert "cancel" in watch["cmps"]
        data = retained(mosquitto, "lookout/#")
        assert data["lookout/watches/porch/snapshot"] == jpeg
        stats = orjson.loads(data["lookout/cameras/front/stats"])
        assert stats["last_frame"] == "2023-11-14T22:13:20.500000+00:00" and stats["online"]

        # [control] off (a restart without it): the buttons and texts go.
        sink.home_assistant_setup(["front", "back", "side"], control=False)
        assert conn.flush(10)
        left = retained(mosquitto, f"{HA}/#")
        assert "cancel" not in orjson.loads(left[watch_device_topic("porch", setup)])["cmps"]
        assert all("new_watch" not in orjson.loads(p)["cmps"] for p in left.values())

        # A watch removed for good and a camera dropped by a reload leave nothing retained.
        sink.forget_watch("porch")
        sink.home_assistant_setup(["front", "side"], control=False)
        assert conn.flush(10)
    left = retained(mosquitto, f"{HA}/#")
    assert set(left) == {
        hub_device_topic(setup),
        camera_device_topic("front", setup),
        camera_device_topic("side", setup),
    }
    data = retained(mosquitto, "lookout/cameras/#")
    assert not [t for t in data if t.startswith("lookout/cameras/back/")]


def test_an_earlier_versions_entity_configs_are_replaced_by_the_device(
    mosquitto: Mosquitto, connection_factory: Callable[..., MqttConnection]
) -> None:
    from sinks.ha_discovery import discovery_messages

    conn = connection_factory(mosquitto)
    conn.start(wait_s=10)
    for topic, payload in discovery_messages("porch", "lookout", HA):
        conn.publish(topic, payload, retain=True, qos=1)
    assert conn.flush(10)
    assert len(retained(mosquitto, f"{HA}/#")) == 2
    with MqttSink("mqtt", MqttSinkConfig(home_assistant=True), conn) as sink:
        sink.send_state(make_state("porch"))
        assert conn.flush(10)
    wait_until(
        lambda: (
            set(retained(mosquitto, f"{HA}/#"))
            == {
                hub_device_topic(HaSetup("lookout", HA)),
                watch_device_topic("porch", HaSetup("lookout", HA)),
            }
        ),
        what="only the devices retained",
    )
