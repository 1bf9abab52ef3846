"""CameraStats read from the camera itself: a PyAV file camera and a Frigate snapshot camera."""

from __future__ import annotations

import time
from collections.abc import Callable

from pipeline.core.config import CameraConfig
from pipeline.core.frame import CameraStats
from sources.camera import CameraSource
from sources.frigate_snapshot import FrigateSnapshotSource
from tests.support.clips import Clip
from tests.support.frigate_api import FrigateApi
from tests.support.waiting import wait_until


class Clock:
    """A wall clock the test sets: packet arrival times become exact."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _wait_for(
    camera: CameraSource, ok: Callable[[CameraStats], bool], timeout: float = 10
) -> CameraStats:
    """The camera's stats once ``ok`` holds for them."""
    return wait_until(
        lambda: stats if ok(stats := camera.stats()) else None,
        timeout,
        lambda: f"stats to match; last {camera.stats()}",
    )


def test_on_demand_decodes_only_when_asked(clip_factory: Callable[..., Clip]) -> None:
    clip = clip_factory(seconds=10, fps=10, gop=10)
    clock = Clock(1000.0)
    config = CameraConfig(url=str(clip.path), decode="on_demand", loop=True)
    with CameraSource("porch", config, clock=clock) as camera:
        assert camera.stats() == CameraStats()
        hold = camera.connect()
        # Online once the first picture is decoded (the source decodes that one itself).
        first = _wait_for(camera, lambda s: s.online)
        assert first.packets > 0 and first.frames_decoded >= 1 and first.decode_seconds > 0
        assert first.last_packet_time == 1000.0 and first.last_frame_time == 1000.0
        assert first.reconnects == 0

        clock.now = 2000.0
        idle = _wait_for(camera, lambda s: s.packets >= first.packets + 5)
        assert idle.last_packet_time == 2000.0  # video flows: its arrival time moves
        assert idle.frames_decoded == first.frames_decoded  # nobody asked: nothing decoded
        assert idle.decode_seconds == first.decode_seconds
        assert idle.last_frame_time == 1000.0

        frame = camera.latest(timeout=5)
        asked = camera.stats()
        assert frame is not None and frame.wall_time == 2000.0
        assert asked.frames_decoded > idle.frames_decoded
        assert asked.decode_seconds > idle.decode_seconds
        assert asked.last_frame_time == 2000.0
        assert camera.decoded_frames == asked.frames_decoded
        hold.dispose()
    closed = camera.stats()
    assert not closed.online
    assert closed.frames_decoded >= asked.frames_decoded  # counters survive the connection
    assert closed.decode_seconds >= asked.decode_seconds
    assert closed.packets >= asked.packets


def test_every_frame_counts_without_a_look(clip_factory: Callable[..., Clip]) -> None:
    clip = clip_factory(seconds=10, fps=10, gop=10)
    config = CameraConfig(url=str(clip.path), decode="every_frame", loop=True)
    with CameraSource("porch", config) as camera:
        hold = camera.connect()
        started = time.time()
        stats = _wait_for(camera, lambda s: s.frames_decoded >= 8)
        hold.dispose()
    assert stats.decode_seconds > 0 and stats.packets >= stats.frames_decoded
    assert stats.last_frame_time is not None and stats.last_packet_time is not None
    assert started <= stats.last_frame_time <= stats.last_packet_time <= time.time()
    assert stats.last_video_time == stats.last_packet_time


def test_frigate_snapshot_counts_jpegs(frigate: FrigateApi) -> None:
    clock = Clock(1000.0)
    config = CameraConfig(url=f"frigate://127.0.0.1:{frigate.port}/porch?h=120")
    with FrigateSnapshotSource("porch", config, clock=clock) as camera:
        hold = camera.connect()
        assert camera.latest(timeout=5) is not None
        good = camera.stats()
        assert (good.packets, good.frames_decoded, good.reconnects) == (1, 1, 0)
        assert good.online and good.decode_seconds > 0
        assert good.last_packet_time == good.last_frame_time == 1000.0

        frigate.status = 500
        clock.now = 2000.0
        assert camera.latest(timeout=5) is None
        bad = camera.stats()
        hold.dispose()
    assert (bad.packets, bad.frames_decoded, bad.reconnects) == (1, 1, 1)
    assert not bad.online and bad.last_frame_time == 1000.0
