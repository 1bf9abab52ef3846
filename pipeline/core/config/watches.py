"""``[[watches]]``: one camera, one condition in plain language."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from pipeline.core.config.base import DAY_S, Model, Name


class WatchConfig(Model):
    """``[[watches]]``: one camera, one condition in plain language."""

    name: Name = Field(description="Unique watch name (letters, digits, _ and -).")
    camera: str = Field(description="Camera name from [cameras].")
    condition: str = Field(min_length=3, description="What to watch for, in plain language.")
    labels: list[str] = Field(default_factory=list, description="Object labels that wake it.")
    zones: list[str] = Field(default_factory=list, description="Camera zones that matter.")
    backend: str = Field("auto", description="Backend name from [backends], or auto.")
    sinks: list[str] | None = Field(None, description="Sink names; default every sink.")
    max_duration_minutes: float = Field(
        60.0,
        ge=0,
        le=525_600,
        description="End as failed after this long (at most a year); 0 runs forever.",
    )
    mode: Literal["once", "repeat"] = Field(
        "once", description="End at the first alert, or re-arm."
    )
    quiet_period_s: float = Field(
        300.0, ge=0, le=DAY_S, description="repeat: seconds of quiet after an alert."
    )
    agree_looks: int = Field(1, ge=1, le=100, description="repeat: looks that must say met...")
    agree_window: int = Field(1, ge=1, le=100, description="...among this many latest looks.")
    max_looks_per_hour: int | None = Field(
        None,
        ge=1,
        le=3600,
        description="Look budget: refills at this many looks an hour, after a burst of "
        "look_burst (a look a second at most); none: unlimited.",
    )
    cooldown_s: float = Field(
        10.0, ge=0, le=3600, description="Cooldown of wakes without zones, in seconds."
    )
    wake: Literal["news", "detections"] = Field(
        "news",
        description="What ends a wait early: news (something in the zones the model has "
        "not seen: a thing that keeps its look for news_still_s, busy zones too; where the "
        "zones are seldom busy also clearly more or less than in the picture the model "
        "judged last, for news_persist_s; with an object detector growth also needs a "
        "matching detection) or detections (every match: at once with zones, not before "
        "cooldown_s after the wait began without).",
    )
    news_min_area: float = Field(
        0.0015,
        ge=0.0001,
        le=0.5,
        description="news: least change of occupied area, as a share of the picture "
        "(the default, two cells of the 160-pixel thumbnail, is about a person 30 m away).",
    )
    news_factor: float = Field(
        2.0,
        ge=1.0,
        le=10.0,
        description="news: occupied area must grow to this many times (or shrink to 1/this "
        "of) its size at the last look.",
    )
    news_persist_s: float = Field(
        0.6, ge=0, le=10, description="news: seconds a change must hold to be news."
    )
    news_still_s: float = Field(
        0.6,
        ge=0,
        le=60,
        description="news: seconds a thing in the zones must keep its look to be news as "
        "a thing that stays (a parcel set down, not someone walking past).",
    )
    news_linger_s: float = Field(
        3.0,
        ge=0,
        le=60,
        description="news: once the model called a look woken by an arrival nothing "
        "relevant, seconds an arrival must stay to be news (passers-by do not), until "
        "it finds one relevant.",
    )
    news_dismissed_s: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="news: after an answer that found nothing relevant, seconds for which "
        "what was in the zones of that picture (people on a footpath) is no news when it "
        "stops and stays there; 0: never dismissed.",
    )
    news_fps: float | None = Field(
        None,
        gt=0,
        le=30,
        description="news: pictures measured a second; default the camera detector's fps "
        "(the frames it decodes anyway), none without a motion or onnx detector.",
    )
    look_burst: int | None = Field(
        None,
        ge=1,
        le=3600,
        description="Looks allowed back to back before max_looks_per_hour paces them "
        "(a refilling budget; default a tenth of max_looks_per_hour, at most 60).",
    )
    history_turns: int = Field(10, ge=0, le=50, description="User/assistant pairs kept.")
    history_images: int | None = Field(
        None,
        ge=0,
        le=50,
        description="Keep images only in this many latest turns (older as text).",
    )
    image_max_height: int = Field(480, ge=64, le=2160, description="Frames shrunk to this height.")
    jpeg_quality: int = Field(85, ge=1, le=100, description="JPEG quality of frames sent.")
    persistent: bool = Field(False, description="Run-time watches: survive a restart.")

    @field_validator("condition")
    @classmethod
    def _condition(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()

    @model_validator(mode="after")
    def _agreement(self) -> WatchConfig:
        if self.agree_looks > self.agree_window:
            raise ValueError("agree_looks must not exceed agree_window")
        return self
