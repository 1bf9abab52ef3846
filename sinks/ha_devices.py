"""Home Assistant device-based MQTT discovery: one device per watch and one per camera.

One retained config per device, ``<discovery_prefix>/device/<node>/<object>/config``
(``<node>`` is the topic prefix, made safe; ``<object>`` is ``watch_<name>`` or
``camera_<name>``), in the shape Home Assistant documents for device discovery
(HA 2024.11 and later; ``default_entity_id`` from 2025.10): ``dev`` (with
``sw_version`` and, when known, ``configuration_url``), ``o`` (origin) and
``cmps``, one entry per entity, each with its platform ``p`` and ``unique_id``.

A watch's device: *condition met* (binary sensor), *last reasoning* and
*status* (sensors), *snapshot* (an image entity showing the judged frame of the
last alert) and, with ``[control]`` enabled, a *cancel* button (publishes to
``<p>/watches/<name>/cancel``). A camera's device: *online* (connectivity) and
*last frame* (timestamp) and, with ``[control]`` enabled, a *new watch* text
entity: the words typed become a run-time watch on that camera (published to
``<p>/watches/set``). An empty retained payload on a device's topic removes the
device and all its entities.

Example:
    >>> setup = HaSetup("lookout", "homeassistant", control=True)
    >>> topic, payload = watch_device("porch", setup)
    >>> topic, sorted(orjson.loads(payload)["cmps"])
    ('homeassistant/device/lookout/watch_porch/config', ['cancel', 'met', 'reasoning', \
'snapshot', 'status'])
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from pipeline import __version__
from sinks.ha_discovery import safe, support_url

TEXT_MAX = 255
"""Home Assistant keeps at most 255 characters in a text entity."""
_NOT_ENTITY = re.compile(r"[^a-z0-9_]")


def entity_part(name: str) -> str:
    """``name`` as Home Assistant entity ids spell it: lower case letters, digits and ``_``.

    Example:
        >>> entity_part("Front-Door")
        'front_door'
    """
    return _NOT_ENTITY.sub("_", name.lower())


@dataclass(frozen=True, slots=True)
class HaSetup:
    """What the discovery configs depend on.

    Attributes:
        topic_prefix: ``[mqtt] topic_prefix``.
        discovery_prefix: Home Assistant's discovery prefix.
        configuration_url: where Lookout's page is, if known.
        control: ``[control]`` is enabled: the cancel buttons and new-watch texts exist.
    """

    topic_prefix: str
    discovery_prefix: str = "homeassistant"
    configuration_url: str | None = None
    control: bool = False

    @property
    def node(self) -> str:
        """Lookout's node id in discovery topics and ids."""
        return safe(self.topic_prefix)


def watch_device_topic(watch: str, setup: HaSetup) -> str:
    """The device config topic of a watch."""
    return f"{setup.discovery_prefix}/device/{setup.node}/watch_{safe(watch)}/config"


def camera_device_topic(camera: str, setup: HaSetup) -> str:
    """The device config topic of a camera."""
    return f"{setup.discovery_prefix}/device/{setup.node}/camera_{safe(camera)}/config"


def _device(ident: str, name: str, model: str, setup: HaSetup) -> dict[str, Any]:
    device: dict[str, Any] = {
        "identifiers": [ident],
        "name": name,
        "manufacturer": "Lookout",
        "model": model,
        "sw_version": __version__,
    }
    if setup.configuration_url:
        device["configuration_url"] = setup.configuration_url
    return device


def _origin() -> dict[str, str]:
    origin = {"name": "Lookout", "sw_version": __version__}
    url = support_url()
    if url:
        origin["support_url"] = url
    return origin


def _payload(device: dict[str, Any], components: dict[str, Any], setup: HaSetup) -> bytes:
    return orjson.dumps(
        {
            "dev": device,
            "o": _origin(),
            "cmps": components,
            "availability_topic": f"{setup.topic_prefix}/available",
            "payload_available": "online",
            "payload_not_available": "offline",
        }
    )


def watch_device(watch: str, setup: HaSetup) -> tuple[str, bytes]:
    """The discovery config of a watch's device: ``(topic, payload)``."""
    w = safe(watch)
    e = entity_part(watch)
    node = setup.node
    state = f"{setup.topic_prefix}/watches/{watch}/state"
    uid = f"lookout_{node}_{w}"
    components: dict[str, Any] = {
        "met": {
            "p": "binary_sensor",
            "name": "Condition met",
            "unique_id": f"{uid}_met",
            "default_entity_id": f"binary_sensor.lookout_{e}_met",
            "state_topic": state,
            "value_template": "{{ 'ON' if value_json.condition_met else 'OFF' }}",
            "payload_on": "ON",
            "payload_off": "OFF",
            "json_attributes_topic": state,
        },
        "reasoning": {
            "p": "sensor",
            "name": "Last reasoning",
            "unique_id": f"{uid}_reasoning",
            "default_entity_id": f"sensor.lookout_{e}_reasoning",
            "state_topic": state,
            "value_template": "{{ (value_json.last_reasoning or '')[:250] }}",
            "icon": "mdi:eye",
        },
        "status": {
            "p": "sensor",
            "name": "Status",
            "unique_id": f"{uid}_status",
            "default_entity_id": f"sensor.lookout_{e}_status",
            "state_topic": state,
            "value_template": "{{ value_json.status }}",
            "device_class": "enum",
            "options": ["queued", "running", "success", "failed", "cancelled"],
        },
        "snapshot": {
            "p": "image",
            "name": "Snapshot",
            "unique_id": f"{uid}_snapshot",
            "default_entity_id": f"image.lookout_{e}_snapshot",
            "image_topic": f"{setup.topic_prefix}/watches/{watch}/snapshot",
            "content_type": "image/jpeg",
        },
    }
    if setup.control:
        components["cancel"] = {
            "p": "button",
            "name": "Cancel",
            "unique_id": f"{uid}_cancel",
            "default_entity_id": f"button.lookout_{e}_cancel",
            "command_topic": f"{setup.topic_prefix}/watches/{watch}/cancel",
            "payload_press": "{}",
            "icon": "mdi:cancel",
        }
    device = _device(uid, f"Lookout watch {watch}", "watch", setup)
    device["via_device"] = f"lookout_{node}"
    return watch_device_topic(watch, setup), _payload(device, components, setup)


def new_watch_template(camera: str) -> str:
    """The ``command_template`` that turns typed words into a ``watches/set`` request.

    The watch is named ``ha_<camera>_<unix time>`` and asks the typed condition
    of ``camera``; the reply goes to ``<p>/watches/reply``.

    Example:
        >>> "\\"camera\\": \\"porch\\"" in new_watch_template("porch")
        True
    """
    name = orjson.dumps(f"ha_{safe(camera)}_").decode()[1:-1]
    cam = orjson.dumps(camera).decode()
    return (
        f'{{"name": "{name}{{{{ now().timestamp() | int }}}}", "camera": {cam}, '
        '"condition": {{ value | tojson }}}'
    )


def camera_device(camera: str, setup: HaSetup) -> tuple[str, bytes]:
    """The discovery config of a camera's device: ``(topic, payload)``."""
    c = safe(camera)
    e = entity_part(camera)
    node = setup.node
    uid = f"lookout_{node}_camera_{c}"
    state = f"{setup.topic_prefix}/cameras/{camera}/state"
    components: dict[str, Any] = {
        "online": {
            "p": "binary_sensor",
            "name": "Online",
            "unique_id": f"{uid}_online",
            "default_entity_id": f"binary_sensor.lookout_camera_{e}_online",
            "device_class": "connectivity",
            "state_topic": state,
            "value_template": "{{ 'ON' if value_json.online else 'OFF' }}",
            "payload_on": "ON",
            "payload_off": "OFF",
            "json_attributes_topic": state,
        },
        "last_frame": {
            "p": "sensor",
            "name": "Last frame",
            "unique_id": f"{uid}_last_frame",
            "default_entity_id": f"sensor.lookout_camera_{e}_last_frame",
            "device_class": "timestamp",
            "state_topic": f"{setup.topic_prefix}/cameras/{camera}/stats",
            "value_template": "{{ value_json.last_frame or None }}",
        },
    }
    if setup.control:
        components["new_watch"] = {
            "p": "text",
            "name": "New watch",
            "unique_id": f"{uid}_new_watch",
            "default_entity_id": f"text.lookout_camera_{e}_new_watch",
            "command_topic": f"{setup.topic_prefix}/watches/set",
            "command_template": new_watch_template(camera),
            "min": 1,
            "max": TEXT_MAX,
            "mode": "text",
            "icon": "mdi:eye-plus",
        }
    device = _device(uid, f"Lookout camera {camera}", "camera", setup)
    device["via_device"] = f"lookout_{node}"
    return camera_device_topic(camera, setup), _payload(device, components, setup)


def hub_device_topic(setup: HaSetup) -> str:
    """The config topic of Lookout's own device (the one watches and cameras are linked via)."""
    return f"{setup.discovery_prefix}/device/{setup.node}/lookout/config"


def hub_device(setup: HaSetup) -> tuple[str, bytes]:
    """Lookout's own device: its availability as a connectivity sensor."""
    node = setup.node
    components = {
        "available": {
            "p": "binary_sensor",
            "name": "Running",
            "unique_id": f"lookout_{node}_running",
            "default_entity_id": f"binary_sensor.lookout_{entity_part(node)}_running",
            "device_class": "running",
            "state_topic": f"{setup.topic_prefix}/available",
            "payload_on": "online",
            "payload_off": "offline",
        }
    }
    device = _device(f"lookout_{node}", f"Lookout ({setup.topic_prefix})", "camera watches", setup)
    payload = orjson.loads(_payload(device, components, setup))
    del payload["availability_topic"], payload["payload_available"]
    del payload["payload_not_available"]
    return hub_device_topic(setup), orjson.dumps(payload)
