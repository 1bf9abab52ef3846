"""Pick the frame source for a ``[cameras.NAME]`` table by its URL."""

from __future__ import annotations

from urllib.parse import urlsplit

from pipeline.core.config import CameraConfig
from pipeline.core.frame import FrameSource
from sources.camera import CameraSource
from sources.frigate_snapshot import FrigateSnapshotSource


def make_camera(name: str, config: CameraConfig) -> FrameSource:
    """A ``FrigateSnapshotSource`` for ``frigate://`` URLs, else a PyAV ``CameraSource``.

    Both are a :class:`~pipeline.core.frame.FrameSource`: callers need not know which.

    Example:
        >>> cam = make_camera("porch", CameraConfig(url="frigate://nvr.lan:5000/porch"))
        >>> type(cam).__name__
        'FrigateSnapshotSource'
        >>> cam.close()
    """
    if "://" in config.url and urlsplit(config.url).scheme.lower() == "frigate":
        return FrigateSnapshotSource(name, config)
    return CameraSource(name, config)
