"""What to open for a camera URL: format, FFmpeg options and timeouts (pure; opens nothing)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from pipeline.core.config import CameraConfig
from pipeline.core.redact import redact_url, register_secret

_SOCKET_SCHEMES = ("http", "https", "rtmp", "rtmps", "tcp", "udp", "srt")
# FFmpeg probes a live input for 5 s by default, so every (re)connect would wait about
# 3 s (RTSP) or 5 s (RTMP) for its first picture. RTSP's SDP and RTMP's FLV header carry
# the codec parameters; one second is plenty to find the video stream.
_LIVE_ANALYZE_US = "1000000"


@dataclass(frozen=True)
class OpenSpec:
    """Everything ``av.open`` needs for one camera, plus what kind of input it is.

    Example:
        >>> from pipeline.core.config import CameraConfig
        >>> spec = open_spec(CameraConfig(url="rtsp://u:pw@cam.lan/live"))
        >>> spec.options["rtsp_transport"], spec.options["analyzeduration"], spec.safe_url
        ('tcp', '1000000', 'rtsp://u:***@cam.lan/live')

    Attributes:
        target: the path or URL handed to ``av.open`` (may hold a password: never log it).
        safe_url: the same without its password, for logs, errors and state.
        format: an FFmpeg input format name, or ``None`` to probe.
        options: FFmpeg options (transport, socket timeouts, the user's own).
        open_timeout_s: seconds ``av.open`` may block.
        read_timeout_s: seconds any single read may block: the read timeout, capped
            at the stall timeout (so a stream where no data arrives is noticed then).
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
    network inputs get ``rw_timeout``; RTSP and RTMP are probed for 1 s
    (``analyzeduration``), not FFmpeg's 5 s; ``/dev/videoN`` and ``v4l2://`` get the
    ``v4l2`` format. ``config.format`` names the input format explicitly (the
    older ``options["format"]`` is still read when ``format`` is not set); other
    options in ``config.options`` win over these defaults. The password, if any,
    is registered with :func:`pipeline.core.redact.register_secret` so that no error
    text can carry it.

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
            options["analyzeduration"] = _LIVE_ANALYZE_US
        elif scheme in _SOCKET_SCHEMES:
            options["rw_timeout"] = read_us
            if scheme in ("rtmp", "rtmps"):
                options["analyzeduration"] = _LIVE_ANALYZE_US
    user_options = dict(config.options)
    legacy_format = user_options.pop("format", None)
    fmt = config.format or legacy_format or fmt
    options.update(user_options)
    return OpenSpec(
        target=target,
        safe_url=redact_url(url),
        format=fmt,
        options=options,
        open_timeout_s=config.open_timeout_s,
        read_timeout_s=min(config.read_timeout_s, config.stall_timeout_s),
        live=live,
    )


def _register_url_secrets(url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    if parts.password:
        register_secret(parts.password)
        register_secret(unquote(parts.password))
