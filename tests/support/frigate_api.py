"""A fake Frigate HTTP API on loopback: ``/api/config`` and ``/api/<camera>/latest.jpg``.

``/api/config`` answers the JSON given (shaped like Frigate's: ``cameras.<name>.detect``,
``cameras.<name>.zones.<zone>.coordinates``, ``mqtt.topic_prefix``); each camera of
it serves a red JPEG of the height asked (``?h=``, default 120). Every request is
recorded (``requests``: the paths; ``server.all()``: with their headers); setting
``status`` makes every answer that status.

Example::

    with FrigateApi(sample_config()) as api:
        fetch(f"http://127.0.0.1:{api.port}/api/config")
"""

from __future__ import annotations

import io
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
import orjson
from PIL import Image

from tests.support.http_receiver import HttpReceiver, Received, Reply


def sample_config(prefix: str = "frigate") -> dict[str, Any]:
    """A Frigate ``/api/config`` answer with two cameras and their zones (Frigate 0.14+)."""
    return {
        "mqtt": {"enabled": True, "host": "mqtt", "topic_prefix": prefix},
        "cameras": {
            "front_cam": {
                "name": "front_cam",
                "enabled": True,
                "detect": {"enabled": True, "width": 1280, "height": 720, "fps": 5},
                "zones": {
                    "front_yard": {
                        "coordinates": "0.05,0.55,0.95,0.55,0.95,0.98,0.05,0.98",
                        "inertia": 3,
                        "loitering_time": 0,
                        "objects": [],
                    },
                    "street": {"coordinates": ["0,0.2", "1,0.2", "1,0.5", "0,0.5"]},
                },
                "objects": {"track": ["person", "car"]},
            },
            "garage": {
                "name": "garage",
                "enabled": True,
                "detect": {"width": 640, "height": 480},
                "zones": {},
            },
            "attic": {"name": "attic", "enabled": False, "detect": {}, "zones": {}},
        },
    }


class FrigateApi:
    """Serves ``/api/config`` from ``config`` and a JPEG for each of its cameras."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = config if config is not None else sample_config()
        self.status = 200
        self.server = HttpReceiver(respond=self._respond).start()
        self.port = self.server.port
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[str]:
        """The path of every request, in order."""
        return [r.path for r in self.server.all()]

    def _respond(self, request: Received) -> Reply:
        if self.status != 200:
            return Reply(self.status)
        path = unquote(urlsplit(request.path).path)
        if path == "/api/config":
            return Reply(
                headers={"Content-Type": "application/json"}, body=orjson.dumps(self.config)
            )
        parts = path.strip("/").split("/")
        cameras = self.config.get("cameras", {})
        if parts[:1] == ["api"] and parts[2:] == ["latest.jpg"] and parts[1] in cameras:
            height = int(parse_qs(urlsplit(request.path).query).get("h", ["120"])[0])
            return Reply(headers={"Content-Type": "image/jpeg"}, body=_jpeg(height))
        return Reply(404)

    def close(self) -> None:
        """Stop the server."""
        self.server.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _jpeg(height: int) -> bytes:
    """A red 4:3 JPEG ``height`` pixels high (Frigate's ``?h=``)."""
    img = np.full((height, height * 4 // 3, 3), (200, 30, 30), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=85)
    return buf.getvalue()
