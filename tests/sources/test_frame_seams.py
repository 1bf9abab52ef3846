"""The frame selector's seam: freshest frame and newest keyframe, on real clips made with PyAV."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import pytest
from reactivex.scheduler import HistoricalScheduler

from pipeline.app.replay.clip_reader import ClipReader
from pipeline.core.config import CameraConfig
from pipeline.core.frame import Frame, FrameSource
from sources.camera import CameraSource
from sources.decode import GopDecoder, PacketInfo
from tests.support.clips import Clip, linear_path

# A box crossing the picture: 6.5 px per frame, so frames 5 apart never overlap.
CROSSING = linear_path(0.0, 6.0, (0, 90, 30, 150), (390, 90, 420, 150))


def _shows(frame: Frame, clip: Clip, index: int) -> bool:
    """Whether ``frame`` shows the box where frame ``index`` of ``clip`` has it."""
    (x1, y1, x2, y2) = clip.boxes[index][0]
    rgb = frame.to_rgb()
    return bool(rgb[(y1 + y2) // 2, (x1 + x2) // 2].min() > 200)


class _Fed:
    """A clip's packets pushed into a decoder one by one, arriving 0.1 s apart."""

    def __init__(self, clip: Clip, strategy: Any = "on_demand") -> None:
        self.container = av.open(str(clip.path))
        stream = self.container.streams.video[0]
        self.decoder = GopDecoder("yard", stream.codec_context, strategy)
        self.packets = [p for p in self.container.demux(stream) if p.size]
        self.pushed = 0

    def push_until(self, count: int) -> None:
        while self.pushed < count:
            packet = self.packets[self.pushed]
            pts = packet.pts if packet.pts is not None else packet.dts
            info = PacketInfo(
                seq=self.pushed,
                wall_time=self.pushed * 0.1,
                stream_time=float(pts * packet.time_base),
                keyframe=bool(packet.is_keyframe),
                size=packet.size,
            )
            self.decoder.push(packet, info)
            self.pushed += 1

    def close(self) -> None:
        self.decoder.close()
        self.container.close()


@pytest.mark.parametrize("bframes", [0, 2])
def test_newest_keyframe_decodes_one_packet_and_freshest_the_rest(
    clip_factory: Callable[..., Clip], bframes: int
) -> None:
    clip = clip_factory(seconds=3.0, fps=10, gop=10, bframes=bframes, shapes=CROSSING)
    fed = _Fed(clip)
    try:
        fed.push_until(16)  # GOPs start at packets 0 and 10; packet 10 arrived at 1.0
        assert fed.decoder.newest_keyframe(since=1.05) is None  # too old
        assert fed.decoder.decoded == 0  # refusing costs nothing
        key = fed.decoder.newest_keyframe(since=0.95)
        assert key is not None and key.keyframe and key.stream_time == 1.0
        assert fed.decoder.decoded == 1  # one packet, not the GOP so far
        assert _shows(key, clip, 10)
        again = fed.decoder.newest_keyframe(since=0.95)
        assert again is key and fed.decoder.decoded == 1  # already there: free

        fresh = fed.decoder.newest()
        assert fresh is not None and fresh.stream_time is not None
        assert fresh.stream_time > 1.0 and not _shows(fresh, clip, 10)
        decoded = fed.decoder.decoded
        if bframes == 0:
            # The keyframe left the decoder ready to go on: packets 11..15 only.
            assert fresh.stream_time == 1.5 and _shows(fresh, clip, 15)
            assert decoded == 1 + 5
        # A newer picture of the same GOP is what a keyframe request gets now, for free.
        assert fed.decoder.newest_keyframe(since=0.95) is fresh
        assert fed.decoder.decoded == decoded

        fed.push_until(24)  # the next GOP starts at packet 20 (arrived at 2.0)
        key2 = fed.decoder.newest_keyframe(since=1.95)
        assert key2 is not None and key2.stream_time == 2.0 and _shows(key2, clip, 20)
        assert fed.decoder.decoded == decoded + 1
    finally:
        fed.close()


def test_a_clip_reader_gives_the_keyframe_or_the_freshest_on_virtual_time(
    clip_factory: Callable[..., Clip],
) -> None:
    yard = clip_factory(seconds=16.0, fps=10, gop=10)
    sched = HistoricalScheduler()
    with ClipReader(yard.path, scheduler=sched) as clip:
        source: FrameSource = clip
        clip.start()
        sched.advance_to(clip.at(15.55))
        assert clip.decoded == 1  # the first picture only
        assert source.keyframe(max_age_s=0.5) is None  # the keyframe (15.0 s) is 0.55 s old
        assert clip.decoded == 1
        key = source.keyframe(max_age_s=1.0)
        assert key is not None and key.stream_time == 15.0 and clip.decoded == 2
        fresh = source.freshest()
        assert fresh is not None and fresh.stream_time == 15.5 and clip.decoded == 7
        assert clip.stats().frames_decoded == 7


def test_a_camera_waits_for_the_next_keyframe_when_the_newest_is_too_old(
    clip_factory: Callable[..., Clip],
) -> None:
    clip = clip_factory(seconds=4.0, fps=10, gop=10)
    config = CameraConfig(url=str(clip.path), decode="on_demand", loop=True)
    with CameraSource("gate", config) as camera:
        assert camera.keyframe(max_age_s=5.0, timeout=0.5) is None  # not held: nothing starts
        hold = camera.connect()
        try:
            assert camera.freshest(timeout=10) is not None
            before = camera.stats().frames_decoded
            key = camera.keyframe(max_age_s=5.0)  # a keyframe arrived within 5 s: at once
            assert key is not None
            assert camera.stats().frames_decoded - before <= 1
            asked = time.time()
            # Nothing is that fresh: it waits (at most one GOP, 1 s) for the next keyframe.
            key = camera.keyframe(max_age_s=0.0, timeout=5.0)
            assert key is not None and key.keyframe and key.wall_time >= asked
            assert key.stream_time is not None and round(key.stream_time * 10) % 10 == 0
        finally:
            hold.dispose()


def test_every_source_kind_is_a_frame_source(tmp_path: Path, h264_clip: Clip) -> None:
    sched = HistoricalScheduler()
    with (
        CameraSource("porch", CameraConfig(url=str(h264_clip.path))) as camera,
        ClipReader(h264_clip.path, scheduler=sched) as clip,
    ):
        sources: list[FrameSource] = [camera, clip]
        for source in sources:
            assert not source.held and not source.state.online
            hold = source.connect()
            assert source.held  # held, whether or not pictures flow yet
            hold.dispose()
            hold.dispose()  # idempotent
            assert not source.held and not source.stats().online
