"""How to open a camera URL with PyAV: format, options and timeouts, always bounded."""

from __future__ import annotations

import errno
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import av
import av.error

from pipeline.core.config import CameraConfig
from pipeline.core.redact import redact, redact_url, register_secret

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
        An ``av.container.InputContainer`` whose first video stream can be decoded.

    Raises:
        StreamOpenError: the stream could not be opened, has no video, or its video
            codec cannot be decoded; the message says why in plain words (see
            :func:`explain_open_error`) and is free of credentials.
    """
    started = time.monotonic()
    try:
        container = av.open(
            spec.target,
            mode="r",
            format=spec.format,
            options=spec.options,
            timeout=(spec.open_timeout_s, spec.read_timeout_s),
        )
    except Exception as exc:  # PyAV raises many types; all mean "cannot open"
        reason = explain_open_error(exc, spec, time.monotonic() - started)
        raise StreamOpenError(f"cannot open {spec.safe_url}: {reason}") from None
    try:
        problem = _video_problem(container)
    except Exception as exc:
        problem = f"cannot read its streams ({safe_error(exc)})"
    if problem is not None:
        container.close()
        raise StreamOpenError(f"cannot open {spec.safe_url}: {problem}")
    return container


def explain_open_error(exc: BaseException, spec: OpenSpec, elapsed_s: float = 0.0) -> str:
    """Say in plain words why ``av.open`` failed on ``spec`` (no errno, no credential).

    FFmpeg's own texts ("[Errno 1094995529] Invalid data found when processing
    input: 'rtsp://user:pw@...'") name neither the problem a user can fix nor hide
    the password. This maps the usual failures to sentences; anything else falls
    back to FFmpeg's error string without the number and the URL.

    Example:
        >>> from pipeline.core.config import CameraConfig
        >>> spec = open_spec(CameraConfig(url="rtsp://u:pw@127.0.0.1:8554/live"))
        >>> explain_open_error(ConnectionRefusedError(111, "Connection refused"), spec)
        'connection refused: nothing is listening at 127.0.0.1:8554'

    Args:
        exc: what ``av.open`` raised.
        spec: what was being opened.
        elapsed_s: how long the attempt took (a failure at the open timeout is a timeout).
    """
    reason = _explain(exc, spec, elapsed_s)
    if spec.format not in (None, "v4l2") and isinstance(
        exc, (av.error.InvalidDataError, av.error.EOFError)
    ):
        reason += f"; it was read as format {spec.format!r}: is that the right one?"
    return reason


def _explain(exc: BaseException, spec: OpenSpec, elapsed_s: float) -> str:
    device = spec.format == "v4l2"
    network = spec.live and not device
    timed_out = elapsed_s >= 0.9 * spec.open_timeout_s
    code = getattr(exc, "errno", None)
    if isinstance(exc, ConnectionRefusedError) or code == errno.ECONNREFUSED:
        return f"connection refused: nothing is listening at {_host_port(spec)}"
    if isinstance(exc, av.error.HTTPNotFoundError):
        return "the server has no stream at this path (404 Not Found); check the URL's path"
    if isinstance(exc, av.error.HTTPUnauthorizedError):
        return "the server refused the user name or password (401 Unauthorized)"
    if isinstance(exc, av.error.HTTPForbiddenError):
        return "the server refused access to this stream (403 Forbidden)"
    if isinstance(exc, av.error.HTTPClientError):
        return "the server rejected the request (4XX client error); check the URL"
    if isinstance(exc, av.error.HTTPServerError):
        return "the server failed to answer (5XX server error)"
    if isinstance(exc, FileNotFoundError) or code == errno.ENOENT:
        if device:
            return "no such device (is the camera plugged in, and is the /dev/videoN number right?)"
        return "no such file" if not network else "the server has no stream at this path"
    if isinstance(exc, PermissionError) or code in (errno.EACCES, errno.EPERM):
        if device:
            return "permission denied on the device (is the user in the 'video' group?)"
        return "permission denied"
    if code in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return f"the host {_host_port(spec)} cannot be reached (no route to it)"
    if isinstance(exc, (av.error.ExitError, TimeoutError)) or code == errno.ETIMEDOUT:
        return f"no answer within {spec.open_timeout_s:g} s (the host is unreachable or hung)"
    if isinstance(exc, av.error.InvalidDataError):
        if network and timed_out:
            return f"no answer within {spec.open_timeout_s:g} s (the host is unreachable or hung)"
        if network:
            return "the server's answer is not a video stream (is this the camera's stream URL?)"
        if device:
            return "the device gives no video this build can read"
        return "not a readable video file (corrupt, truncated, or not a video)"
    if isinstance(exc, av.error.EOFError):
        return "the input ended before any video (empty file or closed connection)"
    if isinstance(exc, ConnectionResetError) or code == errno.ECONNRESET:
        return "the server closed the connection"
    if code == errno.EPROTONOSUPPORT and spec.options.get("rtsp_transport"):
        transport = spec.options["rtsp_transport"]
        return f"the RTSP server does not offer transport {transport!r} (try the other transport)"
    if isinstance(exc, av.error.ProtocolNotFoundError):
        return "this FFmpeg build does not support the URL's protocol"
    if isinstance(exc, av.error.DemuxerNotFoundError) or (
        isinstance(exc, ValueError) and spec.format is not None and spec.format in str(exc)
    ):
        return f"unknown input format {spec.format!r}"
    if code == errno.EIO and network:
        return "input/output error (does the host name resolve? did the connection drop?)"
    if isinstance(exc, IsADirectoryError):
        return "this is a folder, not a video file"
    if timed_out and network:
        return f"no answer within {spec.open_timeout_s:g} s (the host is unreachable or hung)"
    strerror = getattr(exc, "strerror", None)
    if isinstance(strerror, str) and strerror:
        return redact(strerror.strip().rstrip(".").lower())
    return safe_error(exc)


def _video_problem(container: Any) -> str | None:
    """Why ``container`` cannot give pictures, or ``None`` when its first video stream decodes."""
    streams = list(container.streams)
    video = [s for s in streams if s.type == "video"]
    if not video:
        kinds: dict[str, int] = {}
        for stream in streams:
            kinds[str(stream.type)] = kinds.get(str(stream.type), 0) + 1
        found = ", ".join(
            f"{n} {kind} stream{'s' if n > 1 else ''}" for kind, n in sorted(kinds.items())
        )
        found = found or "no streams at all"
        return f"no video stream in the input (found {found})"
    if video[0].codec_context is None:
        return (
            "unsupported video codec: this FFmpeg build has no decoder for the stream's "
            "codec (re-encode to H.264 or H.265, or change the camera's codec)"
        )
    return None


def _host_port(spec: OpenSpec) -> str:
    try:
        parts = urlsplit(spec.safe_url)
        host = parts.hostname or "?"
        port = parts.port
    except ValueError:
        return "the camera's address"
    return f"{host}:{port}" if port else host


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
