"""A fake Frigate HTTP API on loopback: ``/api/config`` and ``/api/<camera>/latest.jpg``.

``/api/config`` answers the JSON given (shaped like Frigate's: ``cameras.<name>.detect``,
``cameras.<name>.zones.<zone>.coordinates``, ``mqtt.topic_prefix``); each camera of
it serves a small JPEG. Every request is recorded.

Example::

    with FrigateApi(FrigateApi.sample()) as api:
        fetch(f"http://127.0.0.1:{api.port}/api/config")
"""

from __future__ import annotations

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote, urlsplit

import numpy as np
import orjson
from PIL import Image


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
        self.requests: list[str] = []
        self.status = 200
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append(self.path)
                path = unquote(urlsplit(self.path).path)
                if owner.status != 200:
                    self.send_error(owner.status)
                    return
                if path == "/api/config":
                    self._send(orjson.dumps(owner.config), "application/json")
                    return
                parts = path.strip("/").split("/")
                cameras = owner.config.get("cameras", {})
                if parts[:1] == ["api"] and parts[2:] == ["latest.jpg"] and parts[1] in cameras:
                    self._send(_jpeg(), "image/jpeg")
                    return
                self.send_error(404)

            def _send(self, body: bytes, ctype: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _jpeg() -> bytes:
    img = np.full((120, 160, 3), (30, 120, 200), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=85)
    return buf.getvalue()
