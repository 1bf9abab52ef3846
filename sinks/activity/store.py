"""The activity store: one writer thread that batches entries into SQLite, and retention.

Entries come from any thread (:meth:`ActivityStore.put` only queues them, so a
watch never waits for the disk); the writer takes up to ``BATCH`` at a time and
inserts them with their pictures (:mod:`sinks.activity.pictures`: each look's
own thumbnail, made from its frame, else the JPEG shrunk; an alert's whole
JPEG) in one transaction, and keeps the store within ``[activity]``
``max_age_days`` and ``max_size_mb`` (the database and its WAL, pictures
included: the oldest entries go first) and drops thumbnails older than
``thumbnail_keep_s``. Reading is :mod:`sinks.activity.query` on a connection of
its own.

An entry that comes within ``WRITE_GAP_S`` (10 ms) of the previous write waits
for the rest of that gap, so that entries under load share one transaction (at
most 100 commits a second); one after a quiet spell is written at once.

What is lost when: entries still queued when the process is killed (at most a
batch or the queue); a committed entry survives ``kill -9`` (WAL), and its
picture with it (the same transaction). When the queue is full for half a
second, new entries are dropped and counted (``dropped``).

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
from sinks.activity.migrate import upgrade
from sinks.activity.schema import THUMBNAIL, connect, limit_wal

log = logging.getLogger("lookout.activity")

DB_NAME = "activity.sqlite3"
BATCH = 512
"""Most entries written in one transaction."""
PUT_WAIT_S = 0.5
"""How long ``put`` waits for room in a full queue before it drops the entry."""
WRITE_GAP_S = 0.01
"""Least seconds from the end of one write to the next: entries that come faster share a
transaction (measured: a commit costs about as much as a thumbnail; one per look under load
made the per-look CPU 1.6 times as much)."""
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
_INSERT_PICTURE = "INSERT INTO pictures (id, jpeg) VALUES (?, ?)"
_OLD_THUMBS = f" WHERE picture = '{THUMBNAIL}' AND time < ?"
"""Entries whose thumbnail is past ``thumbnail_keep_s`` (``events_thumbnail_time`` finds them)."""
_PRUNE = "prune"


class ActivityStore:
    """Write entries and their pictures to ``<folder>/activity.sqlite3``.

    Args:
        folder: the store's folder (created when missing).
        config: the ``[activity]`` table.
        clock: epoch seconds "now", for retention by age and thumbnail keep time
            (virtual in tests).

    Attributes:
        written: entries committed.
        writes: transactions that committed entries.
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
        self.writes = 0
        self.dropped = 0
        self.pruned = 0
        self._conn: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None
        self._next_id = 1
        self._last_age = -math.inf
        self._last_write = -math.inf
        self._closed = False

    # ------------------------------------------------------------ lifecycle

    def open(self) -> ActivityStore:
        """Create or open the file (an older layout is brought up to date), start the writer.

        Raises:
            sinks.activity.migrate.StoreVersionError: a newer Lookout wrote the file.
            sqlite3.Error: the file cannot be opened or is not a database.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        conn = connect(self.db_path)
        try:
            upgrade(conn, self.folder)
            limit_wal(conn, self.wal_bytes)
            row = conn.execute("SELECT max(id) FROM events").fetchone()
        except BaseException:
            conn.close()
            raise
        self._next_id = int(row[0] or 0) + 1
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
            batch = self._take(first)
            entries = [e for e in batch if isinstance(e, Entry)]
            if entries:
                self._write(entries)
            self._maintain(force_age=_PRUNE in batch)
            self._last_write = time.monotonic()
            with self._cond:
                self._handled += sum(1 for e in batch if e is not None)
                self._cond.notify_all()
            if None in batch:
                return

    def _take(self, first: Entry | str | None) -> list[Entry | str | None]:
        """``first`` and what else is queued (at most ``BATCH``).

        Within ``WRITE_GAP_S`` of the last write it first waits for the rest of
        that gap (not when a whole batch waits already, nor to close), so that
        entries coming faster than that share one transaction instead of each
        paying a commit. An entry after a quiet spell is taken at once.
        """
        wait = self._last_write + WRITE_GAP_S - time.monotonic()
        if first is not None and wait > 0 and self._queue.qsize() < BATCH:
            time.sleep(wait)
        batch = [first]
        while len(batch) < BATCH and batch[-1] is not None:  # bounded by BATCH
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write(self, entries: list[Entry]) -> None:
        """Insert ``entries`` and their pictures in one transaction (ids from ``_next_id``)."""
        assert self._conn is not None
        height = self.config.thumbnail_height
        thumbnails = self.config.thumbnail_keep_s > 0
        rows = []
        blobs: list[tuple[int, bytes]] = []
        for entry_id, entry in enumerate(entries, self._next_id):
            picture = pictures.kept(entry, height, thumbnails=thumbnails)
            role, size = (None, 0) if picture is None else (picture.role, len(picture.jpeg))
            if picture is not None:
                blobs.append((entry_id, picture.jpeg))
            rows.append((
                entry_id, entry.time, entry.kind, entry.camera, entry.watch, entry.job_id,
                entry.trigger, entry.answer, entry.text, entry.message, entry.next_look,
                entry.latency, role, size, entry.data_json(),
            ))  # fmt: skip
        self._make_room(sum(len(jpeg) for _, jpeg in blobs) + ROW_BYTES * len(rows))
        try:
            with self._transaction():
                self._conn.executemany(_INSERT, rows)
                self._conn.executemany(_INSERT_PICTURE, blobs)
        except sqlite3.Error as exc:
            self.dropped += len(rows)
            log.error("activity: writing %d entries failed: %s", len(rows), redact(str(exc)))
            return
        self._next_id += len(rows)
        self.written += len(rows)
        self.writes += 1
        if self._wal_size() > self.wal_bytes:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

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
        """Bytes the store takes now: the database (pictures included), its WAL and shm."""
        total = 0
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
        keep = (now - self.config.thumbnail_keep_s,)
        with self._transaction():  # the literal lets SQLite use the partial index
            self._conn.execute(
                f"DELETE FROM pictures WHERE id IN (SELECT id FROM events{_OLD_THUMBS})", keep
            )
            self._conn.execute(
                f"UPDATE events SET picture = NULL, picture_bytes = 0{_OLD_THUMBS}", keep
            )

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
            deletable = max(1, self._db_bytes())
            count = min(rows, max(1, math.ceil(rows * (used - target) / deletable)))
            cut = self._conn.execute(
                "SELECT id FROM events ORDER BY id LIMIT 1 OFFSET ?", (count - 1,)
            ).fetchone()[0]
            self._delete_where("id <= ?", (cut,))
            self._conn.execute("INSERT INTO events_fts (events_fts, rank) VALUES ('merge', 500)")
            self._conn.execute("PRAGMA incremental_vacuum")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _db_bytes(self) -> int:
        assert self._conn is not None
        pages = int(self._conn.execute("PRAGMA page_count").fetchone()[0])
        free = int(self._conn.execute("PRAGMA freelist_count").fetchone()[0])
        page = int(self._conn.execute("PRAGMA page_size").fetchone()[0])
        return (pages - free) * page

    def _delete_where(self, where: str, args: tuple[float | int, ...]) -> None:
        """Delete the entries ``where`` says (their pictures go with them: a trigger)."""
        assert self._conn is not None
        with self._transaction():
            count = self._conn.execute(f"DELETE FROM events WHERE {where}", args).rowcount
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
