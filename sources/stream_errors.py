"""Why a stream could not be opened or read, in plain words (no errno, no credential)."""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import av
import av.error

from pipeline.core.redact import redact
from sources.stream_spec import OpenSpec


def explain_open_error(exc: BaseException, spec: OpenSpec, elapsed_s: float = 0.0) -> str:
    """Say in plain words why ``av.open`` failed on ``spec`` (no errno, no credential).

    FFmpeg's own texts ("[Errno 1094995529] Invalid data found when processing
    input: 'rtsp://user:pw@...'") name neither the problem a user can fix nor hide
    the password. This maps the usual failures to sentences; anything else falls
    back to FFmpeg's error string without the number and the URL.

    Example:
        >>> from pipeline.core.config import CameraConfig
        >>> from sources.stream_spec import open_spec
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


@dataclass(frozen=True)
class _Failure:
    """What is known about a failed open or read, for the rules below."""

    exc: BaseException
    spec: OpenSpec
    code: int | None
    timed_out: bool

    @property
    def device(self) -> bool:
        return self.spec.format == "v4l2"

    @property
    def network(self) -> bool:
        return self.spec.live and not self.device

    def is_(self, *types: type[BaseException], codes: tuple[int, ...] = ()) -> bool:
        return isinstance(self.exc, types) or (self.code is not None and self.code in codes)


def _no_answer(f: _Failure) -> str:
    return f"no answer within {f.spec.open_timeout_s:g} s (the host is unreachable or hung)"


def _not_found(f: _Failure) -> str:
    if f.device:
        return "no such device (is the camera plugged in, and is the /dev/videoN number right?)"
    return "the server has no stream at this path" if f.network else "no such file"


def _invalid_data(f: _Failure) -> str:
    if f.network and f.timed_out:
        return _no_answer(f)
    if f.network:
        return "the server's answer is not a video stream (is this the camera's stream URL?)"
    if f.device:
        return "the device gives no video this build can read"
    return "not a readable video file (corrupt, truncated, or not a video)"


def _unknown_format(f: _Failure) -> bool:
    fmt = f.spec.format
    return isinstance(f.exc, av.error.DemuxerNotFoundError) or (
        isinstance(f.exc, ValueError) and fmt is not None and fmt in str(f.exc)
    )


_Rule = tuple[Callable[[_Failure], bool], Callable[[_Failure], str]]

_HTTP_RULES: tuple[_Rule, ...] = (
    (
        lambda f: f.is_(av.error.HTTPNotFoundError),
        lambda f: "the server has no stream at this path (404 Not Found); check the URL's path",
    ),
    (
        lambda f: f.is_(av.error.HTTPUnauthorizedError),
        lambda f: "the server refused the user name or password (401 Unauthorized)",
    ),
    (
        lambda f: f.is_(av.error.HTTPForbiddenError),
        lambda f: "the server refused access to this stream (403 Forbidden)",
    ),
    (
        lambda f: f.is_(av.error.HTTPClientError),
        lambda f: "the server rejected the request (4XX client error); check the URL",
    ),
    (
        lambda f: f.is_(av.error.HTTPServerError),
        lambda f: "the server failed to answer (5XX server error)",
    ),
)

# First match wins: the order matters (a 404 is also an HTTP client error).
_OPEN_RULES: tuple[_Rule, ...] = (
    (
        lambda f: f.is_(ConnectionRefusedError, codes=(errno.ECONNREFUSED,)),
        lambda f: f"connection refused: nothing is listening at {_host_port(f.spec)}",
    ),
    *_HTTP_RULES,
    (lambda f: f.is_(FileNotFoundError, codes=(errno.ENOENT,)), _not_found),
    (
        lambda f: f.is_(PermissionError, codes=(errno.EACCES, errno.EPERM)),
        lambda f: (
            "permission denied on the device (is the user in the 'video' group?)"
            if f.device
            else "permission denied"
        ),
    ),
    (
        lambda f: f.is_(codes=(errno.EHOSTUNREACH, errno.ENETUNREACH)),
        lambda f: f"the host {_host_port(f.spec)} cannot be reached (no route to it)",
    ),
    (lambda f: f.is_(av.error.ExitError, TimeoutError, codes=(errno.ETIMEDOUT,)), _no_answer),
    (lambda f: f.is_(av.error.InvalidDataError), _invalid_data),
    (
        lambda f: f.is_(av.error.EOFError),
        lambda f: "the input ended before any video (empty file or closed connection)",
    ),
    (
        lambda f: f.is_(ConnectionResetError, codes=(errno.ECONNRESET,)),
        lambda f: "the server closed the connection",
    ),
    (
        lambda f: f.code == errno.EPROTONOSUPPORT and bool(f.spec.options.get("rtsp_transport")),
        lambda f: (
            f"the RTSP server does not offer transport "
            f"{f.spec.options['rtsp_transport']!r} (try the other transport)"
        ),
    ),
    (
        lambda f: f.is_(av.error.ProtocolNotFoundError),
        lambda f: "this FFmpeg build does not support the URL's protocol",
    ),
    (_unknown_format, lambda f: f"unknown input format {f.spec.format!r}"),
    (
        lambda f: f.code == errno.EIO and f.network,
        lambda f: "input/output error (does the host name resolve? did the connection drop?)",
    ),
    (lambda f: f.is_(IsADirectoryError), lambda f: "this is a folder, not a video file"),
    (lambda f: f.timed_out and f.network, _no_answer),
)

# A read on an opened stream: a timeout means no data (the stall), not a hung host.
_READ_RULES: tuple[_Rule, ...] = (
    (
        lambda f: f.is_(
            ConnectionResetError, BrokenPipeError, codes=(errno.ECONNRESET, errno.EPIPE)
        ),
        lambda f: "the server closed the connection",
    ),
    *_HTTP_RULES,
    (
        lambda f: f.is_(av.error.InvalidDataError),
        lambda f: "the stream sent data that is not valid video (corrupt or cut off)",
    ),
    (
        lambda f: f.code == errno.EIO,
        lambda f: "input/output error (did the connection drop?)",
    ),
)

_TIMEOUT_CODES = (errno.ETIMEDOUT, errno.EAGAIN)


def _explain(exc: BaseException, spec: OpenSpec, elapsed_s: float) -> str:
    failure = _Failure(
        exc, spec, getattr(exc, "errno", None), elapsed_s >= 0.9 * spec.open_timeout_s
    )
    return _first_rule(_OPEN_RULES, failure)


def _first_rule(rules: tuple[_Rule, ...], failure: _Failure) -> str:
    for applies, say in rules:
        if applies(failure):
            return say(failure)
    strerror = getattr(failure.exc, "strerror", None)
    if isinstance(strerror, str) and strerror:
        return redact(strerror.strip().rstrip(".").lower())
    return safe_error(failure.exc)


def explain_read_error(exc: BaseException, spec: OpenSpec, idle_s: float) -> tuple[str, bool]:
    """Say in plain words why reading an opened stream failed, and whether it timed out.

    A read that PyAV interrupted (``ExitError``, "Immediate exit requested") or
    a socket that timed out means no data arrived: "no video for 10 s".

    Example:
        >>> from pipeline.core.config import CameraConfig
        >>> from sources.stream_spec import open_spec
        >>> spec = open_spec(CameraConfig(url="rtsp://u:pw@127.0.0.1:8554/live"))
        >>> explain_read_error(av.error.ExitError(1414092869, "Immediate exit requested"),
        ...                    spec, 10.02)
        ('no video for 10 s', True)
        >>> explain_read_error(ConnectionResetError(104, "Connection reset by peer"), spec, 0.1)
        ('the server closed the connection', False)

    Args:
        exc: what PyAV's demuxer raised.
        spec: what was being read.
        idle_s: seconds since the last video packet.

    Returns:
        ``(reason, timed_out)``: the sentence, free of errno and credentials.
    """
    failure = _Failure(exc, spec, getattr(exc, "errno", None), timed_out=False)
    if failure.is_(av.error.ExitError, TimeoutError, codes=_TIMEOUT_CODES):
        return f"no video for {say_seconds(idle_s)} s", True
    return _first_rule(_READ_RULES, failure), False


def say_seconds(seconds: float) -> str:
    """A duration for a sentence: whole seconds from 10 s on, tenths below.

    Example:
        >>> say_seconds(10.04), say_seconds(2.51), say_seconds(3.0)
        ('10', '2.5', '3')
    """
    if seconds >= 9.95:
        return f"{seconds:.0f}"
    return f"{seconds:.1f}".removesuffix(".0")


def _host_port(spec: OpenSpec) -> str:
    try:
        parts = urlsplit(spec.safe_url)
        host = parts.hostname or "?"
        port = parts.port
    except ValueError:
        return "the camera's address"
    return f"{host}:{port}" if port else host


def safe_error(exc: BaseException) -> str:
    """One line describing ``exc`` without any credential.

    Example:
        >>> safe_error(OSError("rtsp://u:pw@h/x: Connection refused"))
        'OSError: rtsp://u:***@h/x: Connection refused'
    """
    text = str(exc).strip() or "no detail"
    return redact(f"{type(exc).__name__}: {text}".replace("\n", " "))
