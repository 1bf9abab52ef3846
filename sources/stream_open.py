"""Open a camera URL with PyAV, always bounded, and say in plain words why it failed."""

from __future__ import annotations

import logging
import time
from typing import Any

import av

from pipeline.core.logs import log_unexpected
from sources.stream_errors import explain_open_error, safe_error
from sources.stream_spec import OpenSpec

log = logging.getLogger("lookout.sources.open")


class StreamOpenError(RuntimeError):
    """A camera stream could not be opened (the text is already free of credentials)."""


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
        log_unexpected(log, f"{spec.safe_url}: streams", exc, expected=(av.FFmpegError,))
        problem = f"cannot read its streams ({safe_error(exc)})"
    if problem is not None:
        container.close()
        raise StreamOpenError(f"cannot open {spec.safe_url}: {problem}")
    return container


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
