"""Activity store: looks written per second through the runtime's per-look path, and search time.

Run: .venv/bin/python -m benchmarks.activity [--quick]

- Looks/s (the headline ``looks_per_s``): looks handed to ``SinkHub.send_look`` (what
  ``Watches._route`` calls for every look) with the activity sink attached, until all
  are committed (``flush``), each as the runtime makes it: its 480p JPEG, and its
  thumbnail made from the decoded frame (what ``Looker`` does when ``[activity]`` keeps
  thumbnails; timed here, per look) that the store writes (a BLOB in the look's own
  transaction; each look's thumbnail is counted in the file afterwards). The frames are 24 decoder
  frames of the demo clip (768x576), in turn; their 480p JPEGs are made beforehand (the
  look's own cost, with or without a store). Also: looks with the JPEG only, which the
  store shrinks itself (``looks_shrinking_jpeg_per_s``: captions, and every look before
  looks made their thumbnails), and looks without pictures. References in the same run:
  a bare ``executemany`` of the same rows into a plain SQLite table (WAL, one
  transaction), and bare JPEG thumbnails (the same JPEGs shrunk on one thread, Pillow's
  draft decode and an encode, nothing written). Each figure is the median of 3 rounds,
  taken in turn; ``cpu_ms_per_look`` is the process's CPU time per look (what the
  machine's load changes least).
- Search: the store's full-text search (``sinks.activity.query.entries``, newest 50) over
  1 million entries (100,000 with --quick), for a rare and a common word; median of 20.
  Reference: the same MATCH on a bare FTS5 table of the same texts.
- Page delay: milliseconds from a look being handed to the hub until the read behind
  ``/api/state`` (what the page polls every ``[web] poll_s``) returns it, median of 20;
  the page shows it at its next poll (measured, not asserted anywhere). The looks come
  one right after another here, so each waits out the store's ``WRITE_GAP_S``.

The last printed line is one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import orjson
from PIL import Image

from operators.encode import encode_jpeg
from operators.look import THUMBNAIL_QUALITY
from pipeline.core.config import ActivityConfig
from pipeline.core.events import LookRecord
from pipeline.core.frame import Frame
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


def demo_frames(count: int = 24) -> list[Frame]:
    """``count`` decoder frames spread over the demo clip, as the demo camera hands them out."""
    clip = Path(__file__).resolve().parents[1] / "demo" / "walkway.mp4"
    with av.open(str(clip)) as box:
        videos = list(box.decode(video=0))
    step = max(1, len(videos) // count)
    return [
        Frame(
            camera="front",
            seq=seq,
            wall_time=0.0,
            stream_time=None,
            width=video.width,
            height=video.height,
            video=video,
        )
        for seq, video in enumerate(videos[::step][:count])
    ]


def looks(n: int, frames: list[Frame] | None) -> list[LookRecord]:
    """``n`` looks, each with the 480p JPEG of a frame in turn (none without ``frames``)."""
    jpegs = [encode_jpeg(f, 480, 85) for f in frames or []]
    now = time.time()
    return [
        LookRecord(
            watch="porch",
            job_id="j1",
            time=now + i * 0.001,
            trigger="timer",
            verdict=Verdict.answered(False, 5, reasoning(i)).with_latency(0.2),
            frame={"camera": "front", "seq": i},
            jpeg=jpegs[i % len(jpegs)] if jpegs else None,
        )
        for i in range(n)
    ]


def per_look_path(
    folder: Path, records: list[LookRecord], frames: list[Frame] | None = None
) -> tuple[float, float]:
    """Looks per second through the hub into the store, and CPU milliseconds per look.

    With ``frames``, each look first makes its thumbnail from its frame, as ``Looker``
    does (timed).
    """
    config = ActivityConfig(queue_size=len(records) + 100)
    height = config.look_thumbnail_height
    store = ActivityStore(folder, config)
    hub = SinkHub({})
    hub.attach(ActivitySink(store))
    hub.open()
    t0, c0 = time.perf_counter(), time.process_time()
    for i, r in enumerate(records):
        if frames and height:
            small = encode_jpeg(frames[i % len(frames)], height, THUMBNAIL_QUALITY)
            r = dataclasses.replace(r, thumbnail=small)
        hub.send_look(r, None)
    assert store.flush(600)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert store.dropped == 0 and store.written >= len(records)
    if records[0].jpeg is not None:
        with sqlite3.connect(store.db_path) as conn:
            kept = conn.execute("SELECT count(*) FROM pictures").fetchone()[0]
        assert kept == len(records), f"{kept} thumbnails for {len(records)} looks"
    hub.close()
    return len(records) / elapsed, cpu * 1000 / len(records)


def bare_thumbnails(pictures: list[bytes], n: int, height: int = 120) -> float:
    """Thumbnails per second on one thread: draft decode and encode, nothing written."""
    t0 = time.perf_counter()
    for i in range(n):
        with Image.open(io.BytesIO(pictures[i % len(pictures)])) as img:
            size = (round(img.width * height / img.height), height)
            img.draft("RGB", size)
            small = img.convert("RGB").resize(size)
        small.save(io.BytesIO(), format="JPEG", quality=70)
    return n / (time.perf_counter() - t0)


def bare_insert(folder: Path, records: list[LookRecord]) -> float:
    folder.mkdir(parents=True, exist_ok=True)
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


def looks_figures(folder: Path, n_looks: int, n_pictures: int) -> dict[str, float]:
    """The per-look path (with pictures, JPEG only, without) and its references, medians of 3."""
    frames = demo_frames()
    plain, pictured = looks(n_looks, None), looks(n_pictures, frames)
    jpegs = [r.jpeg for r in pictured[: len(frames)] if r.jpeg]
    runs: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        runs.setdefault(key, []).append(value)

    for k in range(3):
        rate, cpu_ms = per_look_path(folder / f"runtime{k}", pictured, frames)
        add("runtime", rate)
        add("runtime_cpu", cpu_ms)
        rate, cpu_ms = per_look_path(folder / f"shrink{k}", pictured)
        add("shrink", rate)
        add("shrink_cpu", cpu_ms)
        add("plain", per_look_path(folder / f"plain{k}", plain)[0])
        add("bare", bare_insert(folder / f"bare{k}", plain))
        add("thumbs", bare_thumbnails(jpegs, n_pictures))
    return {key: statistics.median(values) for key, values in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer looks and rows")
    args = parser.parse_args()
    n_looks = 5_000 if args.quick else 20_000
    n_pictures = 500 if args.quick else 2_000
    n_rows = 100_000 if args.quick else 1_000_000
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fig = looks_figures(folder, n_looks, n_pictures)
        search = search_times(folder, n_rows)
        delay = page_delay_ms(folder / "delay")
    result = {
        "benchmark": "activity",
        "quick": args.quick,
        "looks_per_s": round(fig["runtime"]),
        "looks_with_pictures": n_pictures,
        "looks_vs_bare_insert": round(fig["runtime"] / fig["bare"], 4),
        "cpu_ms_per_look": round(fig["runtime_cpu"], 3),
        "looks_shrinking_jpeg_per_s": round(fig["shrink"]),
        "looks_shrinking_jpeg_vs_bare_thumbnails": round(fig["shrink"] / fig["thumbs"], 2),
        "looks_shrinking_jpeg_cpu_ms_per_look": round(fig["shrink_cpu"], 3),
        "looks_without_pictures_per_s": round(fig["plain"]),
        "looks_without_pictures": n_looks,
        "looks_without_pictures_vs_bare_insert": round(fig["plain"] / fig["bare"], 3),
        "bare_insert_per_s": round(fig["bare"]),
        "bare_thumbnails_per_s": round(fig["thumbs"]),
        "cpus": os.cpu_count(),
        "load_average_at_start": round(load, 2),
        "rows_searched": n_rows,
        **search,
        "search_vs_bare_fts": round(
            search["search_common_ms"] / max(search["bare_fts_common_ms"], 1e-6), 2
        ),
        "page_delay_ms": round(delay, 1),
        "targets": {"looks_per_s": 2000, "search_ms": 50},
    }
    print(
        f"per-look path, each look with its 480p JPEG and its thumbnail made from the frame: "
        f"{result['looks_per_s']} looks/s, {result['cpu_ms_per_look']} ms CPU a look "
        f"({os.cpu_count()} CPUs, load {load:.1f} at start)"
    )
    print(
        f"looks with the JPEG only (the store shrinks it): "
        f"{result['looks_shrinking_jpeg_per_s']} looks/s, "
        f"{result['looks_shrinking_jpeg_cpu_ms_per_look']} ms CPU a look "
        f"(bare JPEG thumbnails on one thread {result['bare_thumbnails_per_s']}/s)"
    )
    print(
        f"per-look path without pictures: {result['looks_without_pictures_per_s']} looks/s "
        f"(bare insert {result['bare_insert_per_s']}/s)"
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
