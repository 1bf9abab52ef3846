"""The activity store: one writer thread that batches entries into SQLite, and retention.

Entries come from any thread (:meth:`ActivityStore.put` only queues them, so a
watch never waits for the disk); the writer takes up to ``BATCH`` at a time,
writes each look's thumbnail (made by the look from its frame; without one it
shrinks the JPEG), inserts the entries in one transaction once their pictures
are on disk, and keeps the store within ``[activity]`` ``max_age_days`` and
``max_size_mb`` (database, its WAL and pictures together: the oldest entries
go first) and drops thumbnails older than ``thumbnail_keep_s``. Reading is
:mod:`sinks.activity.query` on a connection of its own.

What is lost when: entries still queued when the process is killed (at most a
batch or the queue); a committed entry survives ``kill -9`` (WAL). When the
queue is full for half a second, new entries are dropped and counted
(``dropped``).

Example:
    >>> store = ActivityStore(Path("lookout-data"))  # doctest: +SKIP
    >>> store.open(); store.put(entry); store.flush(); store.close()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pipeline.core.config import ActivityConfig
from pipeline.core.redact import redact
from sinks.activity import pictures
from sinks.activity.entries import Entry
from sinks.activity.schema import connect, create, limit_wal

log = logging.getLogger("lookout.activity")

DB_NAME = "activity.sqlite3"
BATCH = 512
"""Most entries written in one transaction."""
PUT_WAIT_S = 0.5
"""How long ``put`` waits for room in a full queue before it drops the entry."""
AGE_EVERY_S = 60.0
"""Seconds between two age checks (size is checked after every batch)."""
MIB = 1024 * 1024
ROW_BYTES = 1024
"""What one entry is reckoned to add to the database (row, indexes, FTS) when making room."""

_INSERT = (
    "INSERT INTO events (id, time, kind, camera, watch, job_id, trigger, answer, text, message,"
    " next_look, latency, picture, picture_bytes, data)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_PRUNE = "prune"


class ActivityStore:
    """Write entries to ``<folder>/activity.sqlite3`` and pictures under ``<folder>``.

    Args:
        folder: the store's folder (created when missing).
        config: the ``[activity]`` table.
        clock: epoch seconds "now", for retention by age and thumbnail keep time
            (virtual in tests).

    Attributes:
        written: entries committed.
        dropped: entries dropped (full queue, or a write that failed).
        pruned: entries deleted by retention.
    """

    def __init__(
        self,
        folder: Path,
        config: ActivityConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.folder = Path(folder)
        self.config = config or ActivityConfig()
        self.clock = clock
        self.db_path = self.folder / DB_NAME
        self.limit_bytes = int(self.config.max_size_mb * MIB)
        self.wal_bytes = max(64 * 1024, self.limit_bytes // 20)
        self._queue: queue.Queue[Entry | str | None] = queue.Queue(self.config.queue_size)
        self._cond = threading.Condition()
        self._queued = 0
        self._handled = 0
        self.written = 0
        self.dropped = 0
        self.pruned = 0
        self._conn: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None
        self._next_id = 1
        self._picture_bytes = 0
        self._last_age = -math.inf
        self._closed = False

    # ------------------------------------------------------------ lifecycle

    def open(self) -> ActivityStore:
        """Create or open the file, then start the writer thread."""
        self.folder.mkdir(parents=True, exist_ok=True)
        conn = connect(self.db_path)
        create(conn)
        limit_wal(conn, self.wal_bytes)
        row = conn.execute("SELECT max(id), total(picture_bytes) FROM events").fetchone()
        self._next_id = int(row[0] or 0) + 1
        self._picture_bytes = int(row[1] or 0)
        self._conn = conn
        self._thread = threading.Thread(target=self._run, name="activity-writer", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued (within ``timeout_s``), stop the writer, close the file."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            try:
                self._queue.put(None, timeout=timeout_s)
            except queue.Full:
                log.warning("activity: queue still full at close; some entries are lost")
            self._thread.join(timeout_s)
        if self._conn is not None and (self._thread is None or not self._thread.is_alive()):
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()
            self._conn = None

    # ------------------------------------------------------------ writing

    def put(self, entry: Entry) -> bool:
        """Queue one entry for writing; False when it was dropped (store closed or full)."""
        if self._closed:
            return False
        with self._cond:
            self._queued += 1
        try:
            self._queue.put(entry, timeout=PUT_WAIT_S)
        except queue.Full:
            with self._cond:
                self.dropped += 1
                self._handled += 1
                self._cond.notify_all()
            return False
        return True

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every entry queued so far is written; False on time-out."""
        with self._cond:
            target = self._queued
            return self._cond.wait_for(lambda: self._handled >= target, timeout_s)

    def prune(self, timeout_s: float = 30.0) -> bool:
        """Apply retention now (age, size, thumbnail keep time) and wait for it."""
        with self._cond:
            self._queued += 1
        self._queue.put(_PRUNE, timeout=timeout_s)
        return self.flush(timeout_s)

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=AGE_EVERY_S / 4)
            except queue.Empty:
                self._maintain(force_age=False)
                continue
            batch = [first]
            while len(batch) < BATCH and first is not None:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                batch.append(item)
                if item is None:
                    break
            entries = [e for e in batch if isinstance(e, Entry)]
            if entries:
                self._write(entries)
            self._maintain(force_age=_PRUNE in batch)
            with self._cond:
                self._handled += sum(1 for e in batch if e is not None)
                self._cond.notify_all()
            if None in batch:
                return

    def _write(self, entries: list[Entry]) -> None:
        assert self._conn is not None
        first_id = self._next_id
        jobs = [self._picture_job(e, first_id + i) for i, e in enumerate(entries)]
        height = self.config.thumbnail_height
        saved = [(None, 0) if j is None else pictures.save(self.folder, j, height) for j in jobs]
        self._make_room(sum(size for _, size in saved) + ROW_BYTES * len(entries))
        rows = []
        for entry, (relative, size) in zip(entries, saved, strict=True):
            entry_id = self._next_id
            self._next_id += 1
            rows.append((
                entry_id, entry.time, entry.kind, entry.camera, entry.watch, entry.job_id,
                entry.trigger, entry.answer, entry.text, entry.message, entry.next_look,
                entry.latency, relative, size, entry.data_json(),
            ))  # fmt: skip
        try:
            with self._transaction():
                self._conn.executemany(_INSERT, rows)
        except sqlite3.Error as exc:
            self._next_id = first_id
            for row in rows:
                pictures.remove(self.folder, row[12])
            self.dropped += len(rows)
            log.error("activity: writing %d entries failed: %s", len(rows), redact(str(exc)))
            return
        self._picture_bytes += sum(row[13] for row in rows)
        self.written += len(rows)
        if self._wal_size() > self.wal_bytes:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _picture_job(self, entry: Entry, entry_id: int) -> pictures.Job | None:
        """The picture to keep for ``entry`` (a thumbnail, or an alert's whole JPEG), if any."""
        if entry.jpeg is None or (entry.thumbnail and self.config.thumbnail_keep_s <= 0):
            return None
        root = pictures.THUMBS if entry.thumbnail else pictures.ALERTS
        relative = pictures.relative_path(root, entry_id, entry.time)
        return pictures.Job(relative, entry.jpeg, entry.thumbnail, entry.kind, entry.small)

    def _wal_size(self) -> int:
        try:
            return (self.folder / (DB_NAME + "-wal")).stat().st_size
        except OSError:
            return 0

    def _transaction(self) -> _Transaction:
        assert self._conn is not None
        return _Transaction(self._conn)

    # ------------------------------------------------------------ retention

    def size_bytes(self) -> int:
        """Bytes the store takes now: database, WAL and pictures."""
        total = self._picture_bytes
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                total += (self.folder / (DB_NAME + suffix)).stat().st_size
        return total

    def _maintain(self, *, force_age: bool) -> None:
        try:
            now = time.monotonic()
            if force_age or now - self._last_age >= AGE_EVERY_S:
                self._last_age = now
                self._prune_age()
            self._make_room(0)
        except sqlite3.Error as exc:
            log.error("activity: retention failed: %s", redact(str(exc)))

    def _prune_age(self) -> None:
        assert self._conn is not None
        now = self.clock()
        self._delete_where("time < ?", (now - self.config.max_age_days * 86400.0,))
        keep = now - self.config.thumbnail_keep_s
        with self._transaction():
            cur = self._conn.execute(
                "SELECT total(picture_bytes) FROM events WHERE kind != 'alert' AND time < ?"
                " AND picture IS NOT NULL",
                (keep,),
            )
            freed = int(cur.fetchone()[0] or 0)
            self._conn.execute(
                "UPDATE events SET picture = NULL, picture_bytes = 0"
                " WHERE kind != 'alert' AND time < ? AND picture IS NOT NULL",
                (keep,),
            )
        self._picture_bytes -= freed
        pictures.remove_hours_before(self.folder, pictures.THUMBS, keep)

    def _make_room(self, extra: int) -> None:
        """Delete the oldest entries until ``extra`` more bytes fit well under the limit.

        Triggered past 95 % of ``max_size_mb``; deletes down to about 80 % so that
        retention runs now and then, not at every batch.
        """
        assert self._conn is not None
        if self.size_bytes() + extra <= self.limit_bytes * 0.95:
            return
        target = max(0.0, self.limit_bytes * 0.8 - extra)
        for _ in range(32):
            used = self.size_bytes()
            if used <= target:
                break
            rows = int(self._conn.execute("SELECT count(*) FROM events").fetchone()[0])
            if rows == 0:
                break
            deletable = max(1, self._db_bytes() + self._picture_bytes)
            count = min(rows, max(1, math.ceil(rows * (used - target) / deletable)))
            cut = self._conn.execute(
                "SELECT id FROM events ORDER BY id LIMIT 1 OFFSET ?", (count - 1,)
            ).fetchone()[0]
            self._delete_where("id <= ?", (cut,))
            self._conn.execute("INSERT INTO events_fts (events_fts, rank) VALUES ('merge', 500)")
            self._conn.execute("PRAGMA incremental_vacuum")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pictures.remove_empty_hours(self.folder, pictures.THUMBS)

    def _db_bytes(self) -> int:
        assert self._conn is not None
        pages = int(self._conn.execute("PRAGMA page_count").fetchone()[0])
        free = int(self._conn.execute("PRAGMA freelist_count").fetchone()[0])
        page = int(self._conn.execute("PRAGMA page_size").fetchone()[0])
        return (pages - free) * page

    def _delete_where(self, where: str, args: tuple[float | int, ...]) -> None:
        assert self._conn is not None
        with self._transaction():
            gone = self._conn.execute(
                f"SELECT picture, picture_bytes FROM events WHERE {where} AND picture IS NOT NULL",
                args,
            ).fetchall()
            count = self._conn.execute(f"DELETE FROM events WHERE {where}", args).rowcount
        for relative, size in gone:
            pictures.remove(self.folder, relative)
            self._picture_bytes -= int(size)
        self.pruned += max(0, count)


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
