"""The live-like looks of benchmarks.decode: random GOP phases, keyframe waits, keeping current."""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.live_looks import LookStats, keyframe_times, live_looks, p95, wake_times
from operators.frame_selector import FreshestFrame
from operators.timer_keyframes import KeyframeTimerLooks
from sources.keep_current import KeepCurrent
from tests.support.clips import Clip


def test_timer_looks_on_keyframes_decode_one_frame_each_at_random_phases(
    clip_factory: Callable[..., Clip],
) -> None:
    clip = clip_factory(seconds=40.0, fps=10, gop=20)  # a 2 s GOP
    keys = keyframe_times(clip.path)
    assert keys[:3] == [0.0, 2.0, 4.0]
    fresh = live_looks(clip.path, keys, FreshestFrame(), seed=3)
    cheap = live_looks(clip.path, keys, KeyframeTimerLooks(2.0), seed=3)
    assert fresh.looks == cheap.looks >= 5
    # The same phases: decoding to the newest packet costs several frames a look
    # (somewhere in the GOP), the keyframe one.
    assert max(cheap.look_frames) == 1 and cheap.kinds == ["keyframe"] * cheap.looks
    assert max(fresh.look_frames) > 1 and len(set(fresh.look_frames)) > 1
    assert all(0.0 <= age <= 2.0 for age in cheap.ages) and p95(fresh.ages) < 0.15
    assert max(cheap.lateness) < 1e-3  # a keyframe at most 2 s old was always there


def test_a_timer_look_waits_for_the_next_keyframe_when_the_newest_is_too_old(
    clip_factory: Callable[..., Clip],
) -> None:
    clip = clip_factory(seconds=40.0, fps=10, gop=40)  # a 4 s GOP, a 1 s staleness bound
    keys = keyframe_times(clip.path)
    stats = live_looks(clip.path, keys, KeyframeTimerLooks(1.0), seed=5)
    waited = [late for late in stats.lateness if late > 0]
    assert waited and max(waited) <= 1.0  # at most the bound (and one GOP)
    assert set(stats.kinds) <= {"keyframe", "inter"} and "keyframe" in stats.kinds


def test_wakes_keep_the_decoder_current_within_its_share(
    clip_factory: Callable[..., Clip],
) -> None:
    clip = clip_factory(seconds=60.0, fps=10, gop=20)
    keys = keyframe_times(clip.path)
    busy = wake_times(60.0, (1.0, 3.0), seed=2)
    kept = live_looks(clip.path, keys, KeyframeTimerLooks(2.0), seed=1, wakes=busy,
                      keep=KeepCurrent(5.0, 0.25))  # fmt: skip
    unkept = live_looks(clip.path, keys, KeyframeTimerLooks(2.0), seed=1, wakes=busy,
                        keep=KeepCurrent(0.0, 0.25))  # fmt: skip
    assert kept.decoded > unkept.decoded
    # Constant wakes: kept current for at most the bucket (7.5 s) plus a quarter of the time.
    assert kept.kept_s <= 7.5 + 0.25 * 60.0 + 1e-6
    merged = LookStats.merged([kept, unkept])
    assert merged.looks == kept.looks + unkept.looks
    assert merged.summary()["kept_current_share"] <= 0.5
