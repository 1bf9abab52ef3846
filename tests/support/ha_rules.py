"""Home Assistant's MQTT discovery rules, as its documentation states them, to check payloads.

Sources (Home Assistant 2025.10, the release that deprecates ``object_id`` for
``default_entity_id``):

- https://www.home-assistant.io/integrations/mqtt/ , "MQTT Discovery": the discovery
  topic ``<discovery_prefix>/<component>/[<node_id>/]<object_id>/config`` (node and
  object ids of ``[a-zA-Z0-9_-]``); "Device discovery payload" (HA 2024.11+): ``dev``
  (``identifiers`` or ``connections``), ``o`` (origin, with ``name``; required for
  device discovery) and ``cmps`` (each component with its platform ``p`` and, for
  entities, a ``unique_id``), options shared by every component at the top level;
  an empty payload removes the device; ``default_entity_id`` is
  ``<domain>.<object_id>``; ``object_id`` is deprecated (removed in 2026.4).
- https://www.home-assistant.io/integrations/binary_sensor.mqtt/ and
  https://www.home-assistant.io/integrations/sensor.mqtt/ : ``state_topic`` required;
  a sensor of ``device_class: enum`` lists its ``options``.
- https://www.home-assistant.io/integrations/button.mqtt/ : ``command_topic`` required.
- https://www.home-assistant.io/integrations/text.mqtt/ : ``command_topic`` required;
  ``min`` >= 0, ``max`` <= 255, ``mode`` ``text`` or ``password``.
- https://www.home-assistant.io/integrations/image.mqtt/ : exactly one of
  ``image_topic`` and ``url_topic``; ``content_type`` goes with ``image_topic``.
- Device classes: https://www.home-assistant.io/integrations/binary_sensor/#device-class
  and https://www.home-assistant.io/integrations/sensor/#device-class .
"""

from __future__ import annotations

import re
from typing import Any

DOCS = "https://www.home-assistant.io/integrations/mqtt/ (Home Assistant 2025.10)"
TOPIC = re.compile(r"^(?P<prefix>[^+#]+?)/(?P<component>[a-z_]+)/(?:(?P<node>[A-Za-z0-9_-]+)/)?"
                   r"(?P<object>[A-Za-z0-9_-]+)/config$")  # fmt: skip
PLATFORMS = {"binary_sensor", "sensor", "button", "text", "image"}
REQUIRED = {
    "binary_sensor": ("state_topic",),
    "sensor": ("state_topic",),
    "button": ("command_topic",),
    "text": ("command_topic",),
    "image": (),
}
DEVICE_CLASSES = {
    "binary_sensor": {"connectivity", "running", "problem", "motion", "occupancy", "presence"},
    "sensor": {"timestamp", "enum", "duration"},
    "button": {"identify", "restart", "update"},
}
DEVICE_KEYS = {
    "identifiers", "connections", "name", "manufacturer", "model", "sw_version", "hw_version",
    "configuration_url", "via_device", "suggested_area", "serial_number", "model_id",
}  # fmt: skip
ORIGIN_KEYS = {"name", "sw_version", "support_url"}


def _topic_ok(topic: Any) -> bool:
    return isinstance(topic, str) and bool(topic) and "+" not in topic and "#" not in topic


def device_problems(topic: str, doc: dict[str, Any]) -> list[str]:
    """Every way ``doc`` on ``topic`` breaks the documented device discovery rules (none: ok)."""
    problems: list[str] = []
    m = TOPIC.match(topic)
    if m is None or m["component"] != "device":
        problems.append(f"{topic}: not <prefix>/device/[<node>/]<object>/config")
    dev, origin, cmps = doc.get("dev"), doc.get("o"), doc.get("cmps")
    if not isinstance(dev, dict) or not (dev.get("identifiers") or dev.get("connections")):
        problems.append("dev: needs identifiers or connections")
    else:
        problems += [f"dev.{k}: not a device option" for k in dev if k not in DEVICE_KEYS]
    if not isinstance(origin, dict) or not origin.get("name"):
        problems.append("o: the origin (with its name) is required for device discovery")
    else:
        problems += [f"o.{k}: not an origin option" for k in origin if k not in ORIGIN_KEYS]
    if not isinstance(cmps, dict) or not cmps:
        return [*problems, "cmps: needs at least one component"]
    ids = [c.get("unique_id") for c in cmps.values() if isinstance(c, dict)]
    if len(ids) != len(set(ids)):
        problems.append("cmps: unique_id used twice")
    shared = {k: v for k, v in doc.items() if k not in ("dev", "o", "cmps")}
    for key, comp in cmps.items():
        problems += [f"cmps.{key}: {p}" for p in component_problems({**shared, **comp})]
    return problems


def component_problems(comp: dict[str, Any]) -> list[str]:
    """Rules of one component (with the shared options merged in)."""
    problems: list[str] = []
    platform = comp.get("p", comp.get("platform"))
    if platform not in PLATFORMS:
        return [f"platform {platform!r} is not one of {sorted(PLATFORMS)}"]
    if not comp.get("unique_id"):
        problems.append("unique_id is required in device discovery")
    if "object_id" in comp:
        problems.append("object_id is deprecated since 2025.10: use default_entity_id")
    entity_id = comp.get("default_entity_id")
    if entity_id is not None and not re.fullmatch(rf"{platform}\.[a-z0-9_]+", str(entity_id)):
        problems.append(f"default_entity_id {entity_id!r} is not {platform}.<object_id>")
    for key in REQUIRED[platform]:
        if not _topic_ok(comp.get(key)):
            problems.append(f"{key} is required (a topic without wildcards)")
    for key in ("state_topic", "command_topic", "availability_topic", "json_attributes_topic",
                "image_topic", "url_topic"):  # fmt: skip
        if key in comp and not _topic_ok(comp[key]):
            problems.append(f"{key} {comp[key]!r} is not a topic without wildcards")
    return problems + _platform_problems(str(platform), comp)


def _platform_problems(platform: str, comp: dict[str, Any]) -> list[str]:
    """Device class and the rules of the image, text and enum sensor platforms."""
    problems: list[str] = []
    dc = comp.get("device_class")
    if dc is not None and dc not in DEVICE_CLASSES.get(platform, set()):
        problems.append(f"device_class {dc!r} is not a {platform} device class")
    if platform == "sensor" and dc == "enum" and not comp.get("options"):
        problems.append("an enum sensor lists its options")
    if platform == "image":
        if ("image_topic" in comp) == ("url_topic" in comp):
            problems.append("exactly one of image_topic and url_topic")
        if "content_type" in comp and "image_topic" not in comp:
            problems.append("content_type goes with image_topic")
    if platform == "text":
        if not 0 <= int(comp.get("min", 0)) <= int(comp.get("max", 255)) <= 255:
            problems.append("text: 0 <= min <= max <= 255")
        if comp.get("mode", "text") not in ("text", "password"):
            problems.append("text: mode is text or password")
    return problems
