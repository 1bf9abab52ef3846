"""An existing store's layout checked, and an older one brought up to date, when it opens.

Version 1 kept each picture as a file beside the database
(``pictures/<UTC hour>/<id>.jpg`` for thumbnails, ``alerts/<UTC hour>/<id>.jpg``
for alert pictures) and ``events.picture`` held that path. Version 2 keeps
them as BLOBs in the ``pictures`` table (one transaction with their entry: no
file per look). :func:`upgrade` moves a version 1 store's files into the
table a few hundred at a time (each batch one transaction; a run cut short
goes on where it stopped the next time), removes the old picture folders,
then marks the file version 2. A picture file that is gone by then leaves
its entry without a picture, as before. A store written by a newer Lookout is
refused with :class:`StoreVersionError`, untouched.

Example:
    >>> conn = connect(":memory:")
    >>> upgrade(conn, Path("."))
    >>> stored_version(conn)
    2
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from pathlib import Path

from sinks.activity.schema import SCHEMA_VERSION, THUMBNAIL, WHOLE, connect, create

log = logging.getLogger("lookout.activity")

V1_FOLDERS = ("pictures", "alerts")
"""Where version 1 kept thumbnails and alert pictures, under the store's folder."""
CHUNK = 256
"""Pictures moved into the database per transaction."""


class StoreVersionError(ValueError):
    """The store was written by a newer Lookout, in a layout this one does not know."""


def stored_version(conn: sqlite3.Connection) -> int | None:
    """The layout version the file says it has; ``None`` for a new (empty) file."""
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if has_meta is None:
        return None
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    return None if row is None else int(row[0])


def upgrade(conn: sqlite3.Connection, folder: Path) -> None:
    """Create a new store, check an existing one, or bring a version 1 store up to date.

    Args:
        conn: a writable connection (:func:`~sinks.activity.schema.connect`).
        folder: the store's folder (where version 1 kept its picture files).

    Raises:
        StoreVersionError: the file is of a newer layout than :data:`SCHEMA_VERSION`.
    """
    version = stored_version(conn)
    if version is not None and version > SCHEMA_VERSION:
        raise StoreVersionError(
            f"The activity store {folder} has layout version {version}, newer than this"
            f" Lookout knows ({SCHEMA_VERSION}): run the Lookout that wrote it, or set"
            " another [activity] path."
        )
    create(conn)
    if version is not None and version < SCHEMA_VERSION:
        log.info(
            "activity: moving the pictures of %s (layout %d) into its database", folder, version
        )
        _pictures_into_database(conn, folder)
        for name in V1_FOLDERS:  # every picture they held is in the database now
            shutil.rmtree(folder / name, ignore_errors=True)
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION),))
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def ensure_current(db_path: Path) -> None:
    """Make the store at ``db_path`` readable by this Lookout's queries, before it runs.

    Reads its version without writing; only a version 1 store is opened for
    writing and upgraded (what ``python -m pipeline run`` does on start).

    Raises:
        StoreVersionError: as :func:`upgrade`.
        sqlite3.Error: the file is not a database, or an older one cannot be written.
    """
    reader = connect(db_path, readonly=True)
    try:
        version = stored_version(reader)
    finally:
        reader.close()
    if version == SCHEMA_VERSION:
        return
    conn = connect(db_path)
    try:
        upgrade(conn, db_path.parent)
    finally:
        conn.close()


def _pictures_into_database(conn: sqlite3.Connection, folder: Path) -> None:
    """Move every picture file an entry names into ``pictures``, ``CHUNK`` entries a transaction."""
    marked = (THUMBNAIL, WHOLE)
    after = 0
    while True:  # bounded: ids only grow, each pass takes the next CHUNK of them
        rows = conn.execute(
            "SELECT id, kind, picture FROM events WHERE id > ? AND picture IS NOT NULL"
            " AND picture NOT IN (?, ?) ORDER BY id LIMIT ?",
            (after, *marked, CHUNK),
        ).fetchall()
        if not rows:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            for entry_id, kind, relative in rows:
                _move_one(conn, folder, int(entry_id), str(kind), str(relative))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        after = int(rows[-1][0])


def _move_one(
    conn: sqlite3.Connection, folder: Path, entry_id: int, kind: str, relative: str
) -> None:
    data = _read_v1_picture(folder, relative)
    if data is None:
        conn.execute(
            "UPDATE events SET picture = NULL, picture_bytes = 0 WHERE id = ?", (entry_id,)
        )
        return
    conn.execute("INSERT OR REPLACE INTO pictures (id, jpeg) VALUES (?, ?)", (entry_id, data))
    conn.execute(
        "UPDATE events SET picture = ?, picture_bytes = ? WHERE id = ?",
        (WHOLE if kind == "alert" else THUMBNAIL, len(data), entry_id),
    )


def _read_v1_picture(folder: Path, relative: str) -> bytes | None:
    """The bytes of a version 1 picture file, if it is there and inside its folder."""
    parts = Path(relative).parts
    if len(parts) != 3 or parts[0] not in V1_FOLDERS or ".." in parts:
        return None
    try:
        with open(os.path.join(folder, relative), "rb") as f:
            return f.read()
    except OSError:
        return None
