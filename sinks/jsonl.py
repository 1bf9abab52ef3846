"""The JSONL sink: one alert or state per line, appended, rotated by size.

Each line is a JSON object with a ``kind`` (``alert``, ``watch_state``,
``camera_state``, or with ``looks = true`` ``look``) plus the record's fields.
Past ``max_bytes`` the file is renamed ``<path>.1`` (older ones shift up to
``<path>.<backups>``, the oldest is removed) and a new file starts. Each line
is flushed when written; ``close()`` closes the file.

Example:
    >>> sink = JsonlSink("log", JsonlSinkConfig(path=Path("alerts.jsonl")))  # doctest: +SKIP
    >>> with sink:  # doctest: +SKIP
    ...     sink.send_alert(alert)
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import IO, Any

import orjson

from pipeline.core.config import JsonlSinkConfig
from pipeline.core.events import Alert, CameraState, LookRecord, WatchState
from sinks.base import Sink


def rotate(path: Path, backups: int) -> None:
    """Shift ``path`` to ``path.1``, ``path.1`` to ``path.2``... keeping ``backups`` files.

    With ``backups == 0`` the file is simply removed.
    """
    if backups <= 0:
        path.unlink(missing_ok=True)
        return
    oldest = path.with_name(f"{path.name}.{backups}")
    oldest.unlink(missing_ok=True)
    for i in range(backups - 1, 0, -1):
        src = path.with_name(f"{path.name}.{i}")
        if src.exists():
            os.replace(src, path.with_name(f"{path.name}.{i + 1}"))
    if path.exists():
        os.replace(path, path.with_name(f"{path.name}.1"))


class JsonlSink(Sink):
    """Append alerts (and states, with ``states``; looks, with ``looks``) as JSON lines."""

    wants_looks = True  # written only with ``looks``

    def __init__(self, name: str, config: JsonlSinkConfig) -> None:
        super().__init__(name)
        self.config = config
        self._file: IO[bytes] | None = None
        self._size = 0
        self._write_lock = threading.Lock()

    def _open(self) -> None:
        self.config.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.config.path.open("ab")
        self._size = self._file.tell()

    def _append(self, record: dict[str, Any]) -> None:
        line = orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS) + b"\n"
        with self._write_lock:
            if self._file is None:
                return
            if self._size > 0 and self._size + len(line) > self.config.max_bytes:
                self._file.close()
                rotate(self.config.path, self.config.backups)
                self._file = self.config.path.open("ab")
                self._size = 0
            self._file.write(line)
            self._file.flush()
            self._size += len(line)

    def _write_alert(self, alert: Alert) -> None:
        self._append({"kind": "alert", **alert.to_dict()})

    def _write_state(self, state: WatchState) -> None:
        if self.config.states:
            self._append({"kind": "watch_state", **state.to_dict()})

    def _write_look(self, look: LookRecord) -> None:
        if self.config.looks:
            self._append({"kind": "look", **look.to_dict()})

    def _write_camera_state(self, state: CameraState) -> None:
        if self.config.states:
            self._append({"kind": "camera_state", **state.to_dict()})

    def _close(self) -> None:
        with self._write_lock:
            if self._file is not None:
                self._file.close()
                self._file = None
