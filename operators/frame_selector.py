"""The frame selector seam: which frame a look takes.

Each look asks a :class:`FrameSelector` for its frame, saying why it looks
(its :data:`~operators.sampler.Trigger`: ``"start"``, ``"timer"`` or
``"wake"``), when it was due (scheduler time, epoch seconds) and how long it
may wait for a frame. The default, :class:`FreshestFrame`, takes the camera's
newest frame for every look, as the baseline does. A selector may choose
otherwise: for example a timer look (not urgent) may take the frame of the
newest keyframe to spare a decode, while a wake (something just happened)
takes the freshest.

Example:
    >>> import numpy as np
    >>> class Still:
    ...     name = "still"
    ...     def latest(self, timeout=None):
    ...         return Frame(camera="still", seq=7, wall_time=0.0, stream_time=None,
    ...                      width=2, height=2, rgb=np.zeros((2, 2, 3), np.uint8))
    >>> FreshestFrame().select(Still(), "timer", due=0.0, wait_s=2.0).seq
    7
"""

from __future__ import annotations

from typing import Protocol

from operators.sampler import Trigger
from pipeline.core.frame import Frame, FrameProvider


class FrameSelector(Protocol):
    """Chooses the frame one look judges."""

    def select(
        self, frames: FrameProvider, trigger: Trigger, due: float, wait_s: float
    ) -> Frame | None:
        """Return the frame for a look (``None``: no frame, the look fails as "no frame").

        Args:
            frames: the watch's camera.
            trigger: why the look happens: ``"start"`` (the first), ``"timer"``
                or ``"wake"``.
            due: scheduler time (epoch seconds) the look was due.
            wait_s: how long the look may wait for a frame (longer while the
                camera has not given one yet).

        Called on the look scheduler's thread; it may block up to ``wait_s``.
        """
        ...


class FreshestFrame:
    """The default selector: the camera's newest frame, whatever the trigger (the baseline)."""

    def select(
        self, frames: FrameProvider, trigger: Trigger, due: float, wait_s: float
    ) -> Frame | None:
        """Return ``frames.latest(wait_s)``."""
        return frames.latest(wait_s)
