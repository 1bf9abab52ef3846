"""The store's pictures: the look's own thumbnail kept as it is, else the JPEG shrunk."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pipeline.app.process import App
from pipeline.core.config import ActivityConfig
from sinks.activity.entries import Entry
from sinks.activity.pictures import Kept, kept, thumbnail
from sinks.activity.query import Filter, entries, picture
from sinks.activity.schema import THUMBNAIL, WHOLE
from sinks.activity.sink import ActivitySink
from sinks.activity.store import ActivityStore
from tests.support.activity_records import look
from tests.support.model_server import ScriptedModelServer
from tests.support.waiting import wait_until
from tests.support.web_app import answer

BROKEN = b"\xff\xd8\xff\xe0 not a JPEG after all"


def solid_jpeg(color: tuple[int, int, int], size: tuple[int, int] = (640, 480)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="JPEG", quality=90)
    return out.getvalue()


def color_of(jpeg: bytes) -> tuple[int, ...]:
    with Image.open(io.BytesIO(jpeg)) as img:
        return tuple(img.convert("RGB").resize((1, 1)).getpixel((0, 0)))  # type: ignore[arg-type]


def close_to(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return all(abs(x - y) <= 6 for x, y in zip(a, b, strict=True))


def colors(n: int) -> list[tuple[int, int, int]]:
    return [((i * 37) % 256, (i * 91) % 256, (255 - i * 53) % 256) for i in range(n)]


@pytest.mark.parametrize(
    ("size", "mode", "expected"),
    [
        ((640, 480), "RGB", (160, 120)),  # the DCT's 1/4 scale lands on it
        ((854, 480), "RGB", (214, 120)),
        ((1920, 1080), "RGB", (213, 120)),  # 1/8 scale (240 high), then resized
        ((100, 60), "RGB", (100, 60)),  # small already: kept as it is
        ((640, 480), "L", (160, 120)),  # a grey JPEG gives an RGB thumbnail
    ],
)
def test_thumbnail_size_and_mode(
    size: tuple[int, int], mode: str, expected: tuple[int, int]
) -> None:
    out = io.BytesIO()
    Image.new(mode, size, 128).save(out, format="JPEG")
    with Image.open(io.BytesIO(thumbnail(out.getvalue(), 120))) as small:
        assert (small.size, small.mode, small.format) == (expected, "RGB", "JPEG")


def test_thumbnail_of_a_broken_jpeg_raises() -> None:
    with pytest.raises(OSError):
        thumbnail(BROKEN, 120)


def test_kept_takes_a_given_thumbnail_as_it_is_and_shrinks_only_without_one() -> None:
    small = solid_jpeg((10, 200, 10), (160, 120))
    given = Entry(time=0.0, kind="look", jpeg=BROKEN, small=small)
    assert kept(given, 120) == Kept(THUMBNAIL, small)  # nothing decoded
    made = kept(Entry(time=0.0, kind="caption", jpeg=solid_jpeg((200, 10, 10))), 120)
    assert made is not None and made.role == THUMBNAIL
    with Image.open(io.BytesIO(made.jpeg)) as img:
        assert img.size == (160, 120)
    whole = solid_jpeg((1, 2, 3), (64, 48))
    alert = Entry(time=0.0, kind="alert", jpeg=whole, thumbnail=False)
    assert kept(alert, 120) == Kept(WHOLE, whole)
    assert kept(alert, 120, thumbnails=False) == Kept(WHOLE, whole)  # kept as long as its alert
    assert kept(given, 120, thumbnails=False) is None  # thumbnail_keep_s = 0
    assert kept(Entry(time=0.0, kind="look", jpeg=BROKEN), 120) is None
    assert kept(Entry(time=0.0, kind="look"), 120) is None


def test_the_store_keeps_the_look_s_own_thumbnail(tmp_path: Path) -> None:
    store = ActivityStore(tmp_path / "d", ActivityConfig(), clock=lambda: 2000.0)
    sink = ActivitySink(store)
    sink.open()
    small = solid_jpeg((10, 200, 10), (160, 120))
    record = dataclasses.replace(look(0, jpeg=solid_jpeg((200, 10, 10))), thumbnail=small)
    sink.send_look(record)
    assert store.flush()
    (row,) = entries(store.db_path, Filter())
    assert row["picture"] == THUMBNAIL and row["picture_bytes"] == len(small)
    assert picture(store.db_path, row["id"]) == small
    sink.close()


def test_the_runtime_s_looks_bring_thumbnails_made_from_their_frames(
    app_factory: Callable[..., App], model_server: ScriptedModelServer
) -> None:
    model_server.default = answer("a heron", met=True, next_run_in=1)
    app = app_factory(model_server)
    sink = app.pipeline.activity
    assert sink is not None

    def look_and_alert() -> list[dict[str, Any]] | None:
        rows = entries(sink.db_path, Filter(limit=50))
        kinds = {r["kind"]: r for r in rows if r["picture"]}
        return [kinds["look"], kinds["alert"]] if {"look", "alert"} <= set(kinds) else None

    look_row, alert_row = wait_until(look_and_alert, 30, "a look and an alert with pictures")
    thumb = picture(sink.db_path, look_row["id"])
    whole = picture(sink.db_path, alert_row["id"])
    assert thumb is not None and whole is not None
    with Image.open(io.BytesIO(thumb)) as img:
        assert img.height == ActivityConfig().thumbnail_height
    # not the judged JPEG shrunk again by the store: the look made it from its frame
    assert thumb != thumbnail(whole, img.height)


def test_a_burst_of_looks_keeps_each_look_its_own_thumbnail(tmp_path: Path) -> None:
    store = ActivityStore(tmp_path / "d", ActivityConfig(), clock=lambda: 2000.0)
    sink = ActivitySink(store)
    sink.open()
    palette = colors(60)
    for i, color in enumerate(palette):
        sink.send_look(look(i, f"look {i}", jpeg=BROKEN if i == 17 else solid_jpeg(color)))
    assert store.flush()
    rows = entries(store.db_path, Filter(limit=100))
    assert store.dropped == 0 and len(rows) == len(palette)
    for row in rows:
        i = int(row["text"].split()[1])
        jpeg = picture(store.db_path, row["id"])
        if i == 17:
            assert row["picture"] is None and jpeg is None
            continue
        assert jpeg is not None and close_to(color_of(jpeg), palette[i]), i
    sink.close()
