"""The yardstick of a replay's speed: a plain PyAV decode of every frame of the same clip.

A replay decodes only what its looks and its detector need, on virtual time,
so it can run faster than merely decoding the clip. Its speed in "x real
time" depends on the machine; its speed against a raw decode of the same
clip on the same machine does not (much): above 1 the replay beat the decode.

Example:
    >>> seconds = raw_decode_seconds("walkway.mp4")  # doctest: +SKIP
    >>> figures = evaluate(run, labels, raw_decode_s=seconds)  # doctest: +SKIP
    >>> figures.speed_vs_raw_decode  # doctest: +SKIP
    3.4
"""

from __future__ import annotations

import time
from pathlib import Path

import av

from pipeline.core.redact import redact


def raw_decode_seconds(path: str | Path, until_s: float | None = None) -> float:
    """Wall seconds PyAV takes to decode every video frame of ``path`` (up to ``until_s``).

    Decoded with PyAV's defaults (``for frame in container.decode(video=0)``),
    on this thread; the frames are not converted.

    Raises:
        ValueError: the clip cannot be opened or decoded.
    """
    t0 = time.perf_counter()
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                if until_s is not None and frame.time is not None and frame.time >= until_s:
                    break
    except (av.error.FFmpegError, OSError, IndexError) as exc:
        raise ValueError(redact(f"Cannot decode clip {path}: {exc}")) from None
    return time.perf_counter() - t0
