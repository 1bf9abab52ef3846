"""The activity store: entries in, timeline and search out, pictures, retention."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from pipeline.core.config import ActivityConfig
from pipeline.core.events import CameraState, Caption, WatchStatus
from sinks.activity.query import Filter, entries, export, latest_pictures, picture
from sinks.activity.sink import ActivitySink
from sinks.activity.store import ActivityStore
from sinks.registry import SinkHub
from tests.support.activity_records import alert, look, noisy_jpeg, state


def _hub(tmp_path: Path, **config: object) -> tuple[SinkHub, ActivitySink]:
    store = ActivityStore(tmp_path / "data", ActivityConfig(**config), clock=lambda: 2000.0)
    sink = ActivitySink(store)
    hub = SinkHub({})
    hub.attach(sink)
    hub.open()
    return hub, sink


def test_every_kind_of_entry_is_kept_and_found(tmp_path: Path) -> None:
    hub, sink = _hub(tmp_path)
    jpeg = noisy_jpeg()
    hub.send_state(state(WatchStatus.QUEUED))
    hub.send_state(state(WatchStatus.RUNNING))
    hub.send_state(state(WatchStatus.RUNNING))  # no change: no row
    hub.send_camera_state(CameraState(camera="front", online=True, since=999.0))
    hub.send_look(look(1, "A red bicycle leans on the gate.", jpeg=jpeg), ["other"])
    hub.send_alert(alert(jpeg=jpeg), ["other"])
    hub.send_caption(Caption(camera="front", time=1006.0, text="A quiet street", jpeg=jpeg))
    hub.send_camera_state(CameraState(camera="front", online=False, last_error="refused",
                                      since=1007.0))  # fmt: skip
    assert sink.store.flush()
    db = sink.db_path
    rows = entries(db, Filter())
    # states take the clock's time (2000) when they change; the rest their own, newest first
    assert [r["kind"] for r in rows] == ["state", "state", "camera", "caption", "alert", "look",
                                         "camera"]  # fmt: skip
    assert [r["answer"] for r in rows if r["kind"] == "state"] == ["running", "queued"]
    lk = next(r for r in rows if r["kind"] == "look")
    assert (lk["camera"], lk["watch"], lk["trigger"], lk["answer"]) == ("front", "gate", "timer",
                                                                        "not_met")  # fmt: skip
    assert lk["next_look"] == 5.0 and lk["latency"] == 0.25
    hits = entries(db, Filter(text="bicyc"))  # a prefix of a word of the reasoning
    assert [h["id"] for h in hits] == [lk["id"]]
    assert (
        entries(db, Filter(text="gate open", kinds=["alert"]))[0]["message"] == "The gate is open"
    )
    assert entries(db, Filter(text='"; DROP TABLE events; --')) == []  # no syntax error
    # pictures: a thumbnail for the look, the whole JPEG for the alert
    thumb = picture(db, lk["id"])
    al = next(r for r in rows if r["kind"] == "alert")
    whole = picture(db, al["id"])
    assert thumb is not None and whole is not None
    assert whole == jpeg and len(thumb) < len(jpeg)
    assert (lk["picture"], lk["picture_bytes"]) == ("thumbnail", len(thumb))
    assert (al["picture"], al["picture_bytes"]) == ("whole", len(jpeg))
    assert picture(db, next(r["id"] for r in rows if r["kind"] == "camera")) is None
    assert set(latest_pictures(db)) == {"front"}
    hub.close()


def test_export_writes_json_and_pictures(tmp_path: Path) -> None:
    hub, sink = _hub(tmp_path)
    for i in range(5):
        hub.send_look(look(i, jpeg=noisy_jpeg(64, 48, i)))
    assert sink.store.flush()
    n = export(sink.db_path, Filter(since=1001.0, until=1003.0), tmp_path / "out")
    assert n == 3
    import orjson

    data = orjson.loads((tmp_path / "out" / "activity.json").read_bytes())
    assert [d["time"] for d in data] == [1001.0, 1002.0, 1003.0]
    for d in data:
        assert (tmp_path / "out" / d["picture"]).read_bytes() == picture(sink.db_path, d["id"])
    hub.close()


def test_thumbnails_go_after_their_keep_time_alert_pictures_stay(tmp_path: Path) -> None:
    now = [1000.0]
    store = ActivityStore(tmp_path / "d", ActivityConfig(thumbnail_keep_s=60), clock=lambda: now[0])
    sink = ActivitySink(store)
    sink.open()
    jpeg = noisy_jpeg(64, 48)
    sink.send_look(look(0, t=1000.0, jpeg=jpeg))
    sink.send_alert(alert(t=1000.0, jpeg=jpeg))
    assert store.flush()
    now[0] = 1000.0 + 7200
    assert store.prune()
    rows = entries(store.db_path, Filter())
    assert {r["kind"]: bool(r["picture"]) for r in rows} == {"look": False, "alert": True}
    assert {r["kind"]: picture(store.db_path, r["id"]) for r in rows} == {"look": None,
                                                                           "alert": jpeg}  # fmt: skip
    sink.close()


def test_pruned_entries_take_their_pictures_with_them(tmp_path: Path) -> None:
    now = [0.0]
    store = ActivityStore(tmp_path / "d", ActivityConfig(max_age_days=1), clock=lambda: now[0])
    sink = ActivitySink(store)
    sink.open()
    for i in range(3):
        sink.send_look(look(i, t=i * 86400.0, jpeg=noisy_jpeg(64, 48, i)))
    sink.send_alert(alert(t=0.0, jpeg=noisy_jpeg(64, 48)))
    assert store.flush()
    now[0] = 2.5 * 86400
    assert store.prune()
    conn = sqlite3.connect(store.db_path)
    kept = conn.execute("SELECT e.time FROM pictures p JOIN events e USING (id)").fetchall()
    orphans = conn.execute("SELECT count(*) FROM pictures WHERE id NOT IN (SELECT id FROM events)")
    assert kept == [(2 * 86400.0,)] and orphans.fetchone()[0] == 0
    conn.close()
    sink.close()


def test_entries_that_come_faster_than_writes_share_transactions(tmp_path: Path) -> None:
    store = ActivityStore(tmp_path / "d", ActivityConfig())
    sink = ActivitySink(store)
    sink.open()
    for i in range(200):  # a look every millisecond or so: alone, each would be a commit
        sink.send_look(look(i))
        time.sleep(0.001)
    assert store.flush()
    assert store.written == 200 and store.writes < 100, store.writes
    sink.close()


def test_entries_older_than_max_age_are_deleted(tmp_path: Path) -> None:
    now = [0.0]
    store = ActivityStore(tmp_path / "d", ActivityConfig(max_age_days=1), clock=lambda: now[0])
    sink = ActivitySink(store)
    sink.open()
    for i in range(3):
        sink.send_look(look(i, t=i * 86400.0))
    now[0] = 2.5 * 86400
    assert store.prune()
    assert [r["time"] for r in entries(store.db_path, Filter())] == [2 * 86400.0]
    sink.close()


def test_a_full_queue_drops_and_counts(tmp_path: Path) -> None:
    store = ActivityStore(tmp_path / "d", ActivityConfig(queue_size=100))
    # not opened: nothing takes from the queue
    kept = [store.put(e) for e in [*(_entry(i) for i in range(101))]]
    assert kept.count(False) == 1 and store.dropped == 1


def _entry(i: int):  # type: ignore[no-untyped-def]
    from sinks.activity.entries import look_entry

    return look_entry(look(i), "front")


def test_the_file_is_wal(tmp_path: Path) -> None:
    hub, sink = _hub(tmp_path)
    hub.send_look(look(0))
    assert sink.store.flush()
    conn = sqlite3.connect(sink.db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    hub.close()
