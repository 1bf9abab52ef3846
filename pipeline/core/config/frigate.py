"""``[frigate]``: take cameras, zones and detections from a Frigate NVR.

With this table a watch may name a Frigate camera that ``[cameras]`` does not
declare: at start Lookout reads Frigate's ``/api/config`` and adds each Frigate
camera as ``[cameras.<name>]`` with ``url = "frigate://host:port/<name>"``
(pictures from ``/api/<name>/latest.jpg``, so Lookout decodes no video),
``detect.type = "frigate"`` (woken by Frigate's events, reviews and tracked
object updates) and Frigate's zones (by name). A camera declared under
``[cameras]`` keeps its own table.

Example:
    >>> FrigateConfig(url="http://frigate:5000/").url
    'http://frigate:5000'
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from pipeline.core.config.base import MAX_PIXELS, Model, Name, check_http_url


class FrigateConfig(Model):
    """Frigate's HTTP API, and how its cameras are offered to watches."""

    url: str = Field(description="Frigate's HTTP API, such as http://frigate:5000.")
    topic_prefix: str | None = Field(
        None, description="Frigate's MQTT topic prefix; default: the one in Frigate's config."
    )
    cameras: list[Name] | None = Field(
        None, max_length=256, description="Frigate cameras to offer; default: all of them."
    )
    snapshot_height: int | None = Field(
        None,
        ge=16,
        le=MAX_PIXELS,
        description="Height in pixels of the pictures asked of Frigate; default: full size.",
    )
    reviews: Literal["off", "alerts", "all"] = Field(
        "all", description="Wake on Frigate review items: alerts only, all, or off."
    )
    object_updates: bool = Field(
        True, description="Take recognised faces and licence plates as detections."
    )
    request_timeout_s: float = Field(
        10.0, gt=0, le=300, description="Seconds the /api/config request may take in all."
    )
    startup_wait_s: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="At start, keep asking a Frigate that does not answer for this long.",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        return check_http_url(v)
