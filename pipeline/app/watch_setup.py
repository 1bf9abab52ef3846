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

from operators.frame_selector import FrameSelector, FreshestFrame
from operators.news import NewsSettings
from operators.news_wakes import NewsPolicy
from operators.scene import SceneSettings
from operators.timer_keyframes import KeyframeTimerLooks
from operators.wake_policy import WakePolicy
from operators.watch_spec import WatchSpec
from operators.zones import ZoneRule
from pipeline.core.config import (
    CameraConfig,
    FrigateDetectConfig,
    MotionDetectConfig,
    OnnxDetectConfig,
    WatchConfig,
    ZoneConfig,
)


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
        look_burst=config.look_burst,
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


def frame_selector(camera: CameraConfig) -> FrameSelector:
    """Which frame each look of a watch on ``camera`` takes.

    Timer looks take a recent keyframe (``timer_max_age_s``, default 2 s) and
    wakes the newest frame (:class:`~operators.timer_keyframes.KeyframeTimerLooks`);
    with ``timer_max_age_s = 0``, or a camera that decodes every frame anyway,
    every look takes the newest frame (the baseline).

    Example:
        >>> from pipeline.core.config import CameraConfig
        >>> type(frame_selector(CameraConfig(url="x.mp4"))).__name__
        'KeyframeTimerLooks'
        >>> type(frame_selector(CameraConfig(url="x.mp4", timer_max_age_s=0))).__name__
        'FreshestFrame'
    """
    if camera.timer_max_age_s <= 0 or camera.decode == "every_frame":
        return FreshestFrame()
    return KeyframeTimerLooks(camera.timer_max_age_s)


def wake_setup(
    config: WatchConfig, camera: CameraConfig
) -> tuple[WakePolicy | None, float | None, bool]:
    """The wake policy of a watch on ``camera``, the pictures a second it needs, keyframes only.

    ``wake = "detections"``: ``(None, None)``, the baseline (DESIGN.md,
    behaviour A). ``wake = "news"`` (the default): a
    :class:`~operators.news_wakes.NewsPolicy` on the watch's zones, shown the
    camera's pictures at ``news_fps`` (default: the rate of a detector that
    decodes frames, ``motion`` or ``onnx``, so the pictures cost no decode of
    their own; none otherwise), keyframes only when the detector takes
    keyframes only. With an object detector (``onnx``, Frigate,
    MQTT) growth also needs a matching detection, so that its labels still
    say *what* may wake the watch; motion says nothing more than the picture.
    On a Frigate camera a watch that does not set ``wake`` wakes on detections:
    Frigate's events and review items already say when something happened.

    Example:
        >>> from pipeline.core.config import CameraConfig, WatchConfig
        >>> cam = CameraConfig(url="x.mp4", detect={"type": "motion", "fps": 5})
        >>> policy, fps, keyframes = wake_setup(
        ...     WatchConfig(name="w", camera="c", condition="a cat"), cam)
        >>> type(policy).__name__, fps, keyframes
        ('NewsPolicy', 5.0, False)
    """
    detect = camera.detect
    if config.wake == "detections" or (
        isinstance(detect, FrigateDetectConfig) and "wake" not in config.model_fields_set
    ):
        return None, None, False
    fps = config.news_fps
    keyframes = False
    if isinstance(detect, MotionDetectConfig | OnnxDetectConfig):
        keyframes = detect.keyframes
        fps = float(detect.fps) if fps is None else fps
    evidence = None if detect is None or isinstance(detect, MotionDetectConfig) else 2.0
    settings = NewsSettings(
        min_area=config.news_min_area,
        factor=config.news_factor,
        persist_s=config.news_persist_s,
        evidence_s=evidence,
        linger_s=config.news_linger_s,
        dismissed_s=config.news_dismissed_s,
    )
    scene = SceneSettings(still_s=config.news_still_s)
    rules = zone_rules(camera.zones)
    zones = [(name, rules[name]) for name in config.zones if name in rules]
    policy = NewsPolicy(zones, settings, scene, pictures_fps=fps, keyframes=keyframes)
    return policy, fps, keyframes
