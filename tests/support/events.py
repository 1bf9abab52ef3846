"""Alerts and watch states as the runtime makes them, for sink and pipeline tests.

Example::

    alert = make_alert(3, watch="gate", message="The gate is open")   # event id evt-3
    state = make_state(status=WatchStatus.RUNNING)
"""

from __future__ import annotations

from typing import Any

from pipeline.core.events import Alert, WatchState


def make_alert(n: int = 1, watch: str = "porch", camera: str = "front", **kw: Any) -> Alert:
    """Alert number ``n`` (``evt-n``, ``Package #n``) of ``watch``; ``kw`` overrides fields."""
    fields: dict[str, Any] = {
        "event_id": f"evt-{n}",
        "watch": watch,
        "job_id": "job-1",
        "camera": camera,
        "condition": "a package is on the porch",
        "message": f"Package #{n}",
        "reasoning": "A brown box by the door.",
        "time": 1_700_000_000.0 + n,
        "look_count": n,
        "frame": {"camera": camera, "seq": n},
    }
    fields.update(kw)
    return Alert(**fields)


def make_state(watch: str = "porch", **kw: Any) -> WatchState:
    """The state of ``watch`` (job ``job-1`` on camera ``front``); ``kw`` sets fields."""
    return WatchState(id="job-1", name=watch, camera="front", condition="a package", **kw)
