"""The news wake policy's pure parts: occupancy, news against the last look, the token bucket."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.news import NewsSettings, NewsTracker, change_kind
from operators.news_wakes import NewsPolicy
from operators.scene import SceneModel, SceneSettings, best_shift, zone_mask
from operators.token_bucket import TokenBucket, default_burst
from operators.zone_geometry import ZoneRule
from pipeline.core.frame import Frame

H, W = 48, 64


def _scene(seed: int = 0) -> np.ndarray:
    """A textured background (grass-like), float32 grey."""
    rng = np.random.default_rng(seed)
    base = rng.integers(60, 140, (H // 4, W // 4)).astype(np.float32)
    return np.kron(base, np.ones((4, 4), np.float32))


def _with_box(
    img: np.ndarray, x: int, y: int, w: int = 6, h: int = 10, v: float = 230
) -> np.ndarray:
    out = img.copy()
    out[y : y + h, x : x + w] = v
    return out


def _feed(
    model: SceneModel, frames: list[np.ndarray], dt: float = 0.2, t0: float = 0.0
) -> list[float]:
    return [model.observe(f, t0 + i * dt).area for i, f in enumerate(frames)]


def test_occupancy_sees_an_object_and_ignores_a_uniform_light_change() -> None:
    m = SceneModel(SceneSettings(width=W, cell=4))
    bg = _scene()
    assert _feed(m, [bg] * 10) == [0.0] * 10
    assert m.observe(bg + 40, 2.0).area == 0.0  # the whole picture brighter: nothing there
    area = m.observe(_with_box(bg, 20, 20), 2.2).area
    assert 0.02 < area < 0.1


def test_occupancy_ignores_a_camera_that_moved_as_a_whole() -> None:
    m = SceneModel(SceneSettings(width=W, cell=4, max_shift=3))
    rng = np.random.default_rng(3)
    bg = rng.integers(0, 255, (H, W)).astype(np.float32)
    _feed(m, [bg] * 5)
    shaken = np.roll(bg, (2, -2), axis=(0, 1))
    assert m.observe(shaken, 1.0).whole < 0.05
    no_realign = SceneModel(SceneSettings(width=W, cell=4, max_shift=0))
    _feed(no_realign, [bg] * 5)
    assert no_realign.observe(shaken, 1.0).whole > 0.3  # the check can fail


def test_occupancy_learns_movement_that_never_stops() -> None:
    """A patch that flickers all the time stops counting; an object elsewhere still counts."""
    m = SceneModel(SceneSettings(width=W, cell=4, halflife_s=2.0))
    bg = _scene()
    rng = np.random.default_rng(1)
    frames = []
    for _ in range(150):
        f = bg.copy()
        f[0:16, 0:16] += rng.normal(0, 30, (16, 16)).astype(np.float32)
        frames.append(f)
    areas = _feed(m, frames)
    assert max(areas[:3]) > 0.0  # at first the flicker counts
    assert max(areas[-20:]) <= 1 / 192  # learnt: at most one cell of 192
    obj = frames[-1].copy()
    obj[30:42, 40:48] = 240
    assert m.observe(obj, 30.0).area >= 4 / 192


def test_zone_mask_counts_only_inside_the_zone() -> None:
    lower = ZoneRule(points=[(0, 0.5), (1, 0.5), (1, 1), (0, 1)])
    mask = zone_mask([("lower", lower)], (H, W), (640, 480))
    m = SceneModel(SceneSettings(width=W, cell=4), mask)
    bg = _scene()
    _feed(m, [bg] * 3)
    assert m.observe(_with_box(bg, 10, 4), 1.0).area == 0.0  # upper half: outside
    assert m.observe(_with_box(bg, 10, 30), 1.2).area > 0.0
    assert zone_mask([], (2, 3), (3, 2)).all()


def test_best_shift_finds_the_global_move() -> None:
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 255, (40, 50)).astype(np.float32)
    assert best_shift(np.roll(ref, (1, 3), axis=(0, 1)), ref, 3) == (3, 1)
    assert best_shift(ref, ref, 3) == (0, 0)
    assert best_shift(ref, ref, 0) == (0, 0)


@pytest.mark.parametrize(
    ("area", "ref", "kind"),
    [
        (0.0, 0.0, None),
        (0.009, 0.0, None),
        (0.01, 0.0, "entered"),
        (0.04, 0.02, "more"),
        (0.035, 0.02, None),  # a walking person's outline breathes
        (0.011, 0.02, None),
        (0.01, 0.02, "less"),
        (0.005, 0.02, "left"),
    ],
)
def test_change_kind(area: float, ref: float, kind: str | None) -> None:
    assert change_kind(area, ref, NewsSettings(min_area=0.01)) == kind


def _run(tracker: NewsTracker, series: list[tuple[float, float]]) -> list[tuple[float, str]]:
    out = []
    for t, a in series:
        d = tracker.observe(t, a)
        if d is not None:
            out.append((t, d.reason if d.wake else "drop:" + d.reason))
    return out


def test_news_must_persist_and_is_signalled_until_judged() -> None:
    tr = NewsTracker(NewsSettings(min_area=0.01, persist_s=0.5, evidence_s=None, repeat_s=1.0))
    tr.judged(0.0, 0.0)
    # a flash of 0.3 s is brief; then a lasting arrival wakes after 0.5 s, again 1 s later
    series = [(1.0, 0.05), (1.2, 0.05), (1.4, 0.0)] + [(2.0 + 0.2 * i, 0.05) for i in range(10)]
    assert _run(tr, series) == [(1.4, "drop:brief"), (2.6, "entered"), (3.6, "entered")]
    assert tr.woken == {"entered": 1} and tr.dropped == {"brief": 1}
    tr.judged(4.0, 0.05)  # the model saw it: no news any more
    assert _run(tr, [(4.2 + 0.2 * i, 0.05) for i in range(10)]) == []
    assert _run(tr, [(7.0 + 0.2 * i, 0.0) for i in range(5)]) == [(7.6, "left")]


def test_growth_needs_a_matching_detection_when_the_watch_has_a_detector() -> None:
    tr = NewsTracker(NewsSettings(min_area=0.01, persist_s=0.4, evidence_s=2.0))
    tr.judged(0.0, 0.0)
    assert _run(tr, [(1.0, 0.05), (1.2, 0.05), (1.4, 0.05), (1.6, 0.05)]) == [
        (1.4, "drop:no detection")
    ]
    tr.evidence(1.7)
    assert _run(tr, [(1.8, 0.05)]) == [(1.8, "entered")]
    tr.judged(2.0, 0.05)
    assert _run(tr, [(20.0, 0.0), (20.2, 0.0), (20.4, 0.0)]) == [
        (20.4, "left")
    ]  # no evidence needed


def test_nothing_is_news_before_the_first_look() -> None:
    tr = NewsTracker(NewsSettings(evidence_s=None))
    assert _run(tr, [(t / 5, 0.5) for t in range(20)]) == []


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 0.2), st.booleans()), min_size=1, max_size=80))
def test_a_wake_always_follows_a_change_held_for_persist_s(
    steps: list[tuple[float, bool]],
) -> None:
    """Property: every wake comes after >= persist_s of one-way change since the last look."""
    s = NewsSettings(min_area=0.01, persist_s=0.6, evidence_s=None)
    tr = NewsTracker(s)
    tr.judged(0.0, 0.02)
    held_since: float | None = None
    for i, (area, judge) in enumerate(steps):
        t = 0.2 * (i + 1)
        kind = change_kind(area, tr.reference or 0.0, s)
        held_since = (held_since if held_since is not None else t) if kind else None
        d = tr.observe(t, area)
        if d is not None and d.wake:
            assert held_since is not None and t - held_since >= s.persist_s - 1e-9
        if judge:
            tr.judged(t, area)
            held_since = None


def _frame(img: np.ndarray, t: float) -> Frame:
    rgb = np.repeat(np.clip(img, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    return Frame(camera="c", seq=int(t * 10), wall_time=t, stream_time=t,
                 width=img.shape[1], height=img.shape[0], rgb=rgb)  # fmt: skip


def test_policy_wakes_once_for_a_parcel_and_once_when_it_goes() -> None:
    lower = ZoneRule(points=[(0, 0.5), (1, 0.5), (1, 1), (0, 1)])
    seen = []
    policy = NewsPolicy(
        [("lower", lower)],
        NewsSettings(min_area=0.005, persist_s=0.4, evidence_s=None),
        SceneSettings(width=W, cell=4),
        on_decision=seen.append,
    )
    bg = _scene()
    parcel = _with_box(bg, 30, 30, 8, 8)
    for i in range(10):
        policy.picture(_frame(bg, i * 0.2))
    policy.judged(_frame(bg, 2.0))
    wakes = []
    for i in range(10, 40):
        t = i * 0.2
        img = parcel if 3.0 <= t < 6.0 else bg
        d = policy.picture(_frame(img, t))
        if d is not None and d.wake:
            wakes.append((round(t, 1), d.reason))
            policy.judged(_frame(img, t))  # the look happens at once
    assert wakes == [(3.4, "entered"), (6.4, "left")]
    st_ = policy.stats()
    assert st_.woken == {"entered": 1, "left": 1} and st_.pictures == 40
    assert [d.reason for d in seen] == ["entered", "left"]
    assert policy.take_wake() is not None and policy.take_wake() is None


def test_token_bucket_refills_and_never_blinds_for_long() -> None:
    b = TokenBucket(per_hour=120, burst=3)  # one look per 30 s after a burst of 3
    for _ in range(3):
        assert b.wait(0.0) == 0.0
        b.record(0.0)
    assert b.snapshot(0.0).exhausted_at == 0.0 and b.snapshot(0.0).exhaustions == 1
    assert b.wait(0.0) == pytest.approx(30.0)
    assert b.wait(29.0) == pytest.approx(1.0)
    assert b.wait(30.0) == 0.0 and b.snapshot(30.0).exhausted_at is None
    b.record(30.0)
    assert b.snapshot(30.0).exhaustions == 2
    # Over a busy hour it allows about burst + rate looks, spread out, never an hour of nothing.
    made, t, gaps, last = 4, 30.0, [], 30.0
    while t < 3600:
        t += b.wait(t) or 1.0
        if b.wait(t) == 0:
            b.record(t)
            gaps.append(t - last)
            last, made = t, made + 1
    assert max(gaps) <= 30.0 + 1e-6 and 115 <= made <= 125
    assert b.used(3600.0) >= 115
    with pytest.raises(ValueError):
        TokenBucket(0)
    with pytest.raises(ValueError):
        TokenBucket(10, burst=0)
    assert default_burst(120) == 12


def test_what_leaves_is_news_only_while_the_model_watched_something() -> None:
    s = NewsSettings(min_area=0.01, persist_s=0.4, evidence_s=None)
    tr = NewsTracker(s)
    tr.judged(0.0, 0.05, next_run_in=60)  # "nothing relevant": passers-by, say
    gone = [(1.0 + 0.2 * i, 0.0) for i in range(6)]
    assert _run(tr, gone) == [(1.4, "drop:nothing watched left")]
    tr.judged(3.0, 0.05, next_run_in=5)  # a parcel the model is watching
    assert _run(tr, [(4.0 + 0.2 * i, 0.0) for i in range(3)]) == [(4.4, "left")]
    tr.judged(5.0, 0.05, next_run_in=60)
    assert _run(tr, [(6.0 + 0.2 * i, 0.0) for i in range(3)]) == [
        (6.4, "drop:nothing watched left")
    ]
    assert tr.reference == 0.0  # what is left is the new reference: an arrival is growth again
    assert _run(tr, [(8.0 + 0.2 * i, 0.05) for i in range(3)]) == [(8.4, "entered")]


def test_no_budget_allows_every_look_and_still_counts() -> None:
    b = TokenBucket(None)
    for t in range(100):
        assert b.defer(float(t)) == 0.0
        b.record(float(t))
    snap = b.snapshot(100.0)
    assert (snap.tokens, snap.per_hour, snap.exhausted_at, snap.deferred) == (None, None, None, 0)
    assert b.used(100.0) == 100


def test_a_small_thing_that_stays_is_news_in_a_zone_full_of_passers_by() -> None:
    """A walker keeps the zone's occupancy up; a small parcel hardly changes it, but stays."""
    policy = NewsPolicy([], NewsSettings(min_area=0.01, persist_s=0.4, evidence_s=None),
                        SceneSettings(width=W, cell=4, still_s=2.0))  # fmt: skip
    bg = _scene()
    woken: list[tuple[float, str]] = []
    for i in range(150):
        t = i * 0.2
        img = bg.copy()
        x = (i * 4) % (W - 8)  # the walker: one cell a picture, always somewhere
        img[20:36, x : x + 8] = 230
        if t >= 20.0:
            img[40:44, 48:56] = 20  # the parcel: 2 cells of 192, the walker 8
        if i == 20:
            policy.judged(_frame(img, t), next_run_in=60)
        d = policy.picture(_frame(img, t))
        if i > 20 and d is not None and d.wake:
            woken.append((round(t, 1), d.reason))
            policy.judged(_frame(img, t), next_run_in=60)
    assert woken and all(t >= 20.0 for t, _ in woken), woken  # the walker alone is no news
    assert woken[0][1] == "still" and woken[0][0] <= 22.8
