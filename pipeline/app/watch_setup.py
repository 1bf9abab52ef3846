"""The one place where config models become the operators' plain arguments.

The operators take plain values (:class:`~operators.watch_spec.WatchSpec`,
:class:`~operators.zones.ZoneRule`); ``[[watches]]`` and
``[cameras.NAME.zones.ZONE]`` are pydantic models. The runner and the replay
adapt them here and nowhere else.

Example:
    >>> from pipeline.core.config import WatchConfig, ZoneConfig
    >>> spec = watch_spec(WatchConfig(name="w", camera="c", condition="a cat"))
    >>> spec.cooldown_s, spec.mode
    (10.0, 'once')
    >>> zone_rules({"lawn": ZoneConfig(points=[(0, 0.5), (1, 0.5), (1, 1)])})["lawn"].inertia
    3
"""

from __future__ import annotations

from collections.abc import Mapping

from operators.watch_spec import WatchSpec
from operators.zones import ZoneRule
from pipeline.core.config import WatchConfig, ZoneConfig


def watch_spec(config: WatchConfig) -> WatchSpec:
    """The :class:`WatchSpec` of a ``[[watches]]`` entry."""
    return WatchSpec(
        name=config.name,
        camera=config.camera,
        condition=config.condition,
        labels=tuple(config.labels),
        zones=tuple(config.zones),
        mode=config.mode,
        quiet_period_s=config.quiet_period_s,
        agree_looks=config.agree_looks,
        agree_window=config.agree_window,
        max_duration_minutes=config.max_duration_minutes,
        max_looks_per_hour=config.max_looks_per_hour,
        cooldown_s=config.cooldown_s,
        history_turns=config.history_turns,
        history_images=config.history_images,
        image_max_height=config.image_max_height,
        jpeg_quality=config.jpeg_quality,
    )


def zone_rule(config: ZoneConfig) -> ZoneRule:
    """The :class:`ZoneRule` of one ``[cameras.NAME.zones.ZONE]`` table."""
    return ZoneRule(
        points=tuple(config.points),
        units=config.units,
        anchor=config.anchor,
        inertia=config.inertia,
        loitering_time=config.loitering_time,
        min_area=config.min_area,
        min_score=config.min_score,
    )


def zone_rules(zones: Mapping[str, ZoneConfig]) -> dict[str, ZoneRule]:
    """The :class:`ZoneRule` of each of a camera's zones, by name."""
    return {name: zone_rule(cfg) for name, cfg in zones.items()}
