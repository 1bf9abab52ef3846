"""The console sink: one readable line per alert or state change.

Example:
    >>> import io
    >>> out = io.StringIO()
    >>> with ConsoleSink("console", ConsoleSinkConfig(), stream=out) as sink:
    ...     sink.send_alert(Alert(event_id="e1", watch="porch", job_id="j1",
    ...         camera="front", condition="a package", message="Package!",
    ...         reasoning="A box.", time=0.0, look_count=3))
    >>> out.getvalue()
    '1970-01-01T00:00:00+00:00 ALERT porch (front): Package! [A box.] looks=3 event=e1\\n'
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from pipeline.core.config import ConsoleSinkConfig
from pipeline.core.events import Alert, CameraState, WatchState, iso_time
from sinks.base import Sink


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def format_alert(alert: Alert) -> str:
    """Return the text line of an alert."""
    return (
        f"{iso_time(alert.time)} ALERT {alert.watch} ({alert.camera}): {_one_line(alert.message)}"
        f" [{_one_line(alert.reasoning)}] looks={alert.look_count} event={alert.event_id}"
        + (f" snapshot={alert.snapshot_path}" if alert.snapshot_path else "")
    )


def format_state(state: WatchState) -> str:
    """Return the text line of a watch state."""
    parts = [
        f"STATE {state.name} ({state.camera}): {state.status.value}",
        f"looks={state.iterations}",
    ]
    if state.next_look_in is not None and not state.status.ended:
        parts.append(f"next_in={state.next_look_in:.3g}s")
    if state.error_message:
        parts.append(f"error={_one_line(state.error_message)}")
    elif state.last_reasoning:
        parts.append(f"[{_one_line(state.last_reasoning)}]")
    return " ".join(parts)


def format_camera_state(state: CameraState) -> str:
    """Return the text line of a camera state."""
    if state.online:
        status = "online"
    elif state.last_error is None and state.reconnects == 0:
        status = "connecting"  # not yet online, and nothing has gone wrong
    else:
        status = "offline"
    line = f"CAMERA {state.camera}: {status}"
    if state.last_error:
        line += f" ({_one_line(state.last_error)})"
    return line


class ConsoleSink(Sink):
    """Print alerts (and, with ``states``, watch and camera state) to ``stream``.

    Args:
        name: the sink's name.
        config: its table (``format`` text or json, ``states``).
        stream: where lines go; standard output by default. Not closed by ``close()``.
    """

    def __init__(
        self, name: str, config: ConsoleSinkConfig | None = None, stream: TextIO | None = None
    ) -> None:
        super().__init__(name)
        self.config = config or ConsoleSinkConfig()
        self._stream = stream
        self._write_lock = threading.Lock()

    def _line(self, text: str) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        with self._write_lock:
            stream.write(text + "\n")
            stream.flush()

    def _write_alert(self, alert: Alert) -> None:
        if self.config.format == "json":
            self._line(alert.to_json().decode())
        else:
            self._line(format_alert(alert))

    def _write_state(self, state: WatchState) -> None:
        if not self.config.states:
            return
        self._line(
            state.to_json().decode() if self.config.format == "json" else format_state(state)
        )

    def _write_camera_state(self, state: CameraState) -> None:
        if not self.config.states:
            return
        if self.config.format == "json":
            self._line(state.to_json().decode())
        else:
            self._line(format_camera_state(state))
