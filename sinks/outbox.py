"""A durable outbox for webhook events, in SQLite (WAL).

An event is stored *before* its first delivery attempt and keeps the same id
(the ``webhook-id``) and the same body on every retry. States:

- ``pending``: waiting for its ``next_attempt`` time;
- ``delivered``: the receiver answered 2xx;
- ``dead``: given up (too old, or the endpoint answered 410); list and replay
  these with :func:`list_events` and :func:`replay_events` (the CLI's
  ``outbox list`` / ``outbox replay``).

Delivered and dead events are deleted by :meth:`Outbox.prune` once older than
their retention (the webhook sink runs it periodically with its
``keep_delivered_s`` and ``keep_dead_s``); pending events are never deleted.

The database runs in WAL mode with ``synchronous=NORMAL``: a committed event
survives the process being killed (``kill -9``); a power cut may lose the
last few commits. One file can hold several sinks (column ``sink``).

No URL is stored in clear (:mod:`sinks.outbox_key`): a config webhook's events
refer to their sink, a run-time webhook's URL is encrypted with the key in
``<database>.key``, disabled endpoints are keyed fingerprints; older files are
converted when opened. The database file is not a secret.

Example:
    >>> box = Outbox(Path(":memory:"))
    >>> ev = box.add("hook", "https://example.com/h", b"{}", "application/json", now=0.0)
    >>> [e.id for e in box.due("hook", now=0.0)] == [ev.id]
    True
    >>> box.close()
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from sinks.outbox_key import OutboxKey, reference, seal_old_urls
from sinks.outbox_records import COLUMNS, SCHEMA, OutboxEvent, Status, new_event_id

__all__ = ["Outbox", "OutboxEvent", "Status", "list_events", "new_event_id", "replay_events"]


class Outbox:
    """The SQLite store behind a webhook sink; thread-safe (one connection, one lock).

    Args:
        path: database file (created with its folder); ``:memory:`` for tests.
        key: seals run-time URLs; by default the key file next to ``path``
            (created 0600 when missing; a fresh in-memory key for ``:memory:``).
    """

    def __init__(self, path: Path, key: OutboxKey | None = None) -> None:
        self.path = path
        memory = str(path) == ":memory:"
        if not memory:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.key = key or (OutboxKey.generate() if memory else OutboxKey.for_database(path))
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            # Only takes effect in a new file: pruned pages can then be handed back.
            self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.execute("PRAGMA secure_delete=ON")  # replaced URLs leave no trace
            self._db.executescript(SCHEMA)
            seal_old_urls(self._db, self.key)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _rows(self, sql: str, args: Sequence[Any]) -> list[OutboxEvent]:
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [self._event(row) for row in rows]

    def _event(self, row: Sequence[Any]) -> OutboxEvent:
        url, label = self.key.label(row[2])
        return replace(OutboxEvent(*row), url=url or "", endpoint=label)

    def _exec(self, sql: str, args: Sequence[Any]) -> int:
        with self._lock:
            return self._db.execute(sql, args).rowcount

    def add(
        self,
        sink: str,
        url: str,
        body: bytes,
        content_type: str,
        *,
        now: float,
        kind: str = "alert",
        event_id: str | None = None,
        status: Status = "pending",
        error: str | None = None,
        by_reference: bool = False,
    ) -> OutboxEvent:
        """Store a new event (committed before this returns) and return it.

        Args:
            sink: the sink's name.
            url: the endpoint's URL.
            body: the exact bytes to send.
            content_type: the body's content type.
            now: epoch seconds: creation and first attempt time.
            kind: ``alert`` or ``watch_state``.
            event_id: the id (default a new one).
            status: ``pending``, or ``dead`` for an event stored as a dead letter.
            error: why, for a dead letter.
            by_reference: ``url`` is the sink's own, in the config: keep only a
                reference (and its secret-free label). Otherwise the URL is kept
                encrypted with the outbox key.
        """
        stored = reference(url) if by_reference else self.key.seal(url)
        ev = OutboxEvent(
            id=event_id or new_event_id(),
            sink=sink,
            url="" if by_reference else url,
            kind=kind,
            body=body,
            content_type=content_type,
            created=now,
            status=status,
            attempts=0,
            next_attempt=now,
            last_error=error,
            last_status=None,
            done_at=now if status != "pending" else None,
            endpoint=self.key.label(stored)[1],
        )
        self._exec(
            f"INSERT INTO events ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                ev.id, ev.sink, stored, ev.kind, ev.body, ev.content_type, ev.created,
                ev.status, ev.attempts, ev.next_attempt, ev.last_error, ev.last_status,
                ev.done_at,
            ),
        )  # fmt: skip
        return ev

    def get(self, event_id: str) -> OutboxEvent | None:
        """Return one event by id."""
        rows = self._rows(f"SELECT {COLUMNS} FROM events WHERE id = ?", (event_id,))
        return rows[0] if rows else None

    def due(self, sink: str, now: float, limit: int = 100) -> list[OutboxEvent]:
        """Return pending events of ``sink`` whose time has come, oldest first."""
        return self._rows(
            f"SELECT {COLUMNS} FROM events WHERE sink = ? AND status = 'pending' "
            "AND next_attempt <= ? ORDER BY created, rowid LIMIT ?",
            (sink, now, limit),
        )

    def next_due(self, sink: str) -> float | None:
        """Return the earliest ``next_attempt`` among pending events of ``sink``."""
        with self._lock:
            row = self._db.execute(
                "SELECT MIN(next_attempt) FROM events WHERE sink = ? AND status = 'pending'",
                (sink,),
            ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def mark_delivered(self, event_id: str, now: float, http_status: int) -> None:
        """Record a 2xx answer."""
        self._exec(
            "UPDATE events SET status='delivered', attempts=attempts+1, done_at=?, "
            "last_status=?, last_error=NULL WHERE id=?",
            (now, http_status, event_id),
        )

    def mark_retry(
        self, event_id: str, next_attempt: float, error: str, http_status: int | None
    ) -> None:
        """Record a failed attempt and when to try again."""
        self._exec(
            "UPDATE events SET attempts=attempts+1, next_attempt=?, last_error=?, last_status=? "
            "WHERE id=?",
            (next_attempt, error, http_status, event_id),
        )

    def mark_dead(
        self, event_id: str, now: float, error: str, http_status: int | None, attempted: bool
    ) -> None:
        """Give up on an event (dead letter)."""
        self._exec(
            "UPDATE events SET status='dead', attempts=attempts+?, done_at=?, last_error=?, "
            "last_status=? WHERE id=?",
            (1 if attempted else 0, now, error, http_status, event_id),
        )

    def kill_pending(self, sink: str, now: float, error: str) -> int:
        """Move every pending event of ``sink`` to dead; return how many."""
        return self._exec(
            "UPDATE events SET status='dead', done_at=?, last_error=? "
            "WHERE sink=? AND status='pending'",
            (now, error, sink),
        )

    def prune(
        self, now: float, keep_delivered_s: float, keep_dead_s: float, sink: str | None = None
    ) -> int:
        """Delete delivered and dead events done longer ago than their retention; return how many.

        Pending events are never deleted. Freed pages go back to the file system
        in files created by this version (``auto_vacuum=INCREMENTAL``); in older
        files SQLite reuses them, so the file stops growing.

        Example:
            >>> box = Outbox(Path(":memory:"))
            >>> ev = box.add("hook", "https://example.com/h", b"{}", "application/json", now=0.0)
            >>> box.mark_delivered(ev.id, now=1.0, http_status=200)
            >>> box.prune(now=50.0, keep_delivered_s=60.0, keep_dead_s=600.0)
            0
            >>> box.prune(now=100.0, keep_delivered_s=60.0, keep_dead_s=600.0)
            1
            >>> box.close()

        Args:
            now: epoch seconds.
            keep_delivered_s: how long delivered events are kept after delivery.
            keep_dead_s: how long dead letters are kept after they were given up.
            sink: only this sink's events (all sinks by default).

        Raises:
            ValueError: for a negative retention.
        """
        if keep_delivered_s < 0 or keep_dead_s < 0:
            raise ValueError("Retention times must not be negative.")
        where = "" if sink is None else " AND sink = ?"
        extra: tuple[Any, ...] = () if sink is None else (sink,)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                gone = self._db.execute(
                    f"DELETE FROM events WHERE status = 'delivered' AND done_at < ?{where}",
                    (now - keep_delivered_s, *extra),
                ).rowcount
                gone += self._db.execute(
                    f"DELETE FROM events WHERE status = 'dead' AND done_at < ?{where}",
                    (now - keep_dead_s, *extra),
                ).rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            if gone:
                # executescript steps it to the end (execute() frees one page per step)
                self._db.executescript("PRAGMA incremental_vacuum;")
        return gone

    def list(
        self, status: Status | None = None, sink: str | None = None, limit: int = 100
    ) -> list[OutboxEvent]:
        """Return events, newest first, filtered by status and sink."""
        where, args = _filters(status, sink)
        return self._rows(
            f"SELECT {COLUMNS} FROM events {where} ORDER BY created DESC, rowid DESC LIMIT ?",
            (*args, limit),
        )

    def counts(self, sink: str | None = None) -> dict[str, int]:
        """Return the number of events per status."""
        where, args = _filters(None, sink)
        with self._lock:
            rows = self._db.execute(
                f"SELECT status, COUNT(*) FROM events {where} GROUP BY status", args
            ).fetchall()
        out = {"pending": 0, "delivered": 0, "dead": 0}
        out.update({str(s): int(n) for s, n in rows})
        return out

    def replay(self, now: float, ids: Sequence[str] | None = None, sink: str | None = None) -> int:
        """Make dead events (all, or those in ``ids``) pending again, as new; return how many.

        The id and body stay; attempts restart at 0 and the age counts from ``now``.
        The sink's endpoint is enabled again.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if ids is not None:
                    marks = ",".join("?" * len(ids))
                    cur = self._db.execute(
                        "UPDATE events SET status='pending', attempts=0, created=?, "
                        f"next_attempt=?, done_at=NULL WHERE status='dead' AND id IN ({marks})",
                        (now, now, *ids),
                    )
                else:
                    where, args = _filters("dead", sink)
                    cur = self._db.execute(
                        "UPDATE events SET status='pending', attempts=0, created=?, "
                        f"next_attempt=?, done_at=NULL {where}",
                        (now, now, *args),
                    )
                changed = cur.rowcount
                if sink is not None:
                    self._db.execute("DELETE FROM endpoints WHERE sink=?", (sink,))
                elif ids is not None:
                    self._db.execute(
                        "DELETE FROM endpoints WHERE sink IN (SELECT sink FROM events "
                        f"WHERE id IN ({','.join('?' * len(ids))}))",
                        tuple(ids),
                    )
                else:
                    self._db.execute("DELETE FROM endpoints")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return changed

    def disable(self, sink: str, url: str, now: float, reason: str) -> None:
        """Remember that ``url`` must not be called again (until a replay enables it).

        The URL is kept as a keyed fingerprint only.
        """
        self._exec(
            "INSERT OR REPLACE INTO endpoints (sink, url, disabled_at, reason) VALUES (?,?,?,?)",
            (sink, self.key.fingerprint(url), now, reason),
        )

    def disabled(self, sink: str, url: str) -> str | None:
        """Return why ``url`` is disabled for ``sink``, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT reason FROM endpoints WHERE sink=? AND url=?",
                (sink, self.key.fingerprint(url)),
            ).fetchone()
        return None if row is None else str(row[0])

    def enable(self, sink: str) -> None:
        """Enable every endpoint of ``sink`` again."""
        self._exec("DELETE FROM endpoints WHERE sink=?", (sink,))


def _filters(status: str | None, sink: str | None) -> tuple[str, tuple[Any, ...]]:
    clauses: list[str] = []
    args: list[Any] = []
    if status is not None:
        clauses.append("status = ?")
        args.append(status)
    if sink is not None:
        clauses.append("sink = ?")
        args.append(sink)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", tuple(args)


# -- functions for the CLI (``python -m pipeline outbox list|replay``) ------------------


def list_events(
    path: Path, status: Status | None = "dead", sink: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Return summaries (no bodies) of the outbox's events, newest first.

    Example:
        >>> list_events(Path("lookout-outbox.sqlite3"), status="dead")  # doctest: +SKIP
        [{'id': 'msg_...', 'sink': 'hook', 'status': 'dead', 'attempts': 12, ...}]

    Raises:
        FileNotFoundError: no outbox at ``path``.
    """
    if not path.exists():
        raise FileNotFoundError(f"No outbox at {path}.")
    with Outbox(path) as box:
        return [e.summary() for e in box.list(status=status, sink=sink, limit=limit)]


def replay_events(
    path: Path, ids: Sequence[str] | None = None, sink: str | None = None, now: float | None = None
) -> int:
    """Make dead events pending again (all, those of ``sink``, or ``ids``); return how many.

    A running Lookout sends them on its next pass; a stopped one on its next start.

    Raises:
        FileNotFoundError: no outbox at ``path``.
    """
    import time

    if not path.exists():
        raise FileNotFoundError(f"No outbox at {path}.")
    with Outbox(path) as box:
        return box.replay(time.time() if now is None else now, ids=ids, sink=sink)
