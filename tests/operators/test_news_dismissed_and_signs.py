"""The news policy after an irrelevant answer (dismissed cells) and on keyframes (signs of change).

Times are picture times (seconds, 5 pictures a second); nothing waits on a clock.
A replayed clip (:class:`ClipReader`) shows what a keyframe tap gets while the
camera is kept current.
"""

from __future__ import annotations

import numpy as np
from reactivex.scheduler import HistoricalScheduler

from operators.news import NewsSettings
from operators.news_wakes import NewsPolicy
from operators.scene import SceneSettings
from operators.zone_geometry import ZoneRule
from pipeline.app.replay.clip_reader import ClipReader
from pipeline.app.watch_setup import wake_setup
from pipeline.core.config import CameraConfig, WatchConfig
from pipeline.core.frame import Frame
from tests.support.clips import Clip

H, W = 48, 64
DT = 0.2
LOWER = ZoneRule(points=[(0, 0.5), (1, 0.5), (1, 1), (0, 1)])
PERSON = np.random.default_rng(7).integers(150, 250, (12, 8)).astype(np.float32)
"""Someone seen from one side: a textured patch 8 pixels wide and 12 tall."""
TURNED = PERSON[:, ::-1].copy()
"""The same person turned round: the same place, another look."""


def _ground() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.kron(rng.integers(90, 130, (H // 4, W // 4)), np.ones((4, 4))).astype(np.float32)


def _picture(person: np.ndarray | None = None, at: int = 8, parcel: bool = False) -> np.ndarray:
    img = _ground()
    if person is not None:
        img[30:42, at : at + 8] = person
    if parcel:
        img[44:48, 44:60] = 30.0  # bottom right, far from the person
    return img


def _frame(img: np.ndarray, t: float) -> Frame:
    rgb = np.repeat(np.clip(img, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    return Frame(camera="c", seq=round(t / DT), wall_time=t, stream_time=t,
                 width=W, height=H, rgb=rgb)  # fmt: skip


def _policy(*, keyframes: bool = False, **news: float) -> NewsPolicy:
    knobs = {"min_area": 0.015, "persist_s": 0.4, "evidence_s": None, **news}
    return NewsPolicy([("lower", LOWER)], NewsSettings(**knobs),  # type: ignore[arg-type]
                      SceneSettings(width=W, cell=4, still_s=0.6), keyframes=keyframes)  # fmt: skip


def _wakes(policy: NewsPolicy, pictures: list[tuple[float, np.ndarray]]) -> list[str]:
    out = []
    for t, img in pictures:
        d = policy.picture(_frame(img, t))
        if d is not None and d.wake:
            out.append(f"{t:.1f} {d.reason}")
    return out


def _someone_stops_where_the_model_saw_them(next_run_in: float, **news: float) -> list[str]:
    """Warm up on the ground; the model judges a picture with someone in the zone; they turn
    round and stand there for 4 s; then a parcel is set down elsewhere. The wakes."""
    policy = _policy(keyframes=False, **news)
    _wakes(policy, [(i * DT, _picture()) for i in range(12)])
    judged_at = 12 * DT
    policy.picture(_frame(_picture(PERSON), judged_at))
    policy.judged(_frame(_picture(PERSON), judged_at), next_run_in)
    standing = [(judged_at + i * DT, _picture(TURNED)) for i in range(1, 21)]
    parcel = [(judged_at + (21 + i) * DT, _picture(TURNED, parcel=True)) for i in range(6)]
    return _wakes(policy, standing + parcel)


def test_someone_the_model_called_irrelevant_who_stops_is_no_news_a_parcel_elsewhere_is() -> None:
    wakes = _someone_stops_where_the_model_saw_them(next_run_in=60.0)
    assert [w.split()[1] for w in wakes] == ["still"]
    assert float(wakes[0].split()[0]) > 2.4 + 21 * DT  # the parcel's, not the person's


def test_while_the_model_is_watching_someone_who_stops_is_news() -> None:
    """The contrast: an interested answer (5 s) dismisses nothing."""
    wakes = _someone_stops_where_the_model_saw_them(next_run_in=5.0)
    assert wakes and float(wakes[0].split()[0]) < 2.4 + 21 * DT  # the person, at once


def test_what_was_dismissed_is_forgotten_after_dismissed_s() -> None:
    wakes = _someone_stops_where_the_model_saw_them(next_run_in=60.0, dismissed_s=0.5)
    assert wakes and float(wakes[0].split()[0]) < 2.4 + 21 * DT


# -- signs of change on keyframes ------------------------------------------------------


class Kept:
    """A frame source that records what the policy asked of it."""

    def __init__(self) -> None:
        self.asked: list[float | None] = []

    def keep_current(self, seconds: float | None = None) -> float:
        self.asked.append(seconds)
        return 0.0


def _signs(keyframes: bool) -> tuple[list[int], NewsPolicy]:
    """Calls to keep_current after each picture: warm-up, judged ground, quiet, someone arriving."""
    policy, camera = _policy(keyframes=keyframes), Kept()
    counts = []

    def see(t: float, img: np.ndarray) -> None:
        policy.picture(_frame(img, t))
        policy.keep_current_on_sign(camera)
        counts.append(len(camera.asked))

    for i in range(12):
        see(i * DT, _picture())
    policy.judged(_frame(_picture(), 11 * DT), 60.0)
    for i in range(12, 15):
        see(i * DT, _picture())
    see(15 * DT, _picture(PERSON))
    return counts, policy


def test_on_keyframes_the_policy_keeps_the_camera_current_while_warming_and_on_a_change() -> None:
    counts, policy = _signs(keyframes=True)
    warm = counts[:12]
    assert warm[-1] >= 9  # while the background is learnt (its first pictures)
    assert counts[12:15] == [counts[11]] * 3  # a quiet scene asks nothing
    assert counts[15] == counts[14] + 1  # someone arrives: a change under way
    assert policy.signs == counts[15]


def test_on_every_frame_the_policy_never_asks_to_keep_current() -> None:
    counts, policy = _signs(keyframes=False)
    assert counts[-1] == 0 and policy.signs == 0


def _keyframe_tap(clip: Clip, share: float) -> list[Frame]:
    """A 5 fps keyframe tap on ``clip`` (a keyframe each second), kept current from 1.45 s for 1 s."""
    sched = HistoricalScheduler()
    got: list[Frame] = []
    with ClipReader(clip.path, scheduler=sched, keep_current_share=share) as reader:
        sub = reader.frames(5, keyframes=True).subscribe(got.append)
        reader.start()
        sched.advance_to(reader.at(1.45))
        reader.keep_current(1.0)
        sched.advance_to(reader.at(10.0))
        sub.dispose()
    return got


def test_a_keyframe_tap_takes_every_frame_at_its_pace_while_kept_current(h264_clip: Clip) -> None:
    got = _keyframe_tap(h264_clip, share=1.0)
    times = [round(f.stream_time or 0.0, 1) for f in got]
    assert times == [0.0, 1.0, 1.5, 1.7, 1.9, 2.1, 2.3, 3.0]
    assert [f.keyframe for f in got] == [True, True, False, False, False, False, False, True]


def test_a_keyframe_tap_is_not_kept_current_beyond_the_share(h264_clip: Clip) -> None:
    got = _keyframe_tap(h264_clip, share=0.0)
    assert [round(f.stream_time or 0.0, 1) for f in got] == [0.0, 1.0, 2.0, 3.0]


def test_the_watch_config_sets_dismissed_s_and_keyframes() -> None:
    camera = CameraConfig(url="x.mp4", detect={"type": "motion", "keyframes": True})
    watch = WatchConfig(name="w", camera="c", condition="a parcel", news_dismissed_s=5.0)
    policy, fps, keyframes = wake_setup(watch, camera)
    assert isinstance(policy, NewsPolicy)
    assert policy.tracker.settings.dismissed_s == 5.0
    assert keyframes and policy.keyframes and fps == 5.0
