"""What the page shows, as plain data: cameras, watches, the timeline (also the JSON endpoint).

:func:`page_state` reads the running pipeline and the activity store into
JSON-able dicts; the HTML (:mod:`pipeline.app.web.pages`) and the page's
polling (``/api/state``) both use it, so the first paint and every update show
the same thing.

Example:
    >>> state = page_state(pipeline, db, Query(text="gate"))  # doctest: +SKIP
    >>> sorted(state)  # doctest: +SKIP
    ['cameras', 'query', 'timeline', 'watches']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from pipeline.app.runner import Pipeline
from pipeline.core.events import iso_time
from sinks.activity.query import Filter, entries, latest_pictures

TIMELINE_ROWS = 50
"""Entries the page shows at once."""


@dataclass(frozen=True, slots=True)
class Query:
    """The timeline the page asks for: search words and a camera."""

    text: str = ""
    camera: str = ""

    @classmethod
    def from_url(cls, query: str) -> Query:
        """From a URL's query string (``q``, ``camera``), bounded."""
        args = parse_qs(query)
        return cls(
            text=(args.get("q") or [""])[0][:200],
            camera=(args.get("camera") or [""])[0][:64],
        )


def camera_views(pipeline: Pipeline, db: Path | None) -> list[dict[str, Any]]:
    """Each configured camera: online or not, why not, and its newest picture's entry id."""
    pictures = latest_pictures(db) if db is not None and db.exists() else {}
    open_cameras = pipeline.cameras
    out = []
    for name in pipeline.config.cameras:
        cam = open_cameras.get(name)
        state = cam.state if cam is not None else None
        picture = pictures.get(name)
        out.append({
            "name": name,
            "online": bool(state and state.online),
            "state": "online" if state and state.online else "offline",
            "last_error": state.last_error if state else None,
            "picture": picture["id"] if picture else None,
            "picture_time": picture["iso_time"] if picture else None,
        })  # fmt: skip
    return out


def watch_views(pipeline: Pipeline) -> list[dict[str, Any]]:
    """Each watch (running first, then the last run of ended ones) with its latest state."""
    running, ended = pipeline.runs.snapshot()
    runs = list(running.values()) + [w for n, w in ended.items() if n not in running]
    out = []
    for run in runs:
        s = run.last_state
        out.append({
            "name": run.config.name,
            "camera": run.config.camera,
            "condition": run.config.condition,
            "origin": run.origin,
            "status": run.status,
            "looks": s.iterations if s else 0,
            "alerts": s.alerts if s else 0,
            "last_answer": s.last_answer if s else None,
            "last_reasoning": (s.last_reasoning or s.error_message) if s else None,
            "next_look_in": s.next_look_in if s else None,
            "started": iso_time(s.started_at) if s else None,
        })  # fmt: skip
    return out


def timeline(db: Path | None, query: Query, limit: int = TIMELINE_ROWS) -> list[dict[str, Any]]:
    """The newest entries of the store (matching the search), without their internal paths."""
    if db is None or not db.exists():
        return []
    rows = entries(db, Filter(text=query.text, camera=query.camera or None, limit=limit))
    for row in rows:
        row["has_picture"] = bool(row.pop("picture"))
    return rows


def page_state(pipeline: Pipeline, db: Path | None, query: Query) -> dict[str, Any]:
    """Everything the page shows."""
    return {
        "cameras": camera_views(pipeline, db),
        "watches": watch_views(pipeline),
        "timeline": timeline(db, query),
        "query": {"q": query.text, "camera": query.camera},
        "store": db is not None,
    }
