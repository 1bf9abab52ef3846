"""The samples in docs/: Home Assistant automations and a Frigate + Lookout setup, parsed and checked."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import yaml

from pipeline.app.control.request import RuntimeWatchRequest
from pipeline.app.control.topics import parse_topic
from pipeline.app.frigate_setup import resolve_frigate, zone_points
from pipeline.core.config_loader import load_config_text
from sinks.ha_devices import HaSetup, camera_device, watch_device
from tests.support.frigate_api import FrigateApi

DOCS = Path(__file__).resolve().parents[1] / "docs"
PREFIX = "lookout"


def entity_ids() -> set[str]:
    """The entity ids Lookout suggests for watch ``porch`` and camera ``front``, control on."""
    setup = HaSetup(PREFIX, control=True)
    ids: set[str] = set()
    for _, payload in (watch_device("porch", setup), camera_device("front", setup)):
        ids |= {c["default_entity_id"] for c in orjson.loads(payload)["cmps"].values()}
    return ids


def walk(node: Any) -> list[dict[str, Any]]:
    """Every mapping in a parsed YAML document."""
    if isinstance(node, dict):
        return [node, *(m for v in node.values() for m in walk(v))]
    if isinstance(node, list):
        return [m for v in node for m in walk(v)]
    return []


def test_home_assistant_sample_parses_and_uses_lookouts_topics_and_entities() -> None:
    doc = yaml.safe_load((DOCS / "home-assistant" / "automations.yaml").read_text())
    automations, scripts = doc["automations"], doc["scripts"]
    assert automations and scripts
    for a in automations:
        assert {"id", "alias", "triggers", "actions"} <= set(a), a.get("id")
    known = entity_ids()
    for m in walk(doc):
        entity = m.get("entity_id")
        if isinstance(entity, str) and entity.split(".")[0] in ("button", "text", "image"):
            assert entity in known, entity
        if isinstance(entity, str) and "lookout" in entity:
            assert entity in known, entity
        if m.get("trigger") == "mqtt":
            assert re.fullmatch(rf"{PREFIX}/watches/\+/alert", m["topic"])
        if m.get("action") == "mqtt.publish":
            data = m["data"]
            parsed = parse_topic(data["topic"], PREFIX)
            assert parsed is not None, data["topic"]
            body = orjson.loads(data["payload"])
            if parsed[0] == "set":
                assert RuntimeWatchRequest.model_validate(body).camera == "front"
            else:
                assert body == {}
    images = [m["image"] for m in walk(doc) if "image" in m]
    assert images == ["/api/image_proxy/image.lookout_{{ trigger.payload_json.watch }}_snapshot"]
    assert "image.lookout_porch_snapshot" in known


def test_frigate_sample_resolves_the_watches_from_frigates_config(tmp_path: Path) -> None:
    frigate_cfg = yaml.safe_load((DOCS / "frigate" / "config.yml").read_text())
    for camera in frigate_cfg["cameras"].values():
        for zone in camera["zones"].values():
            assert len(zone_points(zone["coordinates"])) >= 3
    urls = tmp_path / "urls"
    urls.write_text("ntfy://ntfy.example.com/lookout-porch\n")
    with FrigateApi(frigate_cfg) as api:  # Frigate's /api/config answers its config as JSON
        text = (DOCS / "frigate" / "pipeline.toml").read_text()
        text = text.replace("http://frigate.lan:5000", api.url)
        text = text.replace("/run/secrets/lookout-notify-urls", str(urls))
        cfg = resolve_frigate(load_config_text(text), wait=False)
    front = cfg.cameras["front_door"]
    assert sorted(front.zones) == ["driveway", "porch"]
    assert front.url.startswith("frigate://127.0.0.1:")
    assert [w.camera for w in cfg.watches] == ["front_door", "front_door"]
    assert cfg.watches[1].labels == ["car:dad's car", "plate:ab123cd"]
