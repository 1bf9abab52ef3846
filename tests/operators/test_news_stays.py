"""The news policy's rules for busy zones: what stays, what passes, colour, the first look.

Times are picture times (seconds, 5 pictures a second); nothing waits on a clock.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.news import NewsSettings, NewsTracker
from operators.news_wakes import NewsPolicy
from operators.scene import SceneModel, SceneSettings
from operators.scene_pixels import thumbnail
from operators.stillness import Stillness, changed_cells
from operators.zone_geometry import ZoneRule
from pipeline.app.watch_setup import wake_setup
from pipeline.core.config import CameraConfig, WatchConfig
from pipeline.core.frame import Frame

H, W = 48, 64
DT = 0.2
LOWER = ZoneRule(points=[(0, 0.5), (1, 0.5), (1, 1), (0, 1)])


def _ground(seed: int = 0) -> np.ndarray:
    """Asphalt: grey 90..130 in blocks of 4 pixels, the same in every picture."""
    rng = np.random.default_rng(seed)
    return np.kron(rng.integers(90, 130, (H // 4, W // 4)), np.ones((4, 4))).astype(np.float32)


WALKER = np.random.default_rng(7).integers(150, 250, (12, 6)).astype(np.float32)
"""A person: a textured patch 6 pixels wide and 12 tall (legs, coat, face)."""


def _picture(i: int, walkers: list[tuple[int, int]], parcel: bool = False) -> np.ndarray:
    """Picture ``i``: the ground, a parcel (dark, 16 x 4 pixels, bottom right) if asked, walkers."""
    img = _ground()
    if parcel:
        img[44:48, 40:56] = 30.0  # 4 cells: 2 % of the picture
    for x, y in walkers:
        x %= W - 6
        img[y : y + 12, x : x + 6] = WALKER
    return img


def _frame(img: np.ndarray, t: float, rgb: np.ndarray | None = None) -> Frame:
    if rgb is None:
        rgb = np.repeat(np.clip(img, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    return Frame(camera="c", seq=round(t / DT), wall_time=t, stream_time=t,
                 width=rgb.shape[1], height=rgb.shape[0], rgb=rgb)  # fmt: skip


def _policy(**news: float) -> NewsPolicy:
    knobs = {"min_area": 0.015, "persist_s": 0.4, "evidence_s": None, **news}
    return NewsPolicy([("lower", LOWER)], NewsSettings(**knobs),  # type: ignore[arg-type]
                      SceneSettings(width=W, cell=4, still_s=0.6))  # fmt: skip


# -- what stays, what passes ----------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(speed=st.integers(2, 6), start=st.integers(0, 40), set_down=st.integers(15, 40))
def test_a_walker_is_never_still_and_a_parcel_is_after_still_s(
    speed: int, start: int, set_down: int
) -> None:
    """Property: a walker (2..6 pixels a picture) never makes a still cell; a parcel does, once it
    has kept its look for ``still_s``, as long as nobody walks over it."""
    model = SceneModel(SceneSettings(width=W, cell=4, still_s=0.6))
    first_still: float | None = None
    model.observe(_picture(0, []), 0.0)
    for i in range(1, 60):
        t = i * DT
        walker = (start + speed * i, 22)  # mostly in the lower half, above the parcel
        occ = model.observe(_picture(i, [walker], parcel=i >= set_down), t)
        assert occ.still is not None and occ.cells is not None
        parcel_cells = occ.still[11, 10:14]
        elsewhere = occ.still.copy()
        elsewhere[11, 10:14] = False
        assert not elsewhere.any(), f"a walker was still at {t:.1f} s"
        if first_still is None and parcel_cells.any():
            first_still = t
    assert first_still is not None
    assert abs(first_still - (set_down * DT + 0.6)) < 1e-6


def test_stillness_picks_up_again_after_a_change_and_forgets_what_went() -> None:
    st_ = Stillness(cell=4, still_s=0.6, steady=4.0)
    grey = np.zeros((8, 8), np.float32)
    fg = np.zeros((2, 2), bool)
    fg[0, 0] = True
    assert [int(st_.update(grey, None, fg, t).sum()) for t in (0.0, 0.2, 0.4, 0.6)] == [0, 0, 0, 1]
    moved = grey.copy()
    moved[0:4, 0:4] = 50.0  # something else there now: its own 0.6 s from here
    assert [int(st_.update(moved, None, fg, t).sum()) for t in (0.8, 1.0, 1.2, 1.4)] == [0, 0, 0, 1]
    assert int(st_.update(moved, None, np.zeros((2, 2), bool), 1.6).sum()) == 0
    assert int(st_.update(moved, None, fg, 1.8).sum()) == 0  # back: it starts afresh


def test_changed_cells_allows_a_shift_of_one_cell() -> None:
    a = np.zeros((16, 16), np.float32)
    a[4:8, 4:8] = 100.0
    b = np.zeros((16, 16), np.float32)
    b[4:8, 8:12] = 100.0  # the same thing one cell to the right
    assert not changed_cells((b, None), (a, None), 4, 8.0).any()
    c = np.zeros((16, 16), np.float32)
    c[12:16, 12:16] = 100.0  # a new thing two cells away
    assert changed_cells((c, None), (a, None), 4, 8.0)[3, 3]


# -- colour ---------------------------------------------------------------------------


def test_colour_finds_a_parcel_as_light_as_the_ground() -> None:
    ground = np.full((H, W, 3), 128, np.uint8)
    parcel = ground.copy()
    parcel[28:40, 24:40] = (170, 120, 60)  # brown: luma 128, like the ground
    for chroma, seen in ((10.0, True), (0.0, False)):
        model = SceneModel(SceneSettings(width=W, cell=4, chroma=chroma))
        areas = []
        for i in range(12):
            grey, colour = thumbnail(
                _frame(ground[:, :, 0], i * DT, ground if i < 11 else parcel), W
            )
            occ = model.observe(grey, i * DT, chroma=colour if chroma > 0 else None)
            areas.append(occ.area)
        assert (areas[-1] > 0.02) is seen, (chroma, areas[-1])
        assert max(areas[:-1]) == 0.0


# -- busy zones and passers-by (the tracker alone) ----------------------------------------


def _observe(tracker: NewsTracker, series: list[tuple[float, float, float, float]]) -> list[str]:
    """Feed ``(t, area, appeared, moving)``; the decisions as ``reason`` or ``drop:reason``."""
    out = []
    for t, area, appeared, moving in series:
        d = tracker.observe(t, area, appeared, 0.0, moving)
        if d is not None:
            out.append(f"{d.time:.1f} {d.reason if d.wake else 'drop:' + d.reason}")
    return out


def test_in_a_busy_zone_arrivals_are_no_news_and_what_stays_is() -> None:
    tr = NewsTracker(NewsSettings(min_area=0.01, persist_s=0.4, evidence_s=None))
    tr.judged(0.0, 0.02)
    walkers = [(0.2 * i, 0.02, 0.0, 0.02) for i in range(1, 150)]  # 30 s of people passing
    assert _observe(tr, walkers) == [] and tr.busy and 0.5 < tr.busy_share < 1
    crowd = [(30.0 + 0.2 * i, 0.06, 0.0, 0.06) for i in range(10)]  # three times as many
    assert _observe(tr, crowd) == ["30.4 drop:busy zone"]  # held for persist_s, then dropped
    parcel = [(32.0, 0.03, 0.01, 0.02)]  # one picture with a still thing is enough
    assert _observe(tr, parcel) == ["32.0 still"]
    assert tr.woken == {"still": 1} and tr.dropped == {"busy zone": 1}


def test_a_zone_is_not_busy_on_its_first_pictures() -> None:
    tr = NewsTracker(NewsSettings(min_area=0.01, persist_s=0.4, evidence_s=None))
    tr.judged(0.0, 0.0)
    assert _observe(tr, [(0.2 * i, 0.05, 0.0, 0.05) for i in range(1, 4)]) == ["0.6 entered"]
    assert not tr.busy


@settings(max_examples=60, deadline=None)
@given(stay=st.integers(1, 30))
def test_after_an_irrelevant_arrival_only_arrivals_that_linger_are_news(stay: int) -> None:
    """Property: once the model called an arrival nothing relevant, one that stays ``stay``
    pictures wakes iff it stays ``linger_s``; one the model then finds relevant lifts that."""
    s = NewsSettings(min_area=0.01, persist_s=0.4, evidence_s=None, linger_s=3.0)
    tr = NewsTracker(s)
    tr.judged(0.0, 0.0, next_run_in=60)
    assert _observe(tr, [(0.2 * i, 0.03, 0.0, 0.03) for i in range(1, 4)]) == ["0.6 entered"]
    tr.judged(0.6, 0.03, next_run_in=60)  # "nothing relevant": a passer-by
    assert _observe(tr, [(1.0, 0.0, 0.0, 0.0)]) == []  # left: nothing watched went
    tr.reference = 0.0
    assert tr.passers
    t0 = 100.0
    series = [(t0 + 0.2 * i, 0.03, 0.0, 0.03) for i in range(stay)] + [(t0 + 0.2 * stay, 0, 0, 0)]
    out = _observe(tr, series)
    lingered = 0.2 * (stay - 1) >= s.linger_s - 1e-9  # first to last picture with it
    if lingered:
        assert out[0] == f"{t0 + s.linger_s:.1f} entered"
    elif 0.2 * (stay - 1) >= s.persist_s - 1e-9:
        assert out == [f"{t0 + 0.2 * stay:.1f} drop:passing"]
    else:
        assert out == [f"{t0 + 0.2 * stay:.1f} drop:brief"]
    if lingered:
        tr.judged(t0 + 4.0, 0.03, next_run_in=5)  # relevant: arrivals are news at once again
        assert not tr.passers


# -- the policy on pictures -----------------------------------------------------------------


def test_a_parcel_among_passers_by_wakes_at_once_and_the_passers_never() -> None:
    policy = _policy()
    woken: list[tuple[float, str]] = []
    for i in range(200):
        t = i * DT
        walkers = [(3 * i, 24), (40 - 2 * i, 28), (5 * i + 20, 30)]  # always someone in the zone
        img = _picture(i, walkers, parcel=t >= 30.0)
        if i == 0:
            policy.judged(_frame(img, t), next_run_in=60)
        d = policy.picture(_frame(img, t))
        if d is not None and d.wake:
            woken.append((round(t, 1), d.reason))
            policy.judged(_frame(img, t), next_run_in=5 if t >= 30.0 else 60)
    assert woken and woken[0][1] == "still" and 30.6 <= woken[0][0] <= 31.4, woken
    assert all(t >= 30.0 for t, _ in woken), woken
    assert policy.tracker.busy


def test_the_first_look_before_the_background_learnt_sees_what_is_there() -> None:
    """Someone in the zone at the first look (before the background knows the scene) is what
    that look saw: no news once the background has learnt; a parcel set down later is."""
    policy = _policy()
    woken: list[tuple[float, str]] = []
    for i in range(100):
        t = i * DT
        step = (2 * i) % 112  # walking to and fro in the zone, never out of it
        img = _picture(i, [(min(step, 112 - step), 26)], parcel=t >= 12.0)
        if i == 0:
            policy.judged(None, next_run_in=60)  # the look at the first picture
        d = policy.picture(_frame(img, t))
        if d is not None and d.wake:
            woken.append((round(t, 1), d.reason))
            policy.judged(_frame(img, t), next_run_in=60)
    assert woken and all(t >= 12.0 for t, _ in woken), woken
    assert woken[0][0] <= 13.0


def test_the_watch_config_sets_the_still_and_linger_times() -> None:
    camera = CameraConfig(url="x.mp4", detect={"type": "motion", "fps": 5})
    watch = WatchConfig(name="w", camera="c", condition="a parcel", news_still_s=1.5,
                        news_linger_s=5.0)  # fmt: skip
    policy, fps, _ = wake_setup(watch, camera)
    assert isinstance(policy, NewsPolicy) and fps == 5.0
    assert policy.scene.settings.still_s == 1.5 and policy.tracker.settings.linger_s == 5.0
    default, _, _ = wake_setup(WatchConfig(name="w", camera="c", condition="a parcel"), camera)
    assert isinstance(default, NewsPolicy)
    assert (default.scene.settings.still_s, default.tracker.settings.linger_s) == (0.6, 3.0)
