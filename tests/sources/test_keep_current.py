"""Keeping the decoder current after wakes (bounded share), staggered opening, the GOP clock."""

from __future__ import annotations

import doctest
import itertools
import random
import threading
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sources.gop_clock
import sources.keep_current
import sources.open_stagger
from pipeline.core.backoff import Backoff
from pipeline.core.config import CameraConfig
from sources.camera import CameraSource
from sources.gop_clock import GopClock
from sources.keep_current import KeepCurrent
from sources.open_stagger import OpenStagger, stagger_host
from tests.support.clips import Clip
from tests.support.ports import free_port
from tests.support.waiting import wait_until

WAIT_S = 20.0


def test_the_docstring_examples_run() -> None:
    for module in (sources.keep_current, sources.open_stagger, sources.gop_clock):
        assert doctest.testmod(module).failed == 0


# ------------------------------------------------------------ keep current (virtual time)


def test_overlapping_requests_pay_only_for_the_time_they_add() -> None:
    keep = KeepCurrent(seconds=5.0, share=0.5, window_s=60.0)  # a 30 s bucket
    assert keep.request(100.0) == 105.0
    assert keep.request(103.0) == 108.0  # 3 s more, not 5
    assert keep.granted_s == 8.0 and keep.active(107.9) and not keep.active(108.0)
    assert keep.request(200.0, seconds=2.0) == 202.0


def test_a_burst_gets_the_bucket_then_only_the_share() -> None:
    keep = KeepCurrent(seconds=5.0, share=0.25, window_s=20.0)  # 5 s bucket, 0.25 s/s
    keep.request(0.0)
    assert keep.until == 5.0
    # At 5 s the bucket holds 5 * 0.25 = 1.25 s: that is all the next request gets.
    assert keep.request(5.0) == pytest.approx(6.25)
    assert keep.refused_s == pytest.approx(3.75)
    zero = KeepCurrent(seconds=5.0, share=0.0)
    assert zero.request(10.0) == float("-inf") and not zero.active(10.0)
    with pytest.raises(ValueError, match="share"):
        KeepCurrent(seconds=5.0, share=1.5)


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.floats(0.0, 20.0), min_size=1, max_size=200),
    share=st.floats(0.0, 1.0),
    seconds=st.floats(0.0, 30.0),
)
def test_constant_wakes_never_keep_the_decoder_current_beyond_its_share(
    gaps: list[float], share: float, seconds: float
) -> None:
    keep = KeepCurrent(seconds=seconds, share=share, window_s=60.0)
    now = 0.0
    for gap in gaps:
        now += gap
        keep.request(now)
    # Time kept current (granted, until the last end) never beats bucket + share of the time.
    span = max(now, keep.until) if keep.granted_s else 0.0
    assert keep.granted_s <= keep.capacity + share * span + 1e-6


# ------------------------------------------------------------ keep current (a camera)


def test_a_camera_follows_the_stream_only_while_kept_current(
    clip_factory: Callable[..., Clip],
) -> None:
    clip = clip_factory(seconds=3.0, fps=10, gop=10)
    config = CameraConfig(
        url=str(clip.path), loop=True, keep_current_s=20.0, keep_current_share=1.0
    )
    with CameraSource("yard", config) as camera:
        hold = camera.connect()
        try:
            assert camera.freshest(timeout=10) is not None
            decoded, packets = camera.stats().frames_decoded, camera.stats().packets
            wait_until(lambda: camera.stats().packets >= packets + 5, WAIT_S, "5 more packets")
            # On demand and nobody asked: packets arrive, nothing is decoded.
            assert camera.stats().frames_decoded == decoded and camera.kept_current == 0
            camera.keep_current()
            wait_until(lambda: camera.kept_current >= 5, WAIT_S, "5 packets kept current")
            before = camera.stats().frames_decoded
            fresh = camera.freshest(timeout=1)
            assert fresh is not None
            # Kept current: the newest picture costs at most the one packet just read.
            assert camera.stats().frames_decoded - before <= 1
            assert camera.current.granted_s == 20.0
        finally:
            hold.dispose()


def test_a_camera_with_no_share_never_keeps_current(clip_factory: Callable[..., Clip]) -> None:
    clip = clip_factory(seconds=3.0, fps=10, gop=10)
    config = CameraConfig(url=str(clip.path), loop=True, keep_current_share=0.0)
    with CameraSource("yard", config) as camera:
        hold = camera.connect()
        try:
            assert camera.freshest(timeout=10) is not None
            packets = camera.stats().packets
            camera.keep_current(30.0)
            wait_until(lambda: camera.stats().packets >= packets + 5, WAIT_S, "5 more packets")
            assert camera.kept_current == 0 and camera.current.refused_s == 30.0
        finally:
            hold.dispose()


# ------------------------------------------------------------ staggered opening


def test_turns_on_one_host_are_spaced_and_jittered_and_hosts_do_not_wait_for_each_other() -> None:
    now = [100.0]
    stagger = OpenStagger(spacing_s=0.5, jitter_s=0.3, clock=lambda: now[0], rng=random.Random(7))
    delays = [stagger.turn("nvr.lan") for _ in range(8)]
    at = [100.0 + d for d in delays]
    assert all(b - a >= 0.5 for a, b in itertools.pairwise(at))
    assert all(b - a <= 0.8 for a, b in itertools.pairwise(at))
    assert len({round(b - a, 6) for a, b in itertools.pairwise(at)}) > 1  # jittered
    assert stagger.turn("other.lan") <= 0.3  # another server: its own turns
    now[0] = 200.0  # long after: no queue left
    assert stagger.turn("nvr.lan") <= 0.3
    assert stagger.turn(None) == 0.0
    assert stagger_host("rtsp://admin:secret@192.168.1.20:554/s1") == "192.168.1.20"
    assert stagger_host("clip.mp4") is None
    with pytest.raises(ValueError):
        OpenStagger(spacing_s=-1.0)


class _Turns(OpenStagger):
    """An OpenStagger that records every turn it hands out (host, reserved time)."""

    def __init__(self) -> None:
        super().__init__(spacing_s=0.05, jitter_s=0.02)
        self.taken: list[tuple[str | None, float]] = []
        self._taken_lock = threading.Lock()

    def turn(self, host: str | None) -> float:
        delay = super().turn(host)
        with self._taken_lock:
            self.taken.append((host, self._clock() + delay))
        return delay


def test_cameras_of_one_server_open_in_turns_at_start_and_on_reconnect() -> None:
    stagger = _Turns()
    url = f"rtsp://user:pw@127.0.0.1:{free_port()}/cam"  # nothing listens: every open fails
    cameras = [
        CameraSource(
            f"cam{i}",
            CameraConfig(url=url, open_timeout_s=2),
            stagger=stagger,
            backoff=Backoff(initial=0.05, cap=0.1),
        )
        for i in range(4)
    ]
    holds = [camera.connect() for camera in cameras]
    try:
        wait_until(
            lambda: len(stagger.taken) >= 12, WAIT_S, "12 opens"
        )  # the first opens and two reconnects each
    finally:
        for hold in holds:
            hold.dispose()
        for camera in cameras:
            camera.close()
    times = sorted(t for host, t in stagger.taken if host == "127.0.0.1")
    assert len(times) == len(stagger.taken)
    assert all(b - a >= 0.05 - 1e-9 for a, b in itertools.pairwise(times))


# ------------------------------------------------------------ the GOP clock


def test_the_gop_clock_says_whether_the_next_keyframe_comes_within_a_wait() -> None:
    gop = GopClock(slack_s=0.25)
    assert gop.comes_within(0.0, 0.0)  # nothing known: worth waiting
    gop.keyframe(10.0)
    assert gop.comes_within(10.1, 0.0)  # one keyframe: the GOP is not known yet
    gop.keyframe(12.0)
    assert gop.gop_s == 2.0
    assert not gop.comes_within(12.1, 1.0)  # next at 14.0: 1.9 s away
    assert gop.comes_within(12.8, 1.0)  # 1.2 s away, within 1 s + slack
    gop.keyframe(11.0)  # out of order (a reconnect's clock): the GOP stays
    assert gop.gop_s == 2.0
