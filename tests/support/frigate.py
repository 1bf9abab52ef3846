"""A fake Frigate on loopback: ``/api/porch/latest.jpg`` as a real HTTP server, for tests.

Example::

    server = FakeFrigate()
    camera = FrigateSnapshotSource("porch", CameraConfig(url=f"frigate://127.0.0.1:{server.port}/porch"))
    server.status = 500     # every request fails from now on
    server.close()
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from tests.support.http_receiver import HttpReceiver, Received, Reply


class FakeFrigate:
    """Serves ``/api/porch/latest.jpg`` (a JPEG of the requested height) or a set status."""

    def __init__(self) -> None:
        self.status = 200
        self.server = HttpReceiver(respond=self._respond).start()
        self.port = self.server.port

    @property
    def requests(self) -> list[tuple[str, str | None]]:
        """(path, Authorization header) of every request, in order."""
        return [(r.path, r.headers.get("authorization")) for r in self.server.all()]

    def _respond(self, request: Received) -> Reply:
        if self.status != 200 or not request.path.startswith("/api/porch/latest.jpg"):
            return Reply(self.status if self.status != 200 else 404)
        height = int(request.path.partition("?h=")[2] or 240)
        img = np.full((height, height * 4 // 3, 3), (200, 30, 30), np.uint8)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=90)
        return Reply(headers={"Content-Type": "image/jpeg"}, body=buf.getvalue())

    def close(self) -> None:
        """Stop the server."""
        self.server.stop()
