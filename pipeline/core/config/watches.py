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
        None, ge=1, le=3600, description="Look budget per hour (a look a second at most)."
    )
    cooldown_s: float = Field(
        10.0, ge=0, le=3600, description="Cooldown of wakes without zones, in seconds."
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
