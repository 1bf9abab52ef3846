"""A fake Frigate on loopback: ``/api/porch/latest.jpg`` as a real HTTP server, for tests.

Example::

    server = FakeFrigate()
    camera = FrigateSnapshotSource("porch", CameraConfig(url=f"frigate://127.0.0.1:{server.port}/porch"))
    server.status = 500     # every request fails from now on
    server.close()
"""

from __future__ import annotations

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image


class FakeFrigate:
    """Serves ``/api/<camera>/latest.jpg`` (a JPEG of the requested height) or a set status."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []
        self.status = 200
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append((self.path, self.headers.get("Authorization")))
                if owner.status != 200 or not self.path.startswith("/api/porch/latest.jpg"):
                    self.send_error(owner.status if owner.status != 200 else 404)
                    return
                height = int(self.path.partition("?h=")[2] or 240)
                img = np.full((height, height * 4 // 3, 3), (200, 30, 30), np.uint8)
                buf = io.BytesIO()
                Image.fromarray(img).save(buf, format="JPEG", quality=90)
                body = buf.getvalue()
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
