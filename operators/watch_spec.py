"""What one watch is, in plain values: the argument of :func:`operators.watch.run_watch`.

The config layer builds a :class:`WatchSpec` from a ``[[watches]]`` entry
(:func:`pipeline.app.watch_setup.watch_spec`); code that embeds a watch in
its own stream builds one directly, without any config model.

Example:
    >>> spec = WatchSpec(name="porch", camera="front", condition="a package is on the porch",
    ...                  labels=("person",), cooldown_s=10.0)
    >>> spec.mode, spec.max_duration_minutes
    ('once', 60.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Mode = Literal["once", "repeat"]


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:  # NaN fails too
        raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {value!r}.")


@dataclass(frozen=True, slots=True)
class WatchSpec:
    """One camera, one condition, and how the watch behaves (plain values, validated).

    Attributes:
        name: the watch's name.
        camera: the camera's name.
        condition: what to watch for, in plain language.
        labels: object labels that wake it (empty: any).
        zones: the camera's zones that matter (empty: anywhere).
        mode: ``once`` ends at the first alert; ``repeat`` re-arms after
            ``quiet_period_s``.
        quiet_period_s: ``repeat``: seconds without looks after an alert.
        agree_looks: ``repeat``: looks that must say met...
        agree_window: ...among this many latest answers.
        max_duration_minutes: the watch ends as failed after this long (0: never).
        max_looks_per_hour: the look budget, a refilling one
            (:class:`~operators.token_bucket.TokenBucket`; ``None``: unlimited).
        look_burst: looks allowed back to back before the budget paces them
            (``None``: a tenth of ``max_looks_per_hour``, at most 60).
        cooldown_s: without zones, no wake earlier than this after the wait began.
        history_turns: user/assistant pairs kept for the model.
        history_images: keep images only in this many latest turns (``None``: all).
        image_max_height: frames are shrunk to at most this height.
        jpeg_quality: JPEG quality of the frames sent.

    Raises:
        ValueError: a value out of range, naming the field.
    """

    name: str
    camera: str
    condition: str
    labels: Sequence[str] = ()
    zones: Sequence[str] = ()
    mode: Mode = "once"
    quiet_period_s: float = 300.0
    agree_looks: int = 1
    agree_window: int = 1
    max_duration_minutes: float = 60.0
    max_looks_per_hour: int | None = None
    look_burst: int | None = None
    cooldown_s: float = 10.0
    history_turns: int = 10
    history_images: int | None = None
    image_max_height: int = 480
    jpeg_quality: int = 85

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "zones", tuple(self.zones))
        if not self.name or not self.camera or not self.condition.strip():
            raise ValueError("A watch needs a name, a camera and a condition.")
        if self.mode not in ("once", "repeat"):
            raise ValueError(f"mode must be 'once' or 'repeat', got {self.mode!r}.")
        _check_range("quiet_period_s", self.quiet_period_s, 0, 1e9)
        _check_range("max_duration_minutes", self.max_duration_minutes, 0, 1e9)
        _check_range("cooldown_s", self.cooldown_s, 0, 1e9)
        _check_range("agree_window", self.agree_window, 1, 1e6)
        _check_range("agree_looks", self.agree_looks, 1, self.agree_window)
        _check_range("history_turns", self.history_turns, 0, 1e6)
        _check_range("image_max_height", self.image_max_height, 1, 1e5)
        _check_range("jpeg_quality", self.jpeg_quality, 1, 100)
        if self.max_looks_per_hour is not None:
            _check_range("max_looks_per_hour", self.max_looks_per_hour, 1, 1e9)
        if self.look_burst is not None:
            _check_range("look_burst", self.look_burst, 1, 1e9)
        if self.history_images is not None:
            _check_range("history_images", self.history_images, 0, 1e6)
