"""``[cameras.NAME]``: streams, their zones and where their detections come from."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from pipeline.core.config.activity import CaptionsConfig
from pipeline.core.config.base import (
    CAMERA_SCHEMES,
    DAY_S,
    MAX_PIXELS,
    NETWORK_SCHEMES,
    Model,
    Name,
    read_secret,
    safe_reason,
)

Coordinate = Annotated[float, Field(ge=0, le=MAX_PIXELS)]
"""A zone corner's x or y: relative (0..1) or pixels (up to the largest picture side)."""


class ZoneConfig(Model):
    """``[cameras.NAME.zones.ZONE]``: a polygon on the camera's picture."""

    points: list[tuple[Coordinate, Coordinate]] = Field(
        description="Polygon corners as [x, y] pairs, relative (0..1) or pixels."
    )
    units: Literal["auto", "relative", "pixels"] = Field(
        "auto", description="Coordinate units; auto means relative when every value is <= 1."
    )
    anchor: Literal["bottom_center", "center", "top_center", "box"] = Field(
        "bottom_center",
        description="Point of an object's box that must be inside (box: any overlap).",
    )
    inertia: int = Field(
        3, ge=1, le=100, description="Consecutive frames inside before an object counts."
    )
    loitering_time: float = Field(
        0.0, ge=0, le=3600, description="Seconds inside before an object counts."
    )
    min_area: float = Field(
        0.0,
        ge=0,
        le=MAX_PIXELS * MAX_PIXELS,
        description="Minimum box area: a fraction of the frame (<1) or pixels (>=1).",
    )
    min_score: float = Field(0.0, ge=0, le=1, description="Minimum detection score.")

    @field_validator("points")
    @classmethod
    def _polygon(cls, v: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if len(v) < 3:
            raise ValueError(f"a zone polygon needs at least 3 points, got {len(v)}")
        return v


class MotionDetectConfig(Model):
    """Motion by frame differencing on small grey frames; boxes labelled ``motion``."""

    type: Literal["motion"] = "motion"
    fps: float = Field(5.0, gt=0, le=30, description="Frames analysed per second.")
    keyframes: bool = Field(
        False,
        description="Analyse keyframes (at most fps a second), and every frame at fps only "
        "while the camera is kept current after a sign of change: about a fifth of a full "
        "decode, for high-resolution cameras; small or brief changes can wake a GOP later.",
    )
    threshold: int = Field(25, ge=1, le=255, description="Grey-level change that counts.")
    min_area: float = Field(
        0.002, gt=0, lt=1, description="Smallest moving region, as a fraction of the frame."
    )
    width: int = Field(160, ge=32, le=640, description="Width of the analysis frame in pixels.")
    label: str = Field("motion", description="Label given to motion boxes.")


class OnnxDetectConfig(Model):
    """A YOLO-format ONNX detector run through onnxruntime."""

    type: Literal["onnx"] = "onnx"
    model: Path = Field(description="Path of the .onnx file (YOLOv5/v8/11 layout).")
    fps: float = Field(2.0, gt=0, le=30, description="Frames analysed per second.")
    keyframes: bool = Field(
        False,
        description="Analyse keyframes (at most fps a second), and every frame at fps only "
        "while the camera is kept current: one decode per GOP instead of every frame; wakes "
        "come up to a GOP or two later.",
    )
    confidence: float = Field(0.4, ge=0, le=1, description="Minimum confidence.")
    iou: float = Field(0.45, ge=0, le=1, description="IoU threshold of non-maximum suppression.")
    classes: list[str] | None = Field(
        None, description="Class names; default from the model's metadata."
    )
    input_size: int | None = Field(
        None, ge=32, le=4096, description="Square input size; default from model."
    )
    providers: list[str] | None = Field(None, description="onnxruntime providers, in order.")


class FrigateDetectConfig(Model):
    """Detections from Frigate's MQTT topics (needs ``[mqtt]``).

    ``<prefix>/events`` (tracked objects with boxes, zones, sub labels and
    attributes), ``<prefix>/reviews`` (review items with their objects and zones)
    and ``<prefix>/tracked_object_update`` (recognised faces and licence plates).
    """

    type: Literal["frigate"] = "frigate"
    topic_prefix: str = Field("frigate", description="Frigate's MQTT topic prefix.")
    camera: str | None = Field(None, description="Frigate's name for the camera; default the same.")
    include_false_positives: bool = Field(False, description="Keep events marked false positive.")
    reviews: Literal["off", "alerts", "all"] = Field(
        "all",
        description="Wake on <prefix>/reviews items too: alerts only, all, or off.",
    )
    object_updates: bool = Field(
        True,
        description="Take <prefix>/tracked_object_update faces and plates as detections.",
    )
    detect_width: int | None = Field(
        None,
        gt=0,
        le=MAX_PIXELS,
        description="Width of Frigate's detect stream in pixels (Frigate's boxes refer to it); "
        "needed for relative zones here.",
    )
    detect_height: int | None = Field(
        None,
        gt=0,
        le=MAX_PIXELS,
        description="Height of Frigate's detect stream in pixels (with detect_width).",
    )

    @model_validator(mode="after")
    def _detect_size(self) -> FrigateDetectConfig:
        if (self.detect_width is None) != (self.detect_height is None):
            raise ValueError("set both detect_width and detect_height, or neither")
        return self


class MqttJsonDetectConfig(Model):
    """Detections as JSON on any MQTT topic (schema in the README; needs ``[mqtt]``)."""

    type: Literal["mqtt"] = "mqtt"
    topic: str = Field(description="Topic carrying detection JSON.")


DetectConfig = Annotated[
    MotionDetectConfig | OnnxDetectConfig | FrigateDetectConfig | MqttJsonDetectConfig,
    Field(discriminator="type"),
]


class CameraConfig(Model):
    """``[cameras.NAME]``: one video stream."""

    url: str = Field(
        description="rtsp://, rtsps://, rtmp://, http(s):// (MPEG-TS, HLS, MJPEG), "
        "a file path, /dev/videoN, or frigate://host:port/camera."
    )
    username: str | None = Field(None, description="User name, if not in the URL.")
    password: SecretStr | None = Field(
        None, description="Password; prefer LOOKOUT_CAMERAS__<NAME>__PASSWORD or password_file."
    )
    password_file: Path | None = Field(None, description="File holding the password.")
    options: dict[str, str] = Field(
        default_factory=dict, description="Extra FFmpeg/PyAV options passed to av.open."
    )
    format: str | None = Field(
        None,
        min_length=1,
        pattern=r"^[A-Za-z0-9_,]+$",
        description="FFmpeg input format such as mpjpeg, v4l2, hls or mpegts; probed when "
        "unset (v4l2 for /dev/videoN). options.format is still read when this is unset.",
    )
    transport: Literal["tcp", "udp"] = Field("tcp", description="RTSP transport.")
    decode: Literal["every_frame", "on_demand", "keyframes"] = Field(
        "on_demand", description="Decode strategy: what is decoded between looks."
    )
    timer_max_age_s: float = Field(
        2.0,
        ge=0,
        le=60,
        description="Timer looks take the newest keyframe's picture when it is at most this "
        "many seconds old (one frame's decode), else the first keyframe after the look is due "
        "(at most one GOP later); 0: timer looks decode the newest frame, like wakes. Wake "
        "looks always get the newest frame.",
    )
    keep_current_s: float = Field(
        5.0,
        ge=0,
        le=300,
        description="After a wake the wake policy accepted, decode each packet as it arrives "
        "for this many seconds, so follow-up looks are fresh and cheap (decode = on_demand; "
        "0: never).",
    )
    keep_current_share: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Longest share of time the decoder is kept current after wakes (and, with "
        "a keyframes detector, after signs of change), in the long run (a token bucket of "
        "share x 30 s), so constant movement never means a permanent full decode.",
    )
    realtime: bool = Field(True, description="Play files at their own pace, like a live camera.")
    loop: bool = Field(False, description="Start files again at their end.")
    open_timeout_s: float = Field(10.0, gt=0, le=120, description="Seconds to open the stream.")
    read_timeout_s: float = Field(10.0, gt=0, le=120, description="Seconds a single read may take.")
    stall_timeout_s: float = Field(
        20.0, gt=0, le=3600, description="Seconds without packets before reconnect."
    )
    reconnect_max_s: float = Field(
        60.0, ge=1, le=DAY_S, description="Longest wait between reconnects, in seconds."
    )
    zones: dict[Name, ZoneConfig] = Field(default_factory=dict, description="Named zones.")
    detect: DetectConfig | None = Field(
        None, description="Where this camera's detections come from."
    )
    captions: CaptionsConfig | None = Field(
        None, description="Captions of this camera's picture by a backend, into the activity store."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("must not be empty")
        if "://" not in v:
            if v.startswith("/dev/video") or not re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:", v):
                return v  # a path (file or V4L2 device)
            raise ValueError("is neither a path nor a URL with '://'")
        try:
            parts = urlsplit(v)
            _ = parts.port
        except ValueError as exc:
            raise ValueError(f"is not a valid URL ({safe_reason(exc)})") from None
        scheme = parts.scheme.lower()
        if scheme not in CAMERA_SCHEMES:
            raise ValueError(
                f"has unsupported scheme '{scheme}'; expected one of {', '.join(CAMERA_SCHEMES)}"
            )
        if scheme in NETWORK_SCHEMES and not parts.hostname:
            raise ValueError("has no host name")
        return v

    def resolved_url(self) -> str:
        """The URL with ``username``/``password`` inserted when they are given separately."""
        password = read_secret(self.password, self.password_file)
        if self.username is None and password is None:
            return self.url
        parts = urlsplit(self.url)
        if not parts.hostname:
            return self.url
        user = quote(self.username or parts.username or "", safe="")
        cred = user + (f":{quote(password, safe='')}" if password is not None else "")
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        netloc = f"{cred}@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
