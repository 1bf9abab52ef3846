"""``[activity]``, ``[web]`` and ``[cameras.NAME.captions]``: what Lookout saw, kept and shown.

Example:
    >>> ActivityConfig().path.as_posix(), ActivityConfig().max_size_mb
    ('lookout-data', 500.0)
    >>> WebConfig().host, WebConfig().enabled
    ('127.0.0.1', False)
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from pipeline.core.config.base import DAY_S, Model, read_secret

YEAR_DAYS = 3660.0
"""The longest retention by age: ten years, in days."""


class ActivityConfig(Model):
    """``[activity]``: the activity store (every look, alert, state change; pictures; search)."""

    enabled: bool = Field(True, description="Keep the activity store.")
    path: Path = Field(
        Path("lookout-data"),
        description=(
            "Folder of the store (activity.sqlite3, pictures included); relative paths are "
            "next to the config file (with no config file, a relative path keeps no store)."
        ),
    )
    max_age_days: float = Field(
        30.0, gt=0, le=YEAR_DAYS, description="Entries older than this many days are deleted."
    )
    max_size_mb: float = Field(
        500.0,
        ge=1,
        le=1_048_576,
        description=(
            "Most megabytes the store may take on disk, database and pictures together; "
            "the oldest entries go first."
        ),
    )
    thumbnail_keep_s: float = Field(
        7 * DAY_S,
        ge=0,
        le=YEAR_DAYS * DAY_S,
        description="Seconds a look's thumbnail is kept (0: none are kept; alert pictures "
        "stay as long as their alert).",
    )
    thumbnail_height: int = Field(
        120, ge=16, le=1080, description="Height of a look's thumbnail in pixels."
    )
    queue_size: int = Field(
        10_000,
        ge=100,
        le=1_000_000,
        description="Entries waiting to be written; past this, new ones are dropped and counted.",
    )

    @property
    def look_thumbnail_height(self) -> int | None:
        """How high a thumbnail each look makes for the store; ``None`` when none are kept.

        Example:
            >>> ActivityConfig().look_thumbnail_height
            120
            >>> ActivityConfig(thumbnail_keep_s=0).look_thumbnail_height is None
            True
        """
        return self.thumbnail_height if self.enabled and self.thumbnail_keep_s > 0 else None


class WebConfig(Model):
    """``[web]``: the local web page (cameras, watches, timeline, search, replay reports)."""

    enabled: bool = Field(False, description="Serve the page.")
    host: str = Field("127.0.0.1", description="Address to listen on (loopback by default).")
    port: int = Field(8780, ge=0, le=65535, description="Port (0 picks a free one).")
    token: SecretStr | None = Field(
        None,
        description=(
            "Token that starting and cancelling watches need; prefer LOOKOUT_WEB__TOKEN or "
            "token_file. Without one the page is read-only."
        ),
    )
    token_file: Path | None = Field(None, description="File holding the token.")
    reports: Path | None = Field(
        None,
        description="Folder of replay reports (each a folder with index.html) to list and open; "
        "relative paths are next to the config file.",
    )
    poll_s: float = Field(
        2.0, ge=0.2, le=3600, description="Seconds between the page's updates (it polls)."
    )

    def resolved_token(self) -> str | None:
        """The token from the value or the file (``None``: read-only page)."""
        token = read_secret(self.token, self.token_file)
        return token or None


class CaptionsConfig(Model):
    """``[cameras.NAME.captions]``: a backend describes the camera's picture, into the store."""

    backend: str = Field(description="Name of the backend that describes (its describe path).")
    every_s: float | None = Field(
        60.0, ge=1, le=DAY_S, description="Seconds between captions (none: only on wakes)."
    )
    on_wake: bool = Field(
        False, description="Caption when the camera's detector sees something too."
    )
    min_gap_s: float = Field(
        10.0, ge=0, le=DAY_S, description="Least seconds between two captions (wakes included)."
    )
    prompt: str = Field(
        "Describe what you see in this camera picture in one short sentence.",
        min_length=1,
        max_length=2000,
        description="What the backend is asked.",
    )
    max_per_hour: int | None = Field(
        None, ge=1, le=3600, description="Caption budget per hour (none: unlimited)."
    )
    image_max_height: int = Field(
        480, ge=32, le=4096, description="Pictures are shrunk to this height first."
    )
    jpeg_quality: int = Field(80, ge=1, le=100, description="JPEG quality of the picture sent.")

    @model_validator(mode="after")
    def _when(self) -> CaptionsConfig:
        if self.every_s is None and not self.on_wake:
            raise ValueError("set every_s, or on_wake = true, or both")
        return self
