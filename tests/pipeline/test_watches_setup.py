"""The config adapter: every [[watches]] and zone setting reaches the operators' plain values."""

from __future__ import annotations

import dataclasses

from operators.zones import ZoneRule
from pipeline.app.watch_setup import watch_spec, zone_rules
from pipeline.core.config import WatchConfig, ZoneConfig


def test_every_watch_spec_field_comes_from_the_config_field_of_its_name() -> None:
    cfg = WatchConfig(
        name="porch", camera="front", condition="a package", labels=["person"], zones=["door"],
        mode="repeat", quiet_period_s=12, agree_looks=2, agree_window=3, max_duration_minutes=5,
        max_looks_per_hour=30, cooldown_s=4, history_turns=3, history_images=1,
        image_max_height=360, jpeg_quality=70,
    )  # fmt: skip
    spec = watch_spec(cfg)
    for f in dataclasses.fields(spec):
        expected = getattr(cfg, f.name)
        expected = tuple(expected) if isinstance(expected, list) else expected
        assert getattr(spec, f.name) == expected, f.name


def test_zone_rules_keep_every_setting() -> None:
    cfg = ZoneConfig(points=[(0, 0.5), (1, 0.5), (1, 1)], units="relative", anchor="center",
                     inertia=2, loitering_time=1.5, min_area=0.01, min_score=0.4)  # fmt: skip
    assert zone_rules({"lawn": cfg}) == {
        "lawn": ZoneRule(points=((0.0, 0.5), (1.0, 0.5), (1.0, 1.0)), units="relative",
                         anchor="center", inertia=2, loitering_time=1.5, min_area=0.01,
                         min_score=0.4)
    }  # fmt: skip
