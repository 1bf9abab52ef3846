"""Build sinks from ``[sinks]`` and deliver to many of them so one failure never stops another.

Example:
    >>> hub = SinkHub({"console": ConsoleSink("console")})
    >>> hub.open()
    >>> hub.send_state(WatchState(id="j1", name="porch", camera="front",
    ...                           condition="a package"))  # doctest: +ELLIPSIS
    STATE porch (front): queued looks=0
    >>> hub.close()
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from pipeline.core.config import (
    ConsoleSinkConfig,
    JsonlSinkConfig,
    MqttSinkConfig,
    NotifySinkConfig,
    SinkConfig,
    SnapshotSinkConfig,
    WebhookSinkConfig,
)
from pipeline.core.events import Alert, CameraState, Caption, LookRecord, WatchState
from pipeline.core.logs import log_unexpected
from pipeline.core.redact import redact
from pipeline.net.mqtt_connection import MqttConnection
from sinks.base import Sink
from sinks.console import ConsoleSink
from sinks.jsonl import JsonlSink
from sinks.mqtt import MqttSink
from sinks.notify import NotifySink
from sinks.snapshot import SnapshotSink

log = logging.getLogger(__name__)


def _console(name: str, config: Any, mqtt: MqttConnection | None) -> Sink:
    return ConsoleSink(name, config)


def _mqtt(name: str, config: Any, mqtt: MqttConnection | None) -> Sink:
    if mqtt is None:
        raise ValueError(f"sinks.{name}: an mqtt sink needs an [mqtt] table.")
    return MqttSink(name, config, mqtt)


def _webhook(name: str, config: Any, mqtt: MqttConnection | None) -> Sink:
    from sinks.webhook import WebhookSink

    return WebhookSink(name, config)


def _notify(name: str, config: Any, mqtt: MqttConnection | None) -> Sink:
    return NotifySink(name, config)


def _jsonl(name: str, config: Any, mqtt: MqttConnection | None) -> Sink:
    return JsonlSink(name, config)


def _snapshot(name: str, config: Any, mqtt: MqttConnection | None) -> Sink:
    return SnapshotSink(name, config)


BUILDERS: dict[type[Any], Callable[[str, Any, MqttConnection | None], Sink]] = {
    ConsoleSinkConfig: _console,
    MqttSinkConfig: _mqtt,
    WebhookSinkConfig: _webhook,
    JsonlSinkConfig: _jsonl,
    SnapshotSinkConfig: _snapshot,
    NotifySinkConfig: _notify,
}
"""Config model -> builder: the one place that maps a sink ``type`` to its class."""


def build_sink(name: str, config: SinkConfig, mqtt: MqttConnection | None) -> Sink:
    """Build (not open) the sink described by ``config``.

    Raises:
        ValueError: an mqtt sink without a connection, or an unknown config type.
    """
    builder = BUILDERS.get(type(config))
    if builder is None:
        raise ValueError(f"sinks.{name}: unknown sink type {type(config).__name__}.")
    return builder(name, config, mqtt)


class SinkHub:
    """Deliver alerts and state to many sinks; a failing sink is logged and counted, never fatal.

    Snapshot-like sinks enrich the alert first (``prepare_alert``), so every
    other sink sees the same alert with its ``snapshot_path``.

    Args:
        sinks: name -> sink, in delivery order.

    Thread-safe: deliveries run on the callers' threads and take only the hub's
    own short counting lock (never a lock of the runner).

    Attributes:
        failures: sink name -> failed deliveries.
        delivered: sink name -> successful deliveries.
    """

    def __init__(self, sinks: Mapping[str, Sink]) -> None:
        self.sinks = dict(sinks)
        self.failures: Counter[str] = Counter()
        self.delivered: Counter[str] = Counter()
        self._count_lock = threading.Lock()
        self._failing_since: dict[str, float] = {}
        self._attached: dict[str, Sink] = {}

    def failing_since(self, name: str) -> float | None:
        """Epoch seconds since when every delivery to sink ``name`` failed (``None``: fine)."""
        with self._count_lock:
            return self._failing_since.get(name)

    def replace(self, sinks: Mapping[str, Sink]) -> None:
        """Deliver to ``sinks`` from now on (a reload); replaced sinks lose their health record.

        The mapping is rebound, never mutated: deliveries in flight go on with the old one.
        """
        new = dict(sinks) | self._attached
        with self._count_lock:
            for name, sink in self.sinks.items():
                if new.get(name) is not sink:
                    self._failing_since.pop(name, None)
        self.sinks = new

    def attach(self, sink: Sink) -> None:
        """Add a sink the config does not list (the activity store); :meth:`replace` keeps it.

        Its name must not be a valid ``[sinks]`` name (e.g. ``@activity``) so it never
        clashes with one.
        """
        self._attached[sink.name] = sink
        self.sinks = self.sinks | {sink.name: sink}

    def _targets(self, names: Iterable[str] | None) -> list[Sink]:
        if names is None:
            return list(self.sinks.values())
        wanted = set(names)
        return [s for n, s in self.sinks.items() if n in wanted or s.every_watch]

    def send_look(self, look: LookRecord, names: Iterable[str] | None = None) -> None:
        """Deliver one look to the named sinks that want looks (``Sink.wants_looks``)."""
        for sink in self._targets(names):
            if not sink.wants_looks:
                continue
            try:
                sink.send_look(look)
                self._ok(sink)
            except Exception as exc:
                log_unexpected(log, f"sink {sink.name!r} failed to record a look", exc)
                self._fail(sink, "record a look", exc)

    def send_caption(self, caption: Caption) -> None:
        """Deliver a camera caption to every sink that wants captions."""
        for sink in list(self.sinks.values()):
            if not sink.wants_captions:
                continue
            try:
                sink.send_caption(caption)
                self._ok(sink)
            except Exception as exc:
                log_unexpected(log, f"sink {sink.name!r} failed to send a caption", exc)
                self._fail(sink, "send a caption", exc)

    def _fail(self, sink: Sink, what: str, exc: BaseException) -> None:
        now = time.time()
        with self._count_lock:
            self.failures[sink.name] += 1
            total = self.failures[sink.name]
            self._failing_since.setdefault(sink.name, now)
        log.error(
            "sink %r failed to %s (%d failure(s) so far): %s",
            sink.name,
            what,
            total,
            redact(f"{type(exc).__name__}: {exc}"),
        )

    def _ok(self, sink: Sink) -> None:
        with self._count_lock:
            self.delivered[sink.name] += 1
            self._failing_since.pop(sink.name, None)

    def open(self) -> None:
        """Open every sink; a sink that fails to open is logged and counted."""
        for sink in self.sinks.values():
            try:
                sink.open()
            except Exception as exc:
                log_unexpected(log, f"sink {sink.name!r} failed to open", exc)
                self._fail(sink, "open", exc)

    def send_alert(self, alert: Alert, names: Iterable[str] | None = None) -> Alert:
        """Deliver ``alert`` to the named sinks (all when ``None``); return the enriched alert."""
        targets = self._targets(names)
        for sink in targets:
            try:
                alert = sink.prepare_alert(alert)
            except Exception as exc:
                log_unexpected(log, f"sink {sink.name!r} failed to prepare an alert", exc)
                self._fail(sink, "prepare an alert", exc)
        for sink in targets:
            try:
                sink.send_alert(alert)
                self._ok(sink)
            except Exception as exc:
                log_unexpected(log, f"sink {sink.name!r} failed to send an alert", exc)
                self._fail(sink, "send an alert", exc)
        return alert

    def send_state(self, state: WatchState, names: Iterable[str] | None = None) -> None:
        """Deliver a watch state to the named sinks (all when ``None``)."""
        for sink in self._targets(names):
            try:
                sink.send_state(state)
                self._ok(sink)
            except Exception as exc:
                log_unexpected(log, f"sink {sink.name!r} failed to send a watch state", exc)
                self._fail(sink, "send a watch state", exc)

    def send_camera_state(self, state: CameraState) -> None:
        """Deliver a camera state to every sink."""
        for sink in self.sinks.values():
            try:
                sink.send_camera_state(state)
                self._ok(sink)
            except Exception as exc:
                log_unexpected(log, f"sink {sink.name!r} failed to send a camera state", exc)
                self._fail(sink, "send a camera state", exc)

    def started(self, watches: Collection[str]) -> None:
        """Tell every sink the process has started with ``watches`` (``Sink.started``)."""
        for sink in list(self.sinks.values()):
            try:
                sink.started(watches)
            except Exception as exc:
                log_unexpected(log, f"sink {sink.name!r} failed to take the start", exc)
                self._fail(sink, "take the start", exc)

    def forget_watch(self, watch: str) -> None:
        """Tell every sink that watch ``watch`` is gone for good (``Sink.forget_watch``).

        A sink that raises is logged and counted in ``failures``; the others still hear of it.
        """
        for sink in list(self.sinks.values()):
            try:
                sink.forget_watch(watch)
            except Exception as exc:
                log_unexpected(log, f"sink {sink.name!r} failed to forget watch {watch}", exc)
                self._fail(sink, f"forget watch {watch}", exc)

    def close(self) -> None:
        """Close every sink (each is tried, failures logged)."""
        for sink in self.sinks.values():
            try:
                sink.close()
            except Exception as exc:
                log_unexpected(log, f"sink {sink.name!r} failed to close", exc)
                self._fail(sink, "close", exc)


SinkFanout = SinkHub
"""Another name for :class:`SinkHub`."""
