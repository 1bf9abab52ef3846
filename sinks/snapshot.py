"""The snapshot sink: each alert's judged frame saved as a JPEG file, newest ``keep`` kept.

Files are named ``<UTC time>_<watch>_<event id>.jpg`` so that names sort by
time; they are written to a temporary name and renamed, so a reader never sees
half a file. Placed in a :class:`sinks.registry.SinkHub`, the sink saves the
frame in ``prepare_alert`` and the other sinks get the alert with its
``snapshot_path``. Alerts without JPEG bytes are skipped.

Example:
    >>> sink = SnapshotSink("snaps", SnapshotSinkConfig(directory=Path("snaps")))  # doctest: +SKIP
    >>> alert = sink.prepare_alert(alert)  # doctest: +SKIP
    >>> alert.snapshot_path  # doctest: +SKIP
    'snaps/20240101T120000.000Z_porch_e1.jpg'
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path

from pipeline.core.config import SnapshotSinkConfig
from pipeline.core.events import Alert
from sinks.base import Sink

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")


def snapshot_name(alert: Alert) -> str:
    """Return the file name of an alert's snapshot.

    Example:
        >>> a = Alert(event_id="e/1", watch="porch", job_id="j", camera="c",
        ...           condition="x", message="m", reasoning="r", time=0.0, look_count=1)
        >>> snapshot_name(a)
        '19700101T000000.000Z_porch_e_1.jpg'
    """
    stamp = datetime.fromtimestamp(alert.time, tz=UTC).strftime("%Y%m%dT%H%M%S.%f")[:-3]
    return f"{stamp}Z_{_UNSAFE.sub('_', alert.watch)}_{_UNSAFE.sub('_', alert.event_id)[:64]}.jpg"


class SnapshotSink(Sink):
    """Save judged frames under ``config.directory``; keep the newest ``config.keep``."""

    def __init__(self, name: str, config: SnapshotSinkConfig) -> None:
        super().__init__(name)
        self.config = config
        self._files: list[str] = []
        self._saved: OrderedDict[str, str] = OrderedDict()
        self._io_lock = threading.Lock()

    def _open(self) -> None:
        self.config.directory.mkdir(parents=True, exist_ok=True)
        self._files = sorted(p.name for p in self.config.directory.glob("*.jpg"))
        self._prune()

    def _prune(self) -> None:
        while len(self._files) > self.config.keep:
            old = self._files.pop(0)
            (self.config.directory / old).unlink(missing_ok=True)

    def save(self, alert: Alert) -> str | None:
        """Write the alert's JPEG (once per event id); return its path, or None without JPEG."""
        if alert.jpeg is None:
            return None
        with self._io_lock:
            if alert.event_id in self._saved:
                return self._saved[alert.event_id]
            name = snapshot_name(alert)
            path = self.config.directory / name
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(alert.jpeg)
            os.replace(tmp, path)
            if name not in self._files:
                self._files.append(name)
                self._files.sort()
            self._prune()
            self._saved[alert.event_id] = str(path)
            while len(self._saved) > 1000:
                self._saved.popitem(last=False)
            return str(path)

    def _prepare_alert(self, alert: Alert) -> Alert:
        path = self.save(alert)
        return alert.with_snapshot(path) if path is not None else alert

    def _write_alert(self, alert: Alert) -> None:
        self.save(alert)


def snapshot_files(directory: Path) -> list[Path]:
    """Return the snapshot files in ``directory``, oldest first."""
    return sorted(directory.glob("*.jpg"))
