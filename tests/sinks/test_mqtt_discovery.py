"""Home Assistant discovery: today's schema, and the sweep of watches gone while Lookout was down.

Against a real Mosquitto: the retained configs on the broker are what Home
Assistant would read.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from pipeline import __version__
from pipeline.app.process import App
from pipeline.core.config import MqttSinkConfig
from pipeline.core.config_loader import load_config, load_config_text
from pipeline.net.mqtt_connection import MqttConnection
from sinks.ha_devices import HaSetup, hub_device_topic, watch_device, watch_device_topic
from sinks.ha_discovery import discovery_topics
from sinks.mqtt import MqttSink
from tests.support.clips import Clip
from tests.support.events import make_state
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_recorder import MqttRecorder, publish, retained
from tests.support.waiting import wait_until

PREFIX = "homeassistant"


def old_configs(node: str, *watches: str) -> dict[str, bytes]:
    """Per-entity configs as an older Lookout left them (with the deprecated object_id)."""
    return {
        topic: orjson.dumps({"object_id": topic.split("/")[3], "state_topic": "x"})
        for watch in watches
        for topic in discovery_topics(watch, node, PREFIX)
    }


def device_configs(node: str, *watches: str) -> dict[str, bytes]:
    """Device configs of watches, as an earlier run of this version left them."""
    return dict(watch_device(w, HaSetup(node, PREFIX)) for w in watches)


def device_topics(node: str, *watches: str) -> set[str]:
    return {watch_device_topic(w, HaSetup(node, PREFIX)) for w in watches}


HUB = hub_device_topic(HaSetup("lookout", PREFIX))


def test_discovery_uses_default_entity_id_origin_and_sw_version(
    mosquitto: Mosquitto,
    connection_factory: Callable[..., MqttConnection],
    recorder_factory: Callable[..., MqttRecorder],
) -> None:
    rec = recorder_factory(mosquitto, f"{PREFIX}/#")
    conn = connection_factory(mosquitto)
    conn.start(wait_s=10)
    config = MqttSinkConfig(home_assistant=True, configuration_url="http://lookout.lan:9108/x")
    with MqttSink("mqtt", config, conn) as sink:
        sink.send_state(make_state("porch"))
        (topic,) = device_topics("lookout", "porch")
        wait_until(lambda: rec.last(topic) is not None, what="discovery config")
        doc = orjson.loads(rec.last(topic) or b"{}")
    binary, sensor = doc["cmps"]["met"], doc["cmps"]["reasoning"]
    assert "object_id" not in binary and "object_id" not in sensor
    assert doc["o"]["name"] == "Lookout"
    assert doc["o"]["sw_version"] == __version__
    assert doc["dev"]["sw_version"] == __version__
    assert doc["dev"]["configuration_url"] == "http://lookout.lan:9108/x"
    assert binary["default_entity_id"] == "binary_sensor.lookout_porch_met"
    assert sensor["default_entity_id"] == "sensor.lookout_porch_reasoning"
    assert binary["unique_id"] == "lookout_lookout_porch_met"


def test_start_removes_the_discovery_of_watches_gone_while_down(
    mosquitto: Mosquitto, connection_factory: Callable[..., MqttConnection]
) -> None:
    publish(
        mosquitto,
        {
            **device_configs("lookout", "porch", "gone"),
            **old_configs("lookout", "porch"),  # an older version's per-entity configs
            **device_configs("other", "gone"),
        },
        retain=True,
    )
    conn = connection_factory(mosquitto)
    conn.start(wait_s=10)
    with MqttSink("mqtt", MqttSinkConfig(home_assistant=True), conn) as sink:
        sink.started(["porch"])
        assert sink.sweep is not None
        wait_until(lambda: sink.sweep is not None and sink.sweep.done, what="the sweep")
        assert conn.flush(10)
        assert sink.sweep.removed == sorted(
            device_topics("lookout", "gone") | set(old_configs("lookout", "porch"))
        )
    left = retained(mosquitto, f"{PREFIX}/#")
    assert set(left) == device_topics("lookout", "porch") | device_topics("other", "gone") | {HUB}


def test_the_sweep_waits_for_the_broker_and_for_the_watches(
    mosquitto_factory: Callable[..., Mosquitto],
    connection_factory: Callable[..., MqttConnection],
) -> None:
    broker = mosquitto_factory(persistence=True)
    publish(broker, device_configs("lookout", "porch", "gone", "rt"), retain=True)
    broker.stop()  # Lookout starts while the broker is down
    conn = connection_factory(broker)
    conn.start()
    with MqttSink("mqtt", MqttSinkConfig(home_assistant=True), conn) as sink:
        assert sink.sweep is not None
        # Nothing is listed or cleared before the sink knows the watches the process runs.
        sink.send_state(make_state("rt"))  # a watch started at run time is kept too
        assert not sink.sweep.started
        sink.started(["porch"])
        assert not sink.sweep.done  # the broker is still down
        broker.start()
        wait_until(lambda: sink.sweep is not None and sink.sweep.done, 15, "the sweep")
        assert conn.flush(10)
    left = retained(broker, f"{PREFIX}/#")
    assert not set(left) & device_topics("lookout", "gone")
    assert device_topics("lookout", "porch", "rt") <= set(left)


def test_without_home_assistant_nothing_is_swept(
    mosquitto: Mosquitto, connection_factory: Callable[..., MqttConnection]
) -> None:
    publish(mosquitto, old_configs("lookout", "gone"), retain=True)
    conn = connection_factory(mosquitto)
    conn.start(wait_s=10)
    with MqttSink("mqtt", MqttSinkConfig(), conn) as sink:
        sink.started([])
        assert sink.sweep is None
    assert set(retained(mosquitto, f"{PREFIX}/#")) == set(old_configs("lookout", "gone"))


def test_a_starting_app_sweeps_with_the_watches_it_runs(
    tmp_path: Path, mosquitto: Mosquitto, h264_clip: Clip
) -> None:
    publish(mosquitto, device_configs("lookout", "porch", "gone"), retain=True)
    path = tmp_path / "pipeline.toml"
    path.write_text(
        f'[mqtt]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\nreconnect_max_s = 1\n\n'
        f'[cameras.front]\nurl = "{h264_clip.path}"\nloop = true\n\n'
        '[backends.vlm]\ntype = "none"\n\n'
        '[sinks.mqtt]\ntype = "mqtt"\nhome_assistant = true\n\n'
        "[reload]\nwatch_file = false\n\n"
        '[[watches]]\nname = "porch"\ncamera = "front"\ncondition = "a fox"\nbackend = "vlm"\n'
    )
    app = App(load_config(path), path)
    try:
        app.start()
        sink = app.pipeline.sinks.sinks["mqtt"]
        assert isinstance(sink, MqttSink)
        wait_until(lambda: sink.sweep is not None and sink.sweep.done, 15, "the sweep")
        assert app.pipeline.mqtt is not None and app.pipeline.mqtt.flush(10)
        left = retained(mosquitto, f"{PREFIX}/#")
    finally:
        app.stop()
    camera = f"{PREFIX}/device/lookout/camera_front/config"
    assert set(left) == device_topics("lookout", "porch") | {HUB, camera}
    assert all(b"default_entity_id" in payload for payload in left.values())


CAMERA = '[cameras.a]\nurl = "a.mp4"\n[sinks.m]\ntype = "mqtt"\nhome_assistant = true\n'


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            '[metrics]\nenabled = true\nhost = "192.168.1.5"\nport = 9200\n',
            "http://192.168.1.5:9200/metrics",
        ),
        ('[metrics]\nenabled = true\nhost = "lookout.lan"\n', "http://lookout.lan:9108/metrics"),
        ('[metrics]\nenabled = true\nhost = "fd00::5"\n', "http://[fd00::5]:9108/metrics"),
        ('[metrics]\nenabled = true\nhost = "127.0.0.1"\n', None),
        ('[metrics]\nenabled = true\nhost = "0.0.0.0"\n', None),
        ('[metrics]\nenabled = true\nhost = "192.168.1.5"\nport = 0\n', None),
        ('[metrics]\nhost = "192.168.1.5"\n', None),
    ],
)
def test_configuration_url_defaults_to_a_reachable_metrics_address(
    extra: str, expected: str | None
) -> None:
    cfg = load_config_text("[mqtt]\n" + CAMERA + extra)
    sink = cfg.sinks["m"]
    assert isinstance(sink, MqttSinkConfig)
    assert sink.configuration_url == expected


def test_an_explicit_configuration_url_wins() -> None:
    cfg = load_config_text(
        "[mqtt]\n"
        + CAMERA
        + 'configuration_url = "https://lookout.example/"\n'
        + '[metrics]\nenabled = true\nhost = "192.168.1.5"\n'
    )
    sink = cfg.sinks["m"]
    assert isinstance(sink, MqttSinkConfig)
    assert sink.configuration_url == "https://lookout.example"
