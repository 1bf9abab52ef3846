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


def _entity(
    platform: str, name: str, uid: str, ident: str, key: str, **keys: Any
) -> dict[str, Any]:
    """One component of a device: unique id ``<uid>_<key>``, entity ``<platform>.<ident>_<key>``.

    Example:
        >>> _entity("sensor", "Status", "lookout_n_porch", "lookout_porch", "status", icon="mdi:x")
        {'p': 'sensor', 'name': 'Status', 'unique_id': 'lookout_n_porch_status', \
'default_entity_id': 'sensor.lookout_porch_status', 'icon': 'mdi:x'}
    """
    return {
        "p": platform,
        "name": name,
        "unique_id": f"{uid}_{key}",
        "default_entity_id": f"{platform}.{ident}_{key}",
        **keys,
    }


def _on_off(state: str, field: str) -> dict[str, Any]:
    """A binary sensor's keys: ON while ``value_json.<field>`` of ``state`` is true."""
    return {
        "state_topic": state,
        "value_template": f"{{{{ 'ON' if value_json.{field} else 'OFF' }}}}",
        "payload_on": "ON",
        "payload_off": "OFF",
        "json_attributes_topic": state,
    }


def watch_device(watch: str, setup: HaSetup) -> tuple[str, bytes]:
    """The discovery config of a watch's device: ``(topic, payload)``."""
    w = safe(watch)
    e = entity_part(watch)
    node = setup.node
    state = f"{setup.topic_prefix}/watches/{watch}/state"
    uid = f"lookout_{node}_{w}"
    ident = f"lookout_{e}"
    components: dict[str, Any] = {
        "met": _entity(
            "binary_sensor", "Condition met", uid, ident, "met", **_on_off(state, "condition_met")
        ),
        "reasoning": _entity(
            "sensor", "Last reasoning", uid, ident, "reasoning",
            state_topic=state,
            value_template="{{ (value_json.last_reasoning or '')[:250] }}",
            icon="mdi:eye",
        ),
        "status": _entity(
            "sensor", "Status", uid, ident, "status",
            state_topic=state,
            value_template="{{ value_json.status }}",
            device_class="enum",
            options=["queued", "running", "success", "failed", "cancelled"],
        ),
        "snapshot": _entity(
            "image", "Snapshot", uid, ident, "snapshot",
            image_topic=f"{setup.topic_prefix}/watches/{watch}/snapshot",
            content_type="image/jpeg",
        ),
    }  # fmt: skip
    if setup.control:
        components["cancel"] = _entity(
            "button", "Cancel", uid, ident, "cancel",
            command_topic=f"{setup.topic_prefix}/watches/{watch}/cancel",
            payload_press="{}",
            icon="mdi:cancel",
        )  # fmt: skip
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
    ident = f"lookout_camera_{e}"
    components: dict[str, Any] = {
        "online": _entity(
            "binary_sensor", "Online", uid, ident, "online",
            device_class="connectivity",
            **_on_off(state, "online"),
        ),
        "last_frame": _entity(
            "sensor", "Last frame", uid, ident, "last_frame",
            device_class="timestamp",
            state_topic=f"{setup.topic_prefix}/cameras/{camera}/stats",
            value_template="{{ value_json.last_frame or None }}",
        ),
    }  # fmt: skip
    if setup.control:
        components["new_watch"] = _entity(
            "text", "New watch", uid, ident, "new_watch",
            command_topic=f"{setup.topic_prefix}/watches/set",
            command_template=new_watch_template(camera),
            min=1,
            max=TEXT_MAX,
            mode="text",
            icon="mdi:eye-plus",
        )  # fmt: skip
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
        "available": _entity(
            "binary_sensor", "Running", f"lookout_{node}", f"lookout_{entity_part(node)}",
            "running",
            device_class="running",
            state_topic=f"{setup.topic_prefix}/available",
            payload_on="online",
            payload_off="offline",
        )
    }  # fmt: skip
    device = _device(f"lookout_{node}", f"Lookout ({setup.topic_prefix})", "camera watches", setup)
    payload = orjson.loads(_payload(device, components, setup))
    del payload["availability_topic"], payload["payload_available"]
    del payload["payload_not_available"]
    return hub_device_topic(setup), orjson.dumps(payload)
