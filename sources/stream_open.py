"""How to open a camera URL with PyAV: format, options and timeouts, always bounded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import av

from pipeline.config import CameraConfig
from pipeline.redact import redact, redact_url, register_secret

_SOCKET_SCHEMES = ("http", "https", "rtmp", "rtmps", "tcp", "udp", "srt")


@dataclass(frozen=True)
class OpenSpec:
    """Everything ``av.open`` needs for one camera, plus what kind of input it is.

    Example:
        >>> from pipeline.config import CameraConfig
        >>> spec = open_spec(CameraConfig(url="rtsp://u:pw@cam.lan/live"))
        >>> spec.options["rtsp_transport"], spec.safe_url, spec.live
        ('tcp', 'rtsp://u:***@cam.lan/live', True)

    Attributes:
        target: the path or URL handed to ``av.open`` (may hold a password: never log it).
        safe_url: the same without its password, for logs, errors and state.
        format: an FFmpeg input format name, or ``None`` to probe.
        options: FFmpeg options (transport, socket timeouts, the user's own).
        open_timeout_s: seconds ``av.open`` may block.
        read_timeout_s: seconds any single read may block.
        live: whether the input is a live stream (not a file played from disk).
    """

    target: str = field(repr=False)
    safe_url: str
    format: str | None
    options: dict[str, str] = field(default_factory=dict)
    open_timeout_s: float = 10.0
    read_timeout_s: float = 10.0
    live: bool = True


def open_spec(config: CameraConfig) -> OpenSpec:
    """Work out the format, options and timeouts of ``config``'s stream (pure; opens nothing).

    RTSP gets ``rtsp_transport`` (tcp by default) and a socket ``timeout``; other
    network inputs get ``rw_timeout``; ``/dev/videoN`` and ``v4l2://`` get the
    ``v4l2`` format. Options in ``config.options`` win over these defaults. The
    password, if any, is registered with :func:`pipeline.redact.register_secret`
    so that no error text can carry it.

    Raises:
        ValueError: the URL is a ``frigate://`` URL (use ``FrigateSnapshotSource``).
    """
    url = config.resolved_url()
    _register_url_secrets(url)
    read_us = str(int(config.read_timeout_s * 1_000_000))
    options: dict[str, str] = {}
    fmt: str | None = None
    live = True
    target = url
    if "://" not in url:
        if url.startswith("/dev/video"):
            fmt = "v4l2"
        else:
            live = False
    else:
        scheme = urlsplit(url).scheme.lower()
        if scheme == "frigate":
            raise ValueError("A frigate:// camera is read with FrigateSnapshotSource, not PyAV.")
        if scheme == "file":
            target = unquote(urlsplit(url).path)
            live = False
        elif scheme == "v4l2":
            parts = urlsplit(url)
            target = unquote(parts.netloc + parts.path) or "/dev/video0"
            fmt = "v4l2"
        elif scheme in ("rtsp", "rtsps"):
            options["rtsp_transport"] = config.transport
            options["timeout"] = read_us
        elif scheme in _SOCKET_SCHEMES:
            options["rw_timeout"] = read_us
    user_options = dict(config.options)
    fmt = user_options.pop("format", None) or fmt
    options.update(user_options)
    return OpenSpec(
        target=target,
        safe_url=redact_url(url),
        format=fmt,
        options=options,
        open_timeout_s=config.open_timeout_s,
        read_timeout_s=config.read_timeout_s,
        live=live,
    )


def open_container(spec: OpenSpec) -> Any:
    """Open ``spec`` with PyAV, bounded by its open and read timeouts.

    Example::

        container = open_container(open_spec(CameraConfig(url="rtsp://cam.lan/live")))
        try:
            for packet in container.demux(container.streams.video[0]):
                ...
        finally:
            container.close()

    Returns:
        An ``av.container.InputContainer`` with at least one video stream.

    Raises:
        StreamOpenError: the stream could not be opened or has no video; the
            message is free of credentials.
    """
    try:
        container = av.open(
            spec.target,
            mode="r",
            format=spec.format,
            options=spec.options,
            timeout=(spec.open_timeout_s, spec.read_timeout_s),
        )
    except Exception as exc:  # PyAV raises many types; all mean "cannot open"
        raise StreamOpenError(f"cannot open {spec.safe_url}: {safe_error(exc)}") from None
    if not container.streams.video:
        container.close()
        raise StreamOpenError(f"{spec.safe_url} has no video stream")
    return container


class StreamOpenError(RuntimeError):
    """A camera stream could not be opened (the text is already free of credentials)."""


def safe_error(exc: BaseException) -> str:
    """One line describing ``exc`` without any credential.

    Example:
        >>> safe_error(OSError("rtsp://u:pw@h/x: Connection refused"))
        'OSError: rtsp://u:***@h/x: Connection refused'
    """
    text = str(exc).strip() or "no detail"
    return redact(f"{type(exc).__name__}: {text}".replace("\n", " "))


def _register_url_secrets(url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    if parts.password:
        register_secret(parts.password)
        register_secret(unquote(parts.password))
