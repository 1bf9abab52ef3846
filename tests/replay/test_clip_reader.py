"""ClipReader: a file on a virtual clock, frames at their own times, decode on demand."""

from __future__ import annotations

from pathlib import Path

import pytest
from reactivex.scheduler import HistoricalScheduler

from pipeline.app.replay.clip_reader import ClipReader
from pipeline.core.frame import Frame
from tests.support.clips import Clip


def test_frames_arrive_at_their_clip_times_at_the_asked_rate(yard_clip: Clip) -> None:
    sched = HistoricalScheduler()
    got: list[Frame] = []
    done: list[bool] = []
    with ClipReader(yard_clip.path, scheduler=sched, camera="yard") as clip:
        assert (clip.width, clip.height, clip.fps) == (320, 240, 10.0)
        clip.frames(4).subscribe(got.append, on_completed=lambda: done.append(True))
        clip.start()
        sched.advance_to(clip.at(2.0))
        assert [f.stream_time for f in got] == [0.0, 0.3, 0.6, 0.9, 1.2, 1.5, 1.8]
        assert [f.wall_time for f in got] == [f.stream_time for f in got]  # epoch 0 = clip start
        assert all(f.camera == "yard" and f.video is not None for f in got)
        sched.advance_to(clip.at(60.0))
        assert clip.ended and clip.end_s == 20.0 and done == [True]
        assert clip.packets == 200


def test_latest_is_the_frame_at_the_clock_and_decodes_only_what_it_needs(yard_clip: Clip) -> None:
    sched = HistoricalScheduler()
    with ClipReader(yard_clip.path, scheduler=sched) as clip:
        assert clip.latest() is None  # nothing played yet
        clip.start()
        sched.advance_to(clip.at(15.05))
        # Demuxed, not decoded: only the first picture, to know the clip is ready.
        assert clip.ready and clip.decoded == 1
        frame = clip.latest()
        assert frame is not None and frame.stream_time == 15.0 and frame.seq == 150
        # A look decodes from the GOP's keyframe (15.0 s here) forward, not the 150 frames before.
        assert clip.decoded == 2
        sched.advance_to(clip.at(15.55))
        frame = clip.latest()
        assert frame is not None and frame.stream_time == 15.5
        assert clip.decoded == 7
        # The shape's position in the picture is the one drawn at that time.
        rgb = frame.to_rgb()
        box = yard_clip.boxes[155][0]
        assert rgb[(box[1] + box[3]) // 2, (box[0] + box[2]) // 2].min() > 200


def test_until_ends_early_and_close_is_idempotent(yard_clip: Clip) -> None:
    sched = HistoricalScheduler()
    ended: list[float] = []
    clip = ClipReader(
        yard_clip.path, scheduler=sched, until_s=3.0, on_end=lambda: ended.append(clip.clip_time())
    )
    assert clip.duration_s == 3.0
    clip.start()
    sched.advance_to(clip.at(10.0))
    assert clip.ended and clip.end_s == 3.0 and clip.packets == 30
    assert ended == [2.9]  # found at the last packet before 3.0 s
    clip.close()
    clip.close()
    assert clip.latest() is None


def test_bad_arguments_are_plain_errors(tmp_path: Path, yard_clip: Clip) -> None:
    sched = HistoricalScheduler()
    not_video = tmp_path / "notes.txt"
    not_video.write_text("hello", encoding="utf-8")
    with pytest.raises(ValueError, match="Cannot open clip"):
        ClipReader(not_video, scheduler=sched)
    with pytest.raises(ValueError, match="until_s must be positive"):
        ClipReader(yard_clip.path, scheduler=sched, until_s=0)
    with ClipReader(yard_clip.path, scheduler=sched) as clip, pytest.raises(ValueError):
        clip.frames(0)
