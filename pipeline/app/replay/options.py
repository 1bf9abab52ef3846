"""The replay's options and inputs: speed, model latency, the clip's epoch, the watch.

Example:
    >>> parse_speed("2x"), model_latency_name("measured")
    (2.0, 'measured')
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import av

from pipeline.core.config import LookoutConfig, WatchConfig
from pipeline.core.verdict import Verdict


def clip_creation_epoch(path: str | Path) -> float | None:
    """Return the clip's ``creation_time`` metadata as epoch seconds, if it has one."""
    try:
        with av.open(str(path)) as container:
            raw = container.metadata.get("creation_time")
    except (av.error.FFmpegError, OSError):
        return None
    if not raw:
        return None
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def parse_speed(speed: str | float | None) -> float | None:
    """Return the replay speed as a multiple of real time, ``None`` for as fast as possible.

    Example:
        >>> parse_speed("max"), parse_speed("1x"), parse_speed("2.5x"), parse_speed(4)
        (None, 1.0, 2.5, 4.0)

    Raises:
        ValueError: for anything else, or a speed that is not positive.
    """
    if speed is None or speed == "max":
        return None
    if isinstance(speed, int | float):
        value = float(speed)
    else:
        text = speed.strip().lower().removesuffix("x")
        try:
            value = float(text)
        except ValueError:
            raise ValueError(
                f"Speed must be 'max' or a multiple of real time like '1x', got {speed!r}."
            ) from None
    if value <= 0:
        raise ValueError(f"Speed must be positive, got {speed!r}.")
    return value


def parse_model_latency(latency: str | float | None) -> Callable[[Verdict], float] | None:
    """Return how long a verdict is held on the virtual clock, ``None`` for not at all.

    ``"none"`` (or ``None``): answers arrive at once (the clock stands still
    while the backend answers); ``"measured"``: each verdict's own
    ``latency_s``; a number of seconds (``3``, ``"0.5"``): that, for every look.

    Example:
        >>> from pipeline.core.verdict import AnswerKind
        >>> v = Verdict.failed(AnswerKind.ERROR, "x").with_latency(1.5)
        >>> parse_model_latency("none"), parse_model_latency("measured")(v)
        (None, 1.5)
        >>> parse_model_latency("3")(v)
        3.0

    Raises:
        ValueError: for anything else, or a negative number of seconds.
    """
    if latency is None or latency == "none":
        return None
    if latency == "measured":
        return lambda v: max(0.0, float(v.latency_s))
    try:
        seconds = float(latency)
    except ValueError:
        raise ValueError(
            f"Model latency must be 'measured', 'none' or seconds like '3', got {latency!r}."
        ) from None
    if not 0 <= seconds < float("inf"):
        raise ValueError(f"Model latency must be a finite, non-negative number, got {latency!r}.")
    return lambda _v: seconds


def model_latency_name(latency: str | float | None) -> str:
    """The model latency mode as the report records it: ``none``, ``measured`` or seconds."""
    if latency is None or latency in ("none", "measured"):
        return str(latency or "none")
    return f"{float(latency):g}"


def find_watch(config: LookoutConfig, name: str) -> WatchConfig:
    """Return the ``[[watches]]`` entry called ``name``.

    Raises:
        ValueError: no such watch (the message lists the known ones).
    """
    for w in config.watches:
        if w.name == name:
            return w
    known = ", ".join(w.name for w in config.watches) or "none"
    raise ValueError(f"No watch named {name!r} in the config; watches: {known}.")
