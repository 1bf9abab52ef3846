"""A store of layout 1 (pictures as files) opens with its pictures; one of a newer layout is refused."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.core.config import ActivityConfig
from sinks.activity.migrate import StoreVersionError, ensure_current, stored_version
from sinks.activity.query import Filter, entries, picture
from sinks.activity.schema import SCHEMA_VERSION, THUMBNAIL, WHOLE, create
from sinks.activity.sink import ActivitySink
from sinks.activity.store import DB_NAME, ActivityStore
from tests.support.activity_records import alert, look, noisy_jpeg

ROOT = Path(__file__).resolve().parents[2]


def _version_1_store(folder: Path) -> dict[str, tuple[int, bytes]]:
    """A store as layout 1 left it: each picture a file that ``events.picture`` names.

    Written by today's store, then taken back to layout 1 (pictures out to files, the
    ``pictures`` table, its trigger and index dropped, version 1). Returns, by the
    entry's text, its id and picture; the bicycle's file is gone (deleted by hand).
    """
    store = ActivityStore(folder, ActivityConfig(), clock=lambda: 2000.0)
    sink = ActivitySink(store)
    sink.open()
    sink.send_look(look(0, "a heron on the path", jpeg=noisy_jpeg(64, 48, 0)))
    sink.send_look(look(1, "a bicycle by the gate", jpeg=noisy_jpeg(64, 48, 1)))
    sink.send_alert(alert(jpeg=noisy_jpeg(64, 48, 2)))
    sink.send_look(look(3, "nothing, and no picture"))
    assert store.flush()
    sink.close()
    conn = sqlite3.connect(folder / DB_NAME, isolation_level=None)
    kept = {}
    rows = "SELECT e.id, e.kind, e.text, p.jpeg FROM events e JOIN pictures p USING (id)"
    for entry_id, kind, text, jpeg in conn.execute(rows).fetchall():
        relative = f"{'alerts' if kind == 'alert' else 'pictures'}/1970010100/{entry_id}.jpg"
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(jpeg)
        conn.execute("UPDATE events SET picture = ? WHERE id = ?", (relative, entry_id))
        kept[text] = (entry_id, jpeg)
    conn.executescript(
        "DROP TRIGGER events_ad_picture; DROP INDEX events_thumbnail_time; DROP TABLE pictures;"
        " UPDATE meta SET value = '1' WHERE key = 'schema';"
    )
    conn.close()
    (folder / f"pictures/1970010100/{kept['a bicycle by the gate'][0]}.jpg").unlink()
    return kept


def test_a_version_1_store_opens_with_its_pictures_in_the_database(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    kept = _version_1_store(folder)
    now = [1000.0]  # no thumbnail is past its keep time yet
    store = ActivityStore(folder, ActivityConfig(thumbnail_keep_s=60), clock=lambda: now[0])
    sink = ActivitySink(store)
    sink.open()
    db = store.db_path
    conn = sqlite3.connect(db)
    assert stored_version(conn) == SCHEMA_VERSION == 2
    conn.close()
    assert not (folder / "pictures").exists() and not (folder / "alerts").exists()
    rows = {r["text"]: r for r in entries(db, Filter())}
    heron, bicycle = rows["a heron on the path"], rows["a bicycle by the gate"]
    alert_row = rows["The gate stands wide open."]
    assert picture(db, heron["id"]) == kept["a heron on the path"][1]
    assert picture(db, alert_row["id"]) == kept["The gate stands wide open."][1]
    assert (heron["picture"], alert_row["picture"]) == (THUMBNAIL, WHOLE)
    assert bicycle["picture"] is None and picture(db, bicycle["id"]) is None  # its file was gone
    # it goes on as a store of today: new looks, and retention covers the moved pictures
    sink.send_look(look(9, "a fox", jpeg=noisy_jpeg(64, 48, 9), t=1000.0 + 7200))
    assert store.flush() and entries(db, Filter(text="fox"))
    now[0] = 1000.0 + 7200
    assert store.prune()
    assert picture(db, heron["id"]) is None and picture(db, alert_row["id"]) is not None
    sink.close()


def test_an_upgrade_cut_short_goes_on_where_it_stopped(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    kept = _version_1_store(folder)
    heron_id, heron = kept["a heron on the path"]
    conn = sqlite3.connect(folder / DB_NAME, isolation_level=None)
    create(conn)  # what a first run committed before it was killed: the heron moved in
    conn.execute("INSERT INTO pictures (id, jpeg) VALUES (?, ?)", (heron_id, heron))
    conn.execute("UPDATE events SET picture = 'thumbnail' WHERE id = ?", (heron_id,))
    conn.close()
    (folder / f"pictures/1970010100/{heron_id}.jpg").unlink()
    store = ActivityStore(folder, ActivityConfig(), clock=lambda: 1000.0)
    store.open()
    store.close()
    for text in ("a heron on the path", "The gate stands wide open."):
        assert picture(store.db_path, kept[text][0]) == kept[text][1], text
    assert not (folder / "pictures").exists()


def test_the_cli_reads_a_version_1_store_and_exports_its_pictures(tmp_path: Path) -> None:
    kept = _version_1_store(tmp_path / "lookout-data")  # next to the config, by default
    config = tmp_path / "pipeline.toml"
    config.write_text('[cameras.front]\nurl = "front.mp4"\n')
    out = tmp_path / "share"
    done = subprocess.run([sys.executable, "-m", "pipeline", "activity", "-c", str(config),
                           "export", "--since", "1970-01-01T00:00", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = {d["text"]: d for d in json.loads((out / "activity.json").read_text())}
    for text in ("a heron on the path", "The gate stands wide open."):
        assert (out / data[text]["picture"]).read_bytes() == kept[text][1]
    assert data["a bicycle by the gate"]["picture"] is None


def test_a_store_of_a_newer_layout_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    folder = tmp_path / "lookout-data"
    store = ActivityStore(folder, ActivityConfig())
    store.open()
    store.close()
    conn = sqlite3.connect(folder / DB_NAME)
    with conn:
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema'")
    conn.close()
    with pytest.raises(StoreVersionError, match="layout version 3, newer than this Lookout"):
        ActivityStore(folder, ActivityConfig()).open()
    with pytest.raises(StoreVersionError, match=r"\[activity\] path"):
        ensure_current(folder / DB_NAME)
    config = tmp_path / "pipeline.toml"
    config.write_text('[cameras.front]\nurl = "front.mp4"\n')
    done = subprocess.run([sys.executable, "-m", "pipeline", "activity", "-c", str(config)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "layout version 3" in done.stderr
    conn = sqlite3.connect(folder / DB_NAME)
    assert stored_version(conn) == 3
    conn.close()
