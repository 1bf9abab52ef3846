"""The outbox's records: the SQLite schema and one stored event (:class:`OutboxEvent`).

Example:
    >>> new_event_id().startswith("msg_")
    True
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["pending", "delivered", "dead"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    sink TEXT NOT NULL,
    url TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'alert',
    body BLOB NOT NULL,
    content_type TEXT NOT NULL,
    created REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    last_error TEXT,
    last_status INTEGER,
    done_at REAL
);
CREATE INDEX IF NOT EXISTS events_due ON events (sink, status, next_attempt);
CREATE INDEX IF NOT EXISTS events_done ON events (sink, status, done_at);
CREATE TABLE IF NOT EXISTS endpoints (
    sink TEXT NOT NULL,
    url TEXT NOT NULL,
    disabled_at REAL NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (sink, url)
);
"""


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One stored event.

    Attributes:
        id: the ``webhook-id``, stable across retries.
        sink: the sink's name.
        url: the endpoint's URL when it was stored encrypted (run-time webhooks)
            and the key opens it; empty for a reference to the sink's own URL.
        kind: ``alert`` or ``watch_state``.
        body: the exact bytes sent.
        content_type: the body's content type.
        created: epoch seconds when stored (or replayed).
        status: ``pending``, ``delivered`` or ``dead``.
        attempts: delivery attempts so far.
        next_attempt: epoch seconds of the next attempt.
        last_error: why the latest attempt failed (no secrets).
        last_status: HTTP status of the latest answer, if any.
        done_at: when it was delivered or given up.
        endpoint: the endpoint's secret-free label (``https://host/...``).
    """

    id: str
    sink: str
    url: str
    kind: str
    body: bytes
    content_type: str
    created: float
    status: str
    attempts: int
    next_attempt: float
    last_error: str | None
    last_status: int | None
    done_at: float | None
    endpoint: str = ""

    def summary(self) -> dict[str, Any]:
        """Return the event without its body, for listings.

        The URL is reduced to scheme, host and port (webhook URLs carry secrets
        in their password, path or query).
        """
        return {
            "id": self.id,
            "sink": self.sink,
            "url": self.endpoint,
            "kind": self.kind,
            "status": self.status,
            "attempts": self.attempts,
            "created": self.created,
            "next_attempt": self.next_attempt,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "bytes": len(self.body),
        }


COLUMNS = (
    "id, sink, url, kind, body, content_type, created, status, attempts, next_attempt, "
    "last_error, last_status, done_at"
)


def new_event_id() -> str:
    """Return a fresh ``msg_<uuid4 hex>`` id."""
    return f"msg_{uuid.uuid4().hex}"
