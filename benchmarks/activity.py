"""Activity store: looks written per second through the runtime's per-look path, and search time.

Run: .venv/bin/python -m benchmarks.activity [--quick]

- Looks/s: LookRecords handed to ``SinkHub.send_look`` (what ``Watches._route`` calls for
  every look) with the activity sink attached, until all are committed (``flush``);
  without pictures, and with a 480p JPEG each (a thumbnail made and written per look).
  Reference: a bare ``executemany`` of the same rows into a plain SQLite table (WAL,
  one transaction), in the same run.
- Search: the store's full-text search (``sinks.activity.query.entries``, newest 50) over
  1 million entries (100,000 with --quick), for a rare and a common word; median of 20.
  Reference: the same MATCH on a bare FTS5 table of the same texts.
- Page delay: milliseconds from a look being handed to the hub until the read behind
  ``/api/state`` (what the page polls every ``[web] poll_s``) returns it, median of 20;
  the page shows it at its next poll (measured, not asserted anywhere).

The last printed line is one JSON object.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

from pipeline.core.config import ActivityConfig
from pipeline.core.events import LookRecord
from pipeline.core.verdict import Verdict
from sinks.activity.query import Filter, entries
from sinks.activity.schema import connect, create
from sinks.activity.sink import ActivitySink
from sinks.activity.store import ActivityStore
from sinks.registry import SinkHub

WORDS = [
    "person", "car", "bicycle", "dog", "cat", "parcel", "gate",
    "door", "path", "tree", "shadow", "light", "rain",
]  # fmt: skip


def reasoning(i: int) -> str:
    a, b = WORDS[i % len(WORDS)], WORDS[(i * 7) % len(WORDS)]
    rare = " heron" if i % 1000 == 0 else ""
    return f"Look {i}: a {a} near the {b}, nothing else moves{rare}."


def jpeg_480p() -> bytes:
    """A 480p JPEG of the demo clip's first frame (a real picture, not noise)."""
    import av

    from operators.encode import encode_jpeg
    from pipeline.core.frame import Frame

    with av.open(str(Path(__file__).resolve().parents[1] / "demo" / "walkway.mp4")) as box:
        video = next(box.decode(video=0))
    rgb = video.to_ndarray(format="rgb24")
    frame = Frame(camera="front", seq=0, wall_time=0.0, stream_time=None,
                  width=rgb.shape[1], height=rgb.shape[0], rgb=rgb)  # fmt: skip
    return encode_jpeg(frame, 480, 85)


def looks(n: int, jpeg: bytes | None) -> list[LookRecord]:
    now = time.time()
    return [
        LookRecord(
            watch="porch",
            job_id="j1",
            time=now + i * 0.001,
            trigger="timer",
            verdict=Verdict.answered(False, 5, reasoning(i)).with_latency(0.2),
            frame={"camera": "front", "seq": i},
            jpeg=jpeg,
        )
        for i in range(n)
    ]


def per_look_path(folder: Path, records: list[LookRecord]) -> float:
    store = ActivityStore(folder, ActivityConfig(queue_size=len(records) + 100))
    hub = SinkHub({})
    hub.attach(ActivitySink(store))
    hub.open()
    t0 = time.perf_counter()
    for r in records:
        hub.send_look(r, None)
    assert store.flush(600)
    elapsed = time.perf_counter() - t0
    assert store.dropped == 0 and store.written >= len(records)
    hub.close()
    return len(records) / elapsed


def bare_insert(folder: Path, records: list[LookRecord]) -> float:
    conn = sqlite3.connect(folder / "bare.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE looks (time REAL, watch TEXT, trigger TEXT, kind TEXT, text TEXT)")
    t0 = time.perf_counter()
    rows = [(r.time, r.watch, r.trigger, r.verdict.kind.value, r.verdict.reasoning)
            for r in records]  # fmt: skip
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO looks VALUES (?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return len(records) / elapsed


def fill_store(db: Path, n: int) -> None:
    conn = connect(db)
    create(conn)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO events (id, time, kind, camera, watch, trigger, answer, text)"
        " VALUES (?, ?, 'look', 'front', 'porch', 'timer', 'not_met', ?)",
        ((i + 1, 1e9 + i, reasoning(i)) for i in range(n)),
    )
    conn.execute("COMMIT")
    conn.close()


def fill_bare_fts(db: Path, n: int) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE VIRTUAL TABLE bare USING fts5(text)")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO bare (rowid, text) VALUES (?, ?)",
                     ((i + 1, reasoning(i)) for i in range(n)))  # fmt: skip
    conn.execute("COMMIT")
    conn.close()


def median_ms(fn: object, rounds: int = 20) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def search_times(folder: Path, n: int) -> dict[str, float]:
    db = folder / "search" / "activity.sqlite3"
    db.parent.mkdir()
    fill_store(db, n)
    bare = folder / "bare-fts.sqlite3"
    fill_bare_fts(bare, n)
    bconn = sqlite3.connect(bare)

    def bare_query(word: str) -> None:
        sql = "SELECT rowid, text FROM bare WHERE bare MATCH ? ORDER BY rowid DESC LIMIT 50"
        bconn.execute(sql, (f'"{word}"*',)).fetchall()

    out = {}
    for label, word in (("rare", "heron"), ("common", "person")):
        assert entries(db, Filter(text=word, limit=50))
        out[f"search_{label}_ms"] = round(
            median_ms(lambda w=word: entries(db, Filter(text=w, limit=50))), 2
        )
        out[f"bare_fts_{label}_ms"] = round(median_ms(lambda w=word: bare_query(w)), 2)
    bconn.close()
    return out


def page_delay_ms(folder: Path, rounds: int = 20) -> float:
    store = ActivityStore(folder, ActivityConfig())
    hub = SinkHub({})
    hub.attach(ActivitySink(store))
    hub.open()
    delays = []
    for i, record in enumerate(looks(rounds, None)):
        t0 = time.perf_counter()
        hub.send_look(record, None)
        while time.perf_counter() - t0 < 10:
            newest = entries(store.db_path, Filter(limit=1))
            if newest and newest[0]["text"] == reasoning(i):
                break
            time.sleep(0.0005)
        delays.append((time.perf_counter() - t0) * 1000)
    hub.close()
    return statistics.median(delays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer looks and rows")
    args = parser.parse_args()
    n_looks = 5_000 if args.quick else 20_000
    n_pictures = 500 if args.quick else 2_000
    n_rows = 100_000 if args.quick else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        records = looks(n_looks, None)
        path_rate = per_look_path(folder / "path", records)
        bare_rate = bare_insert(folder, records)
        pic_rate = per_look_path(folder / "pictures", looks(n_pictures, jpeg_480p()))
        search = search_times(folder, n_rows)
        delay = page_delay_ms(folder / "delay")
    result = {
        "benchmark": "activity",
        "quick": args.quick,
        "looks": n_looks,
        "looks_per_s": round(path_rate),
        "bare_insert_per_s": round(bare_rate),
        "looks_vs_bare_insert": round(path_rate / bare_rate, 3),
        "looks_with_thumbnail_per_s": round(pic_rate),
        "rows_searched": n_rows,
        **search,
        "search_vs_bare_fts": round(
            search["search_common_ms"] / max(search["bare_fts_common_ms"], 1e-6), 2
        ),
        "page_delay_ms": round(delay, 1),
        "targets": {"looks_per_s": 2000, "search_ms": 50},
    }
    print(
        f"per-look path: {result['looks_per_s']} looks/s "
        f"(bare insert {result['bare_insert_per_s']}/s); "
        f"with a 480p JPEG (thumbnail): {result['looks_with_thumbnail_per_s']} looks/s"
    )
    print(
        f"search over {n_rows} rows: rare {search['search_rare_ms']} ms, common "
        f"{search['search_common_ms']} ms (bare FTS5 {search['bare_fts_rare_ms']} / "
        f"{search['bare_fts_common_ms']} ms)"
    )
    print(orjson.dumps(result).decode())
    sys.stdout.flush()


if __name__ == "__main__":
    main()
