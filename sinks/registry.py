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

    def _each(
        self,
        sinks: Iterable[Sink],
        what: str,
        call: Callable[[Sink], object],
        *,
        delivery: bool = True,
    ) -> None:
        """Call ``call`` on each sink; a failure is logged and counted and the others go on.

        ``delivery``: a success counts as a delivery (and ends a failing streak).
        """
        for sink in sinks:
            try:
                call(sink)
            except Exception as exc:
                log_unexpected(log, f"sink {sink.name!r} failed to {what}", exc)
                self._fail(sink, what, exc)
            else:
                if delivery:
                    self._ok(sink)

    def send_look(self, look: LookRecord, names: Iterable[str] | None = None) -> None:
        """Deliver one look to the named sinks that want looks (``Sink.wants_looks``)."""
        wanting = [s for s in self._targets(names) if s.wants_looks]
        self._each(wanting, "record a look", lambda s: s.send_look(look))

    def send_caption(self, caption: Caption) -> None:
        """Deliver a camera caption to every sink that wants captions."""
        wanting = [s for s in self.sinks.values() if s.wants_captions]
        self._each(wanting, "send a caption", lambda s: s.send_caption(caption))

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
        self._each(list(self.sinks.values()), "open", lambda s: s.open(), delivery=False)

    def send_alert(self, alert: Alert, names: Iterable[str] | None = None) -> Alert:
        """Deliver ``alert`` to the named sinks (all when ``None``); return the enriched alert."""
        targets = self._targets(names)
        enriched = [alert]

        def prepare(sink: Sink) -> None:
            enriched[0] = sink.prepare_alert(enriched[0])

        self._each(targets, "prepare an alert", prepare, delivery=False)
        self._each(targets, "send an alert", lambda s: s.send_alert(enriched[0]))
        return enriched[0]

    def send_state(self, state: WatchState, names: Iterable[str] | None = None) -> None:
        """Deliver a watch state to the named sinks (all when ``None``)."""
        self._each(self._targets(names), "send a watch state", lambda s: s.send_state(state))

    def send_camera_state(self, state: CameraState) -> None:
        """Deliver a camera state to every sink."""
        sinks = list(self.sinks.values())
        self._each(sinks, "send a camera state", lambda s: s.send_camera_state(state))

    def started(self, watches: Collection[str]) -> None:
        """Tell every sink the process has started with ``watches`` (``Sink.started``)."""
        sinks = list(self.sinks.values())
        self._each(sinks, "take the start", lambda s: s.started(watches), delivery=False)

    def forget_watch(self, watch: str) -> None:
        """Tell every sink that watch ``watch`` is gone for good (``Sink.forget_watch``).

        A sink that raises is logged and counted in ``failures``; the others still hear of it.
        """
        sinks = list(self.sinks.values())
        self._each(sinks, f"forget watch {watch}", lambda s: s.forget_watch(watch), delivery=False)

    def close(self) -> None:
        """Close every sink (each is tried, failures logged)."""
        self._each(list(self.sinks.values()), "close", lambda s: s.close(), delivery=False)


SinkFanout = SinkHub
"""Another name for :class:`SinkHub`."""
