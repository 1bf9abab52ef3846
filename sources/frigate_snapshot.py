"""A Frigate camera's current picture over Frigate's HTTP API: no video decode at all."""

from __future__ import annotations

import base64
import io
import logging
import threading
import time
from collections.abc import Callable
from urllib.parse import parse_qs, quote, unquote, urlsplit

import numpy as np
import reactivex
from PIL import Image

from pipeline.core.config import CameraConfig
from pipeline.core.frame import Frame
from pipeline.core.redact import redact, redact_url, register_secret
from pipeline.net.http import HttpClient, TransportError
from sources.source_base import SourceBase
from sources.stream_errors import safe_error
from sources.taps import Tap

log = logging.getLogger("lookout.sources.frigate_snapshot")

DEFAULT_POLL_FPS = 2.0
MAX_SNAPSHOT_BYTES = 32 * 1024 * 1024
"""A bigger answer is not a picture Frigate sends; it is refused. (No proxies: Frigate is local.)"""


class SnapshotError(Exception):
    """Frigate answered, but not with a picture (HTTP error status, oversized body)."""


def snapshot_url(url: str) -> tuple[str, str | None]:
    """The ``latest.jpg`` URL of ``frigate://host[:port]/camera[?h=H&tls=1]`` and its Basic auth.

    Example:
        >>> snapshot_url("frigate://nvr.lan:5000/porch?h=480")
        ('http://nvr.lan:5000/api/porch/latest.jpg?h=480', None)

    Raises:
        ValueError: not a ``frigate://`` URL, or no camera name in its path.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() != "frigate":
        raise ValueError(f"Expected a frigate:// URL, got {redact_url(url)}.")
    camera = parts.path.strip("/")
    if not camera or "/" in camera:
        raise ValueError("A frigate:// URL names one camera: frigate://host:port/camera.")
    query = parse_qs(parts.query)
    scheme = "https" if query.get("tls", ["0"])[0] in ("1", "true") else "http"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    target = f"{scheme}://{netloc}/api/{quote(camera)}/latest.jpg"
    if "h" in query:
        target += f"?h={int(query['h'][0])}"
    auth = None
    if parts.username is not None:
        password = unquote(parts.password or "")
        register_secret(password)
        token = f"{unquote(parts.username)}:{password}".encode()
        auth = "Basic " + base64.b64encode(token).decode()
    return target, auth


class FrigateSnapshotSource(SourceBase):
    """A camera whose frames are Frigate's ``/api/<camera>/latest.jpg`` (Frigate decodes).

    A :class:`~pipeline.core.frame.FrameSource` like :class:`sources.camera.CameraSource`:
    ``latest()`` fetches one JPEG now; ``frames(fps)`` polls while subscribed (at the
    highest requested rate; ``fps=None`` means 2 per second). Each request is
    bounded by ``open_timeout_s`` (connect) and ``read_timeout_s``; a failed request
    marks the camera offline with a redacted error, a good one online again.
    In ``stats()``, one fetched JPEG is one packet: ``packets`` counts JPEGs
    received, ``frames_decoded`` those that decoded, ``decode_seconds`` the JPEG
    decode time, ``reconnects`` the failed requests.

    Example::

        cam = FrigateSnapshotSource("porch", CameraConfig(url="frigate://nvr.lan:5000/porch?h=720"))
        hold = cam.connect()
        frame = cam.latest(timeout=5)   # Frame with .rgb, or None
        hold.dispose(); cam.close()

    Raises:
        ValueError: the URL is not a valid ``frigate://`` URL.
    """

    def __init__(
        self, name: str, config: CameraConfig, *, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(name, clock=clock)
        self.config = config
        self._url, self._auth = snapshot_url(config.resolved_url())
        self._join_timeout_s = config.open_timeout_s + config.read_timeout_s + 5
        self._seq = 0
        self._fetch_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FrigateSnapshotSource({self.name!r}, {self._url!r})"

    def freshest(self, timeout: float | None = None, *, due: float | None = None) -> Frame | None:
        """Fetch the current picture now; ``None`` when not held or the request fails.

        ``timeout`` (when given and shorter) bounds the request instead of the
        configured read timeout.
        """
        with self._lock:
            if self._holders == 0 or self._closed:
                return None
        limit = self.config.read_timeout_s if timeout is None else min(timeout, 120.0)
        return self._fetch(max(0.1, limit))

    def keyframe(
        self, max_age_s: float, timeout: float | None = None, *, due: float | None = None
    ) -> Frame | None:
        """The same as :meth:`freshest`: every snapshot is a whole, fresh picture."""
        return self.freshest(timeout)

    def frames(
        self, fps: float | None = None, keyframes: bool = False
    ) -> reactivex.Observable[Frame]:
        """Poll while subscribed, at ``fps`` (default 2 per second); subscribing holds the camera.

        Every snapshot is a whole picture: ``keyframes`` changes nothing.

        Raises:
            ValueError: ``fps`` is not positive.
        """
        if fps is not None and not fps > 0:
            raise ValueError(f"The frame rate must be positive, got {fps}.")
        period = 1.0 / (fps or DEFAULT_POLL_FPS)
        return self._tap_observable(lambda observer: Tap(observer, period))

    # ------------------------------------------------------------ internals

    def _on_subscribe(self) -> None:
        self._start_worker("frigate")

    def _on_released(self) -> None:
        self._set_state(online=False, last_error=self._state.last_error)

    def _work(self) -> None:
        """Poll at the highest rate any subscriber asked for, while there are subscribers."""
        next_due = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                while not self._taps and not self._stop.is_set():
                    self._lock.wait()
                    next_due = time.monotonic()
                taps = list(self._taps)
            if self._stop.is_set():
                return
            period = min(tap.period or 1.0 / DEFAULT_POLL_FPS for tap in taps)
            wait = next_due - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            next_due = max(next_due + period, time.monotonic())
            self._poll_once()

    def _poll_once(self) -> None:
        frame = self._fetch(self.config.read_timeout_s)
        if frame is not None:
            self._feed(self._current_taps(), frame.wall_time, lambda: frame)

    def _fetch(self, timeout: float) -> Frame | None:
        headers = {"Accept": "image/jpeg"}
        if self._auth:
            headers["Authorization"] = self._auth
        with self._fetch_lock:
            # ``timeout`` bounds the connect, each read and the whole request.
            http = HttpClient(
                self._url,
                headers,
                connect_timeout_s=timeout,
                read_timeout_s=timeout,
                request_timeout_s=timeout,
                pool_size=1,
                max_body=MAX_SNAPSHOT_BYTES,
            )
            try:
                response = http.request("GET")
                if response.status != 200 or not response.complete:
                    raise SnapshotError(
                        f"HTTP {response.status}"
                        if response.status != 200
                        else f"picture larger than {MAX_SNAPSHOT_BYTES} bytes"
                    )
                body = response.body
                arrived = self._clock()
                with self._lock:
                    self._packets += 1
                    self._last_packet_time = arrived
                started = time.perf_counter()
                try:
                    with Image.open(io.BytesIO(body)) as image:
                        rgb = np.asarray(image.convert("RGB"))
                finally:
                    spent = time.perf_counter() - started
                    with self._lock:
                        self._decode_seconds += spent
            except (
                TransportError,
                SnapshotError,
                OSError,
                ValueError,
                Image.DecompressionBombError,
            ) as exc:
                error = f"{self._url}: {safe_error(exc)}"
                log.warning("camera %s: %s", self.name, redact(error))
                self._set_state(online=False, last_error=error, failed=True)
                return None
            finally:
                http.close()
            self._seq += 1
            with self._lock:
                self._frames_decoded += 1
                self._last_frame_time = arrived
            frame = Frame(
                camera=self.name,
                seq=self._seq,
                wall_time=arrived,
                stream_time=None,
                width=int(rgb.shape[1]),
                height=int(rgb.shape[0]),
                keyframe=True,
                rgb=rgb,
            )
        self._set_state(online=True, last_error=None)
        return frame
