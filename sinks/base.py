"""The sink lifecycle shared by every sink: open, write, close."""

from __future__ import annotations

import threading
from collections.abc import Collection
from types import TracebackType
from typing import ClassVar, Self

from pipeline.core.events import Alert, CameraState, Caption, LookRecord, WatchState


class SinkClosedError(RuntimeError):
    """Raised when a sink is used after ``close()``."""


class Sink:
    """Base of every sink: a plain class with a visible lifecycle.

    Subclasses override ``_open``, ``_write_alert``, ``_write_state``,
    ``_write_camera_state`` and ``_close``. Writes must not block for long: a
    sink whose network is down queues (bounded) or stores what it cannot send.

    Example:
        >>> with ConsoleSink("console") as sink:  # doctest: +SKIP
        ...     sink.send_alert(alert)
    """

    wants_looks: ClassVar[bool] = False
    """Whether :class:`sinks.registry.SinkHub` hands this sink every look (``send_look``)."""
    wants_captions: ClassVar[bool] = False
    """Whether the hub hands this sink every camera caption (``send_caption``)."""
    every_watch: ClassVar[bool] = False
    """Whether the sink hears of every watch, also those that name their own ``sinks``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._state = "new"
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._state == "closed"

    def open(self) -> None:
        """Open the sink (connect, create files). Opening twice is a no-op."""
        with self._lock:
            if self._state == "closed":
                raise SinkClosedError(f"Sink '{self.name}' is closed; create a new one.")
            if self._state == "open":
                return
            self._open()
            self._state = "open"

    def _check_open(self) -> None:
        if self._state == "closed":
            raise SinkClosedError(f"Sink '{self.name}' is closed; create a new one.")
        if self._state == "new":
            self.open()

    def prepare_alert(self, alert: Alert) -> Alert:
        """Return ``alert`` enriched before any sink sends it (the snapshot sink adds its path).

        :class:`sinks.registry.SinkHub` calls this on every sink, in order, before
        ``send_alert``. The default returns ``alert`` unchanged.
        """
        self._check_open()
        return self._prepare_alert(alert)

    def send_alert(self, alert: Alert) -> None:
        """Deliver an alert (or queue it for delivery)."""
        self._check_open()
        self._write_alert(alert)

    def send_state(self, state: WatchState) -> None:
        """Deliver a watch state change."""
        self._check_open()
        self._write_state(state)

    def send_camera_state(self, state: CameraState) -> None:
        """Deliver a camera state change."""
        self._check_open()
        self._write_camera_state(state)

    def send_look(self, look: LookRecord) -> None:
        """Record one look a watch made (only sinks with ``wants_looks`` get them)."""
        self._check_open()
        self._write_look(look)

    def send_caption(self, caption: Caption) -> None:
        """Deliver a camera caption (only sinks with ``wants_captions`` get them)."""
        self._check_open()
        self._write_caption(caption)

    def forget_watch(self, name: str) -> None:
        """The watch ``name`` is gone for good (cancelled at run time or removed by a reload).

        Sinks drop what they published or keep about it (the MQTT sink clears
        its Home Assistant discovery topics). Not called when a watch merely
        ends, restarts or the process stops. The default does nothing; a closed
        or never-opened sink ignores it.
        """
        if self._state != "open":
            return
        self._forget_watch(name)

    def started(self, watches: Collection[str]) -> None:
        """The process has started: ``watches`` are the watches it runs (config and restored).

        A sink that keeps something per watch outside the process can drop what
        belongs to watches that disappeared while it was down (the MQTT sink
        removes their retained Home Assistant discovery). The default does
        nothing; a closed or never-opened sink ignores it.
        """
        if self._state != "open":
            return
        self._started(watches)

    def close(self) -> None:
        """Flush what can be flushed and release resources. Closing twice is a no-op."""
        with self._lock:
            if self._state == "closed":
                return
            was_open = self._state == "open"
            self._state = "closed"
        if was_open:
            self._close()

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # Subclass hooks -------------------------------------------------------

    def _open(self) -> None:
        """Open resources."""

    def _prepare_alert(self, alert: Alert) -> Alert:
        """Enrich an alert before it is sent anywhere (default: unchanged)."""
        return alert

    def _write_alert(self, alert: Alert) -> None:
        """Write one alert."""

    def _write_state(self, state: WatchState) -> None:
        """Write one watch state."""

    def _write_camera_state(self, state: CameraState) -> None:
        """Write one camera state."""

    def _forget_watch(self, name: str) -> None:
        """Drop what the sink keeps about a removed watch (default: nothing)."""

    def _write_look(self, look: LookRecord) -> None:
        """Write one look (default: nothing)."""

    def _write_caption(self, caption: Caption) -> None:
        """Write one caption (default: nothing)."""

    def _started(self, watches: Collection[str]) -> None:
        """React to the start of the process with ``watches`` (default: nothing)."""

    def _close(self) -> None:
        """Flush and release resources."""
