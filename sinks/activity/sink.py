"""The activity sink: every look, alert, status change, camera change and caption, into the store.

It sits in the :class:`~sinks.registry.SinkHub` like any sink (attached by the
runner, not listed in ``[sinks]``), hears of every watch (``every_watch``), and
gets each look (``wants_looks``) and caption (``wants_captions``) through the
same per-look path the metrics count. Every ``send_*`` only turns the event into
an :class:`~sinks.activity.entries.Entry` and queues it: the caller never waits
for the disk.

What it keeps of watch states: a row when a run's status changes (queued,
running, success, failed, cancelled), not the state sent after every look
(the look's own row says it). Camera states: a row when a camera goes online or
offline. Alerts are kept with their picture, looks and captions with a
thumbnail.

Example:
    >>> sink = ActivitySink(ActivityStore(Path("lookout-data")))  # doctest: +SKIP
    >>> hub.attach(sink); sink.open()  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from pipeline.core.events import Alert, CameraState, Caption, LookRecord, WatchState
from sinks.activity.entries import (
    Entry,
    alert_entry,
    camera_entry,
    caption_entry,
    look_entry,
    state_entry,
)
from sinks.activity.store import ActivityStore
from sinks.base import Sink

SINK_NAME = "@activity"
"""The activity sink's name in the hub: never a valid ``[sinks]`` name."""


class ActivitySink(Sink):
    """Feed an :class:`ActivityStore` from the sink hub.

    Args:
        store: the store (opened with the sink, closed with it).
        clock: epoch seconds, the time of status and camera changes without one.

    Attributes:
        latest_states: the newest state of every watch name (for the web page).
    """

    wants_looks = True
    wants_captions = True
    every_watch = True

    def __init__(self, store: ActivityStore, clock: Callable[[], float] | None = None) -> None:
        super().__init__(SINK_NAME)
        self.store = store
        self.clock = clock or store.clock
        self.latest_states: dict[str, WatchState] = {}
        self._cameras: dict[str, str] = {}
        self._status: dict[str, tuple[str, str]] = {}
        self._online: dict[str, bool] = {}
        self._map_lock = threading.Lock()

    @property
    def db_path(self) -> Path:
        """The store's SQLite file."""
        return self.store.db_path

    def _open(self) -> None:
        self.store.open()

    def _close(self) -> None:
        self.store.close()

    def _put(self, entry: Entry) -> None:
        self.store.put(entry)

    def _write_look(self, look: LookRecord) -> None:
        with self._map_lock:
            camera = self._cameras.get(look.watch)
        self._put(look_entry(look, camera))

    def _write_alert(self, alert: Alert) -> None:
        self._put(alert_entry(alert))

    def _write_state(self, state: WatchState) -> None:
        key = (state.id, state.status.value)
        with self._map_lock:
            self._cameras[state.name] = state.camera
            self.latest_states[state.name] = state
            changed = self._status.get(state.name) != key
            self._status[state.name] = key
        if changed:
            when = state.ended_at if state.status.ended and state.ended_at else None
            self._put(state_entry(state, when if when is not None else self.clock()))

    def _write_camera_state(self, state: CameraState) -> None:
        with self._map_lock:
            before = self._online.get(state.camera)
            self._online[state.camera] = state.online
        if before == state.online:
            return
        if state.online or state.last_error or before is not None:  # not the first "connecting"
            self._put(camera_entry(state, self.clock()))

    def _write_caption(self, caption: Caption) -> None:
        self._put(caption_entry(caption))

    def _forget_watch(self, name: str) -> None:
        with self._map_lock:
            self.latest_states.pop(name, None)
            self._status.pop(name, None)
