"""A look's thumbnail for the activity store: made from the judged frame, only when asked."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from PIL import Image
from reactivex.testing import TestScheduler

from operators.look import Looker
from operators.verdicts import look_record
from operators.watch_spec import WatchSpec
from pipeline.core.config import ActivityConfig
from pipeline.core.frame import Frame
from tests.support.fakes import ScriptedBackend, StaticFrames

ANSWER = '{"condition_met": false, "next_run_in": 5}'
SPEC = WatchSpec(name="w", camera="porch", condition="a cat")


def two_colour_frame(video: bool) -> Frame:
    """640x480: the left half red, the right half blue (a decoder frame, or an RGB array)."""
    rgb = np.zeros((480, 640, 3), np.uint8)
    rgb[:, :320] = (220, 30, 30)
    rgb[:, 320:] = (30, 30, 220)
    if video:
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        return Frame(camera="porch", seq=1, wall_time=0.0, stream_time=None,
                     width=640, height=480, video=frame)  # fmt: skip
    return Frame(camera="porch", seq=1, wall_time=0.0, stream_time=None,
                 width=640, height=480, rgb=rgb)  # fmt: skip


def look_once(
    frame: Frame | None, thumbnail_height: int | None
) -> tuple[bytes | None, bytes | None]:
    looker = Looker(SPEC, "j", frames=StaticFrames(frame), backend=ScriptedBackend([], ANSWER),
                    scheduler=TestScheduler(), first_frame_timeout_s=0,
                    thumbnail_height=thumbnail_height)  # fmt: skip
    record = look_record(SPEC, "j", looker("timer", 0.0))
    return record.jpeg, record.thumbnail


@pytest.mark.parametrize("video", [True, False], ids=["decoder frame", "rgb array"])
def test_the_look_brings_a_thumbnail_of_its_frame(video: bool) -> None:
    jpeg, thumb = look_once(two_colour_frame(video), 120)
    assert jpeg is not None and thumb is not None
    with Image.open(io.BytesIO(thumb)) as img:
        assert (img.format, img.size) == ("JPEG", (160, 120))
        rgb = np.asarray(img.convert("RGB"), dtype=int)
    # the frame's picture, shrunk: red on the left, blue on the right
    assert np.abs(rgb[60, 20] - (220, 30, 30)).max() < 20
    assert np.abs(rgb[60, 140] - (30, 30, 220)).max() < 20


def test_no_thumbnail_unless_asked_or_without_a_frame() -> None:
    jpeg, thumb = look_once(two_colour_frame(True), None)
    assert jpeg is not None and thumb is None
    assert look_once(None, 120) == (None, None)


def test_the_runtime_asks_for_the_store_height_only_when_thumbnails_are_kept() -> None:
    assert ActivityConfig(thumbnail_height=90).look_thumbnail_height == 90
    for off in (ActivityConfig(enabled=False), ActivityConfig(thumbnail_keep_s=0)):
        assert off.look_thumbnail_height is None
    with pytest.raises(ValueError, match="thumbnail_height"):
        Looker(SPEC, "j", frames=StaticFrames(None), backend=ScriptedBackend([]),
               scheduler=TestScheduler(), thumbnail_height=0)  # fmt: skip
