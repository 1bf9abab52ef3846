"""What the MQTT sinks' Home Assistant devices need from the running process.

The sinks know watches from their states; this bridge tells them the rest: the
cameras the process runs (a camera's device is removed when the camera goes),
whether ``[control]`` is on (the cancel buttons and new-watch texts), and every
:data:`STATS_EVERY_S` seconds each camera's last frame time.

Example:
    >>> bridge = HomeAssistantBridge(pipeline, control=True)  # doctest: +SKIP
    >>> bridge.describe(); bridge.tick()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from pipeline.app.runner import Pipeline
from pipeline.core.logs import log_unexpected
from sinks.mqtt import MqttSink

log = logging.getLogger(__name__)

STATS_EVERY_S = 30.0
"""How often each camera's ``<p>/cameras/<camera>/stats`` is published."""


class HomeAssistantBridge:
    """Feed the Home Assistant side of every MQTT sink with ``home_assistant`` on.

    Args:
        pipeline: the running pipeline (its cameras and sinks are read at each call).
        control: whether ``[control]`` is enabled.
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(
        self, pipeline: Pipeline, control: bool, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.pipeline = pipeline
        self.control = control
        self._clock = clock
        self._next_stats = float("-inf")

    def _sinks(self) -> list[MqttSink]:
        return [
            s
            for s in self.pipeline.sinks.sinks.values()
            if isinstance(s, MqttSink) and s.config.home_assistant
        ]

    def describe(self) -> None:
        """Tell the sinks the cameras and the control flag (at start and after each reload)."""
        cameras = sorted(self.pipeline.config.cameras)
        for sink in self._sinks():
            try:
                sink.home_assistant_setup(cameras, self.control)
            except Exception as exc:
                log_unexpected(log, f"sink {sink.name}: Home Assistant setup failed", exc)
        self._next_stats = float("-inf")

    def tick(self) -> None:
        """Publish each camera's stats when :data:`STATS_EVERY_S` has passed."""
        now = self._clock()
        if now < self._next_stats:
            return
        self._next_stats = now + STATS_EVERY_S
        sinks = self._sinks()
        if not sinks:
            return
        for name, source in list(self.pipeline.cameras.items()):
            stats = source.stats()
            for sink in sinks:
                try:
                    sink.publish_camera_stats(name, stats)
                except Exception as exc:
                    log_unexpected(log, f"sink {sink.name}: camera stats failed", exc)
