"""The activity store's SQLite file: one ``events`` table, its indexes and its FTS5 index.

Every entry (a look, an alert, a watch's status change, a camera going online
or offline, a caption) is one row of ``events``; ``events_fts`` indexes its
``text`` (reasoning, caption, error) and ``message`` (notification message) for
full-text search, kept in step by triggers. An entry's picture is a BLOB in
``pictures`` under the entry's id, written in the same transaction as its row
(so it survives whatever its entry survives) and deleted with it by a trigger;
``events.picture`` says which it is (:data:`THUMBNAIL` or :data:`WHOLE`). The
file is in WAL mode with ``synchronous = NORMAL``: a committed entry survives
the process being killed (``kill -9``); ``auto_vacuum = INCREMENTAL`` lets
retention give space back to the file system.

Example:
    >>> conn = connect(":memory:")
    >>> create(conn)
    >>> conn.execute("SELECT count(*) FROM events").fetchone()
    (0,)
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_VERSION = 2
"""The layout written here. 1: pictures were files beside the database (see
:mod:`sinks.activity.migrate`)."""

THUMBNAIL = "thumbnail"
"""``events.picture`` of an entry keeping a small copy of its picture (looks, captions)."""
WHOLE = "whole"
"""``events.picture`` of an entry keeping its picture as judged (alerts)."""

KINDS = ("look", "alert", "state", "camera", "caption")
"""What a row can be."""

COLUMNS = (
    "id",
    "time",
    "kind",
    "camera",
    "watch",
    "job_id",
    "trigger",
    "answer",
    "text",
    "message",
    "next_look",
    "latency",
    "picture",
    "picture_bytes",
    "data",
)
"""The columns of ``events``, in order."""

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    camera TEXT,
    watch TEXT,
    job_id TEXT,
    trigger TEXT,
    answer TEXT,
    text TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL DEFAULT '',
    next_look REAL,
    latency REAL,
    picture TEXT,  -- THUMBNAIL, WHOLE or NULL: what the pictures table holds for it
    picture_bytes INTEGER NOT NULL DEFAULT 0,
    data TEXT
);
CREATE TABLE IF NOT EXISTS pictures (id INTEGER PRIMARY KEY, jpeg BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS events_time ON events (time);
CREATE INDEX IF NOT EXISTS events_camera_time ON events (camera, time);
CREATE INDEX IF NOT EXISTS events_thumbnail_time ON events (time) WHERE picture = 'thumbnail';
CREATE VIRTUAL TABLE IF NOT EXISTS events_fts USING fts5 (
    text, message, content = 'events', content_rowid = 'id', tokenize = 'unicode61'
);
CREATE TRIGGER IF NOT EXISTS events_ai AFTER INSERT ON events BEGIN
    INSERT INTO events_fts (rowid, text, message) VALUES (new.id, new.text, new.message);
END;
CREATE TRIGGER IF NOT EXISTS events_ad AFTER DELETE ON events BEGIN
    INSERT INTO events_fts (events_fts, rowid, text, message)
        VALUES ('delete', old.id, old.text, old.message);
END;
CREATE TRIGGER IF NOT EXISTS events_ad_picture AFTER DELETE ON events BEGIN
    DELETE FROM pictures WHERE id = old.id;
END;
CREATE TRIGGER IF NOT EXISTS events_au AFTER UPDATE OF text, message ON events BEGIN
    INSERT INTO events_fts (events_fts, rowid, text, message)
        VALUES ('delete', old.id, old.text, old.message);
    INSERT INTO events_fts (rowid, text, message) VALUES (new.id, new.text, new.message);
END;
"""


def connect(path: Path | str, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the store's file (WAL, ``synchronous = NORMAL``, a 5 s busy wait).

    ``readonly`` opens it for reading only (the web page, the CLI): readers never
    block the writer in WAL mode.
    """
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
        conn.execute("PRAGMA query_only = ON")
        return conn
    conn = sqlite3.connect(str(path), timeout=5.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only takes effect on a new file
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def create(conn: sqlite3.Connection) -> None:
    """Create the tables, indexes and triggers when missing (safe to call on every open).

    A new file is marked :data:`SCHEMA_VERSION`; an existing one keeps its mark
    (:func:`sinks.activity.migrate.upgrade` brings an older one up to date).
    """
    conn.executescript(_TABLES)
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
    )


def limit_wal(conn: sqlite3.Connection, max_bytes: int) -> None:
    """Checkpoint the WAL every ``max_bytes`` or so, and truncate it to that size afterwards."""
    page = int(conn.execute("PRAGMA page_size").fetchone()[0])
    conn.execute(f"PRAGMA wal_autocheckpoint = {max(16, max_bytes // page)}")
    conn.execute(f"PRAGMA journal_size_limit = {max_bytes}")
