"""The store survives kill -9, and stays within its size limit over an hour of looks."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

from reactivex.disposable import Disposable
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

from operators.watch import run_watch
from operators.watch_spec import WatchSpec
from pipeline.app.graph import Graph
from pipeline.app.watches import LookGate, RunningWatch, Watches, WatchStats
from pipeline.core.config import ActivityConfig, WatchConfig
from pipeline.core.events import LookRecord
from sinks.activity.query import Filter, entries
from sinks.activity.sink import ActivitySink
from sinks.activity.store import ActivityStore
from sinks.registry import SinkHub
from tests.support.fakes import ScriptedBackend, StaticFrames, rgb_frame

ROOT = Path(__file__).resolve().parents[2]


def test_committed_entries_survive_kill_9(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-m", "tests.activity.writer_child", str(folder)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        flushed = 0
        for _ in range(5):  # a few batches, then kill in the middle of writing
            line = proc.stdout.readline()
            assert line.startswith("FLUSHED "), line
            flushed = int(line.split()[1])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    db = folder / "activity.sqlite3"
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.execute("INSERT INTO events_fts (events_fts) VALUES ('integrity-check')")  # raises if bad
    count = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    pictured = conn.execute("SELECT count(*) FROM events e JOIN pictures p USING (id)")
    assert pictured.fetchone()[0] == count  # every look had one: none lost with its entry kept
    conn.close()
    assert count >= flushed
    assert entries(db, Filter(text=f"walker {flushed - 1}"))  # found by search
    # and it opens again for writing
    store = ActivityStore(folder, ActivityConfig(), clock=lambda: 1e6)
    sink = ActivitySink(store)
    sink.open()
    sink.close()


class _Camera(StaticFrames):
    def __init__(self) -> None:
        super().__init__(rgb_frame(camera="front"), name="front")


def test_an_hour_of_looks_through_the_runtime_path_stays_within_the_size_limit(
    tmp_path: Path,
) -> None:
    """3,600 looks on virtual time, routed by the runtime (Watches) to the hub and the store."""
    s = TestScheduler()
    limit_mb = 1.0
    store = ActivityStore(tmp_path / "data", ActivityConfig(max_size_mb=limit_mb),
                          clock=lambda: s.clock)  # fmt: skip
    hub = SinkHub({})
    hub.attach(ActivitySink(store))
    hub.open()
    config = WatchConfig(name="yard", camera="front", condition="someone is in the yard")
    watches = Watches(cast(Graph, None), hub, lambda: cast(Any, None))
    camera = _Camera()
    running = RunningWatch(config, "job1", Subject(), Disposable(), LookGate(cast(Any, camera)))
    watches.stats["yard"] = WatchStats()
    answers = [f'{{"condition_met": false, "next_run_in": 1, "reasoning": "look {i} empty yard"}}'
               for i in range(3600)]  # fmt: skip
    spec = WatchSpec(name="yard", camera="front", condition="someone is in the yard")
    events = run_watch(spec, frames=camera, backend=ScriptedBackend(answers), scheduler=s,
                       look_scheduler=s)  # fmt: skip
    sizes: list[int] = []
    looks = [0]

    def route(event: Any) -> None:
        watches._route(running, event)
        if isinstance(event, LookRecord):
            looks[0] += 1
            if looks[0] % 200 == 0:
                assert store.flush(30)
                sizes.append(store.size_bytes())

    events.subscribe(route)
    s.advance_to(3600.5)
    assert looks[0] >= 3600
    assert store.flush(30)
    sizes.append(store.size_bytes())
    on_disk = sum(p.stat().st_size for p in (tmp_path / "data").rglob("*") if p.is_file())
    assert max(sizes) <= limit_mb * 1024 * 1024, sizes
    assert on_disk <= limit_mb * 1024 * 1024
    assert store.pruned > 0  # the limit was reached and kept
    newest = entries(store.db_path, Filter(kinds=["look"], limit=1))[0]
    assert newest["text"] == f"look {looks[0] - 1} empty yard" and newest["picture"]
    assert watches.stats["yard"].looks["not_met"] == looks[0]
    hub.close()
