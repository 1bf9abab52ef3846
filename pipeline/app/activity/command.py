"""``python -m pipeline activity``: read the activity store from the command line.

::

    python -m pipeline activity                      # the newest entries
    python -m pipeline activity search gate open     # entries whose text has both words
    python -m pipeline activity --camera front --since 2h --json
    python -m pipeline activity export --since 2026-11-23T08:00 --until 2h --out share/

Times for ``--since``/``--until``: an age (``90s``, ``15m``, ``2h``, ``3d``: that
long ago) or an ISO 8601 time (UTC unless it names a zone).

Example:
    >>> parse_when("2h", now=10_000.0)
    2800.0
    >>> parse_when("1970-01-01T00:01:00", now=0.0)
    60.0
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from pipeline.app.activity.setup import store_db
from pipeline.core.config import LookoutConfig
from sinks.activity.migrate import StoreVersionError, ensure_current
from sinks.activity.query import Filter, entries, export

EXIT_OK = 0
EXIT_USAGE = 2
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_when(text: str, now: float | None = None) -> float:
    """Epoch seconds of an age (``2h``: two hours ago) or an ISO 8601 time.

    Raises:
        ValueError: neither.
    """
    now = time.time() if now is None else now
    value = text.strip()
    if value and value[-1] in _UNITS:
        try:
            return now - float(value[:-1]) * _UNITS[value[-1]]
        except ValueError:
            pass
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither an age (90s, 15m, 2h, 3d) nor an ISO time (2026-11-23T08:00)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def add_activity_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    fmt: type[argparse.HelpFormatter],
) -> None:
    """Add the ``activity`` command to the CLI's subparsers."""
    p = sub.add_parser(
        "activity",
        parents=[common],
        formatter_class=fmt,
        help="the activity timeline: list, search, export (JSON plus pictures)",
    )
    p.add_argument("action", nargs="?", choices=["list", "search", "export"], default="list")
    p.add_argument("text", nargs="*", help="search: words that must all occur")
    p.add_argument("--camera", default=None, help="only this camera")
    p.add_argument("--watch", default=None, help="only this watch")
    p.add_argument("--kind", action="append", default=None,
                   choices=["look", "alert", "state", "camera", "caption"],
                   help="only this kind (repeatable)")  # fmt: skip
    p.add_argument("--since", default=None, help="from this time or age (2h, 15m, ISO time)")
    p.add_argument("--until", default=None, help="up to this time or age")
    p.add_argument("--limit", type=int, default=50, help="list/search: at most this many")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--out", type=Path, default=None, help="export: the folder to write")


def _filter(args: argparse.Namespace) -> Filter:
    return Filter(
        text=" ".join(args.text),
        camera=args.camera,
        watch=args.watch,
        kinds=tuple(args.kind or ()),
        since=parse_when(args.since) if args.since else None,
        until=parse_when(args.until) if args.until else None,
        limit=args.limit,
    )


def format_row(row: dict[str, object]) -> str:
    """One entry as a line: time, camera, watch, kind, answer, text."""
    when = datetime.fromtimestamp(float(str(row["time"])), tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    who = "/".join(str(x) for x in (row["camera"], row["watch"]) if x)
    what = " ".join(str(x) for x in (row["kind"], row["trigger"], row["answer"]) if x)
    extra = f" next {float(str(row['next_look'])):.0f}s" if row["next_look"] is not None else ""
    text = " ".join(str(row["message"] or row["text"] or "").split())
    return f"{when}  {who:<24} {what:<22}{extra}  {text}"


def run_activity(cfg: LookoutConfig, args: argparse.Namespace) -> int:
    """Run ``activity``: list, search or export; 2 for a bad time, a store off or unreadable.

    A store of an older layout is brought up to date first (as a start would).
    """
    db = store_db(cfg, Path(args.config))
    if db is None:
        print("the activity store is off ([activity] enabled = false)", file=sys.stderr)
        return EXIT_USAGE
    if not db.exists():
        print(f"no activity store yet at {db} (it starts with `python -m pipeline run`)")
        return EXIT_OK
    try:
        ensure_current(db)
    except (StoreVersionError, sqlite3.Error) as err:
        print(f"activity: {err}", file=sys.stderr)
        return EXIT_USAGE
    try:
        f = _filter(args)
    except ValueError as err:
        print(f"activity: {err}", file=sys.stderr)
        return EXIT_USAGE
    if args.action == "export":
        if args.out is None:
            print("activity export: --out DIR is required", file=sys.stderr)
            return EXIT_USAGE
        count = export(db, f, args.out)
        print(f"{count} entries written to {args.out / 'activity.json'}")
        return EXIT_OK
    if args.action == "search" and not f.text.strip():
        print("activity search: give the words to look for", file=sys.stderr)
        return EXIT_USAGE
    rows = entries(db, f)
    if args.json:
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
    else:
        for row in reversed(rows):  # oldest first, newest at the bottom, like a log
            print(format_row(row))
    return EXIT_OK
