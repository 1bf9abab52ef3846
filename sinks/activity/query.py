"""Reading the activity store: the timeline, full-text search, pictures, an export.

Each call opens its own read-only connection (WAL: readers never block the
writer), so any thread may call these.

Example:
    >>> fts_query('the "gate" pack')
    '"the"* "gate"* "pack"*'
    >>> db = Path("lookout-data/activity.sqlite3")
    >>> rows = entries(db, Filter(text="gate", camera="front"))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from pipeline.core.events import iso_time
from sinks.activity.schema import COLUMNS, connect

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_LIMIT = 1000
"""The most rows one query returns."""


def fts_query(text: str) -> str:
    """Turn what a person typed into a safe FTS5 query: every word, as a prefix, all required.

    Operators and punctuation are not passed through, so no input is a syntax error.
    """
    return " ".join(f'"{w}"*' for w in _WORD.findall(text))


@dataclass(frozen=True, slots=True)
class Filter:
    """What to read.

    Attributes:
        text: words that must all occur in the reasoning/caption/message (prefixes).
        camera: only this camera.
        watch: only this watch.
        kinds: only these kinds (look, alert, state, camera, caption).
        since, until: epoch seconds, inclusive.
        before_id: only entries older than this id (paging).
        limit: at most this many (newest first).
    """

    text: str = ""
    camera: str | None = None
    watch: str | None = None
    kinds: Sequence[str] = ()
    since: float | None = None
    until: float | None = None
    before_id: int | None = None
    limit: int = 100


@contextlib.contextmanager
def reading(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the store, closed afterwards."""
    conn = connect(db_path, readonly=True)
    try:
        yield conn
    finally:
        conn.close()


def _where(f: Filter) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    for column, value in (("e.camera", f.camera), ("e.watch", f.watch)):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    if f.kinds:
        clauses.append(f"e.kind IN ({', '.join('?' for _ in f.kinds)})")
        args.extend(f.kinds)
    if f.since is not None:
        clauses.append("e.time >= ?")
        args.append(f.since)
    if f.until is not None:
        clauses.append("e.time <= ?")
        args.append(f.until)
    if f.before_id is not None:
        clauses.append("e.id < ?")
        args.append(f.before_id)
    return clauses, args


def _select(f: Filter, *, by_id: bool = False) -> tuple[str, list[Any]] | None:
    """The SQL and parameters of ``f`` (without its limit); ``None``: matches nothing."""
    clauses, args = _where(f)
    cols = ", ".join(f"e.{c}" for c in COLUMNS)
    if f.text:
        match = fts_query(f.text)
        if not match:
            return None
        where = " AND ".join(["events_fts MATCH ?", *clauses])
        sql = (
            f"SELECT {cols} FROM events_fts JOIN events e ON e.id = events_fts.rowid"
            f" WHERE {where} ORDER BY events_fts.rowid DESC"
        )
        return sql, [match, *args]
    where = " AND ".join(clauses) or "1"
    order = "e.id DESC" if by_id else "e.time DESC, e.id DESC"
    return f"SELECT {cols} FROM events e WHERE {where} ORDER BY {order}", args


def entries(db_path: Path, f: Filter) -> list[dict[str, Any]]:
    """Entries matching ``f``, newest first, as JSON-able dicts (see :func:`row_dict`).

    With ``f.text``, the full-text index finds them (newest first by id); a
    text without any word matches nothing.
    """
    query = _select(f)
    if query is None:
        return []
    sql, params = query
    with reading(db_path) as conn:
        rows = conn.execute(sql + " LIMIT ?", [*params, max(1, min(f.limit, MAX_LIMIT))])
        return [row_dict(r) for r in rows]


def row_dict(row: Sequence[Any]) -> dict[str, Any]:
    """One ``events`` row as a dict, with ``iso_time`` and ``data`` parsed."""
    d = dict(zip(COLUMNS, row, strict=True))
    d["iso_time"] = iso_time(d["time"])
    d["data"] = orjson.loads(d["data"]) if d["data"] else {}
    return d


def picture(db_path: Path, entry_id: int) -> bytes | None:
    """The JPEG of entry ``entry_id``, if it still keeps one."""
    with reading(db_path) as conn:
        row = conn.execute("SELECT jpeg FROM pictures WHERE id = ?", (entry_id,)).fetchone()
    return None if row is None else bytes(row[0])


def latest_pictures(db_path: Path) -> dict[str, dict[str, Any]]:
    """Per camera, its newest entry that has a picture (look, caption or alert)."""
    cols = ", ".join(f"e.{c}" for c in COLUMNS)
    sql = (
        f"SELECT {cols} FROM events e JOIN (SELECT camera, max(id) AS id FROM events"
        " WHERE picture IS NOT NULL GROUP BY camera) m ON e.id = m.id"
    )
    with reading(db_path) as conn:
        return {r["camera"]: r for r in (row_dict(x) for x in conn.execute(sql))}


def export(db_path: Path, f: Filter, out: Path) -> int:
    """Write every entry of ``f`` to ``out/activity.json`` and their pictures to ``out/pictures/``.

    ``f.limit`` is ignored: the whole range is exported, oldest first. Each
    entry's ``picture`` becomes the path of its copy, relative to ``out``
    (``None`` when it had none left). Returns how many entries were written.
    """
    query = _select(f, by_id=True)
    out.mkdir(parents=True, exist_ok=True)
    with reading(db_path) as conn:
        rows = [row_dict(r) for r in conn.execute(query[0], query[1])] if query else []
        for row in rows:
            jpeg = None
            if row["picture"]:
                found = conn.execute("SELECT jpeg FROM pictures WHERE id = ?", (row["id"],))
                jpeg = found.fetchone()
            row["picture"] = None
            if jpeg is not None:
                name = f"pictures/{row['id']}-{row['kind']}.jpg"
                (out / "pictures").mkdir(exist_ok=True)
                (out / name).write_bytes(jpeg[0])
                row["picture"] = name
    rows.reverse()  # oldest first, like a log
    (out / "activity.json").write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
    return len(rows)
