"""``[frigate]``: read Frigate's cameras and zones from its HTTP API and offer them to watches.

At start (and on each reload) Lookout asks Frigate for ``/api/config`` and adds
every Frigate camera that ``[cameras]`` does not declare:

- ``url = "frigate://<host:port>/<camera>"``: pictures from
  ``/api/<camera>/latest.jpg`` (no video decode in Lookout);
- ``detect.type = "frigate"``: woken by ``<prefix>/events``, ``<prefix>/reviews``
  and ``<prefix>/tracked_object_update``, with Frigate's detect size;
- Frigate's zones by name, with their polygons (``inertia = 1``: Frigate
  applied its own rules, and the zones Frigate reports count at once).

So a Frigate user's watch needs only ``camera``, ``condition``, ``labels`` and
``zones``. Then every reference is checked again, naming the TOML key.

Example:
    >>> api = {"mqtt": {"topic_prefix": "frigate"}, "cameras": {"porch": {
    ...     "detect": {"width": 1280, "height": 720},
    ...     "zones": {"steps": {"coordinates": "0.1,0.5,0.9,0.5,0.9,1,0.1,1"}}}}}
    >>> cams = frigate_cameras(api, FrigateConfig(url="http://nvr.lan:5000"))
    >>> cams["porch"].url, sorted(cams["porch"].zones), cams["porch"].detect.detect_width
    ('frigate://nvr.lan:5000/porch', ['steps'], 1280)
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

import orjson

from pipeline.core.config import (
    CameraConfig,
    FrigateConfig,
    FrigateDetectConfig,
    LookoutConfig,
    ZoneConfig,
)
from pipeline.core.config_loader import check_references
from pipeline.core.config_problems import ConfigError, ConfigProblem
from pipeline.core.redact import redact
from pipeline.net.http import HttpClient, HttpResponse, TransportError

log = logging.getLogger(__name__)

RETRY_S = 2.0
"""Seconds between two requests to a Frigate that did not answer, at start."""
MAX_CONFIG_BYTES = 16 * 1024 * 1024
"""Frigate's ``/api/config`` is a few hundred kB at most; a bigger answer is refused."""


class FrigateUnavailable(RuntimeError):
    """Frigate's ``/api/config`` could not be read (down, refused, not Frigate)."""


def fetch_frigate_config(frigate: FrigateConfig) -> dict[str, Any]:
    """``GET <url>/api/config`` within ``request_timeout_s``; return the parsed JSON.

    Raises:
        FrigateUnavailable: no answer, an HTTP error, or not a JSON object with ``cameras``.
    """
    client = HttpClient(
        frigate.url,
        connect_timeout_s=min(5.0, frigate.request_timeout_s),
        read_timeout_s=frigate.request_timeout_s,
        request_timeout_s=frigate.request_timeout_s,
        pool_size=1,
        max_body=MAX_CONFIG_BYTES,
    )
    try:
        answer = client.request("GET", "/api/config", headers={"accept": "application/json"})
    except TransportError as exc:
        raise FrigateUnavailable(f"frigate.url: cannot read /api/config ({exc})") from None
    finally:
        client.close()
    return _parse_config(answer)


def _parse_config(answer: HttpResponse) -> dict[str, Any]:
    if answer.status != 200:
        raise FrigateUnavailable(f"frigate.url: /api/config answered HTTP {answer.status}")
    try:
        data = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        raise FrigateUnavailable("frigate.url: /api/config is not JSON; is it Frigate?") from None
    if not isinstance(data, dict) or not isinstance(data.get("cameras"), dict):
        raise FrigateUnavailable("frigate.url: /api/config has no 'cameras'; is it Frigate?")
    return data


def zone_points(coordinates: Any) -> list[tuple[float, float]]:
    """A Frigate zone's corners from ``"x1,y1,x2,y2,..."`` or ``["x1,y1", ...]``.

    Example:
        >>> zone_points("0.1,0.5,0.9,0.5,0.9,1")
        [(0.1, 0.5), (0.9, 0.5), (0.9, 1.0)]

    Raises:
        ValueError: not pairs of numbers.
    """
    text = ",".join(str(c) for c in coordinates) if isinstance(coordinates, list) else coordinates
    values = [float(v) for v in str(text).split(",") if v.strip()]
    if len(values) % 2:
        raise ValueError("an odd number of coordinates")
    return list(zip(values[::2], values[1::2], strict=True))


def _camera_url(frigate: FrigateConfig, camera: str) -> str:
    parts = urlsplit(frigate.url)
    query = []
    if parts.scheme == "https":
        query.append("tls=1")
    if frigate.snapshot_height is not None:
        query.append(f"h={frigate.snapshot_height}")
    return f"frigate://{parts.netloc}/{camera}" + (f"?{'&'.join(query)}" if query else "")


def _zones(name: str, camera: dict[str, Any]) -> dict[str, ZoneConfig]:
    zones: dict[str, ZoneConfig] = {}
    for zone, table in (camera.get("zones") or {}).items():
        try:
            zones[str(zone)] = ZoneConfig(
                points=zone_points((table or {}).get("coordinates", "")), inertia=1
            )
        except ValueError as exc:
            log.warning("frigate: camera %s zone %s skipped (%s)", name, zone, redact(str(exc)))
    return zones


def frigate_cameras(api: dict[str, Any], frigate: FrigateConfig) -> dict[str, CameraConfig]:
    """The cameras that Frigate's ``/api/config`` answer offers (enabled, and named if listed)."""
    prefix = frigate.topic_prefix or str((api.get("mqtt") or {}).get("topic_prefix") or "frigate")
    out: dict[str, CameraConfig] = {}
    for name, camera in api["cameras"].items():
        if not isinstance(camera, dict) or camera.get("enabled") is False:
            continue
        if frigate.cameras is not None and name not in frigate.cameras:
            continue
        detect = camera.get("detect") or {}
        width, height = detect.get("width"), detect.get("height")
        sized = isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0
        try:
            out[name] = CameraConfig(
                url=_camera_url(frigate, name),
                zones=_zones(name, camera),
                detect=FrigateDetectConfig(
                    topic_prefix=prefix,
                    camera=name,
                    detect_width=width if sized else None,
                    detect_height=height if sized else None,
                    reviews=frigate.reviews,
                    object_updates=frigate.object_updates,
                ),
            )
        except ValueError as exc:
            log.warning("frigate: camera %s skipped (%s)", name, redact(str(exc)))
    return out


def with_frigate(cfg: LookoutConfig, api: dict[str, Any], source: str = "") -> LookoutConfig:
    """``cfg`` with the Frigate cameras it does not declare; every reference checked again.

    Raises:
        ConfigError: a watch names a camera or zone neither the config nor Frigate has.
    """
    if cfg.frigate is None:
        return cfg
    offered = frigate_cameras(api, cfg.frigate)
    cameras = {**offered, **cfg.cameras}
    merged = cfg.model_copy(update={"cameras": cameras})
    problems = check_references(merged)
    if problems:
        hint = ", ".join(sorted(offered)) or "none"
        raise ConfigError(
            [
                ConfigProblem(p.path, f"{p.message} (Frigate cameras: {hint})")
                if p.path.startswith("watches")
                else p
                for p in problems
            ],
            source,
        )
    return merged


def _ask_until(frigate: FrigateConfig, deadline: float) -> dict[str, Any]:
    """Ask Frigate every :data:`RETRY_S` seconds until it answers or ``deadline`` passes."""
    while True:
        try:
            return fetch_frigate_config(frigate)
        except FrigateUnavailable as exc:
            if time.monotonic() + RETRY_S > deadline:
                raise
            log.warning("%s; asking again in %g s", exc, RETRY_S)
            time.sleep(RETRY_S)


def resolve_frigate(cfg: LookoutConfig, source: str = "", *, wait: bool = True) -> LookoutConfig:
    """Ask Frigate for its cameras and add them (:func:`with_frigate`); no-op without ``[frigate]``.

    Args:
        cfg: a loaded config.
        source: the file, for error messages.
        wait: keep asking an unreachable Frigate for ``frigate.startup_wait_s``
            (at start); otherwise ask once (``check``, reloads).

    Raises:
        FrigateUnavailable: Frigate could not be asked, and a watch needs one of its cameras.
        ConfigError: a watch names a camera or zone that neither has.
    """
    if cfg.frigate is None:
        return cfg
    try:
        api = _ask_until(
            cfg.frigate, time.monotonic() + (cfg.frigate.startup_wait_s if wait else 0)
        )
    except FrigateUnavailable as exc:
        if all(w.camera in cfg.cameras for w in cfg.watches):
            log.warning("%s; going on with the declared cameras only", exc)
            return cfg
        raise
    merged = with_frigate(cfg, api, source)
    added = sorted(set(merged.cameras) - set(cfg.cameras))
    log.info("frigate: %d camera(s) from %s: %s", len(added), cfg.frigate.url, ", ".join(added))
    return merged
