"""Events for activity tests: looks, alerts and states as the runtime makes them."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from pipeline.core.events import Alert, LookRecord, WatchState, WatchStatus
from pipeline.core.verdict import Verdict


def noisy_jpeg(width: int = 320, height: int = 240, seed: int = 0) -> bytes:
    """A JPEG that does not compress to nothing (noise), like a real picture's size."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=85)
    return out.getvalue()


def look(i: int, reasoning: str = "", *, watch: str = "gate", jpeg: bytes | None = None,
         met: bool = False, t: float | None = None) -> LookRecord:  # fmt: skip
    verdict = Verdict.answered(met, 5, reasoning or f"look number {i} saw nothing", "Open!")
    return LookRecord(watch=watch, job_id="j1", time=1000.0 + i if t is None else t,
                      trigger="timer", verdict=verdict.with_latency(0.25),
                      frame={"camera": "front", "seq": i}, jpeg=jpeg)  # fmt: skip


def state(status: WatchStatus = WatchStatus.RUNNING, *, watch: str = "gate",
          job: str = "j1") -> WatchState:  # fmt: skip
    return WatchState(id=job, name=watch, camera="front", condition="the gate is open",
                      status=status, started_at=1000.0)  # fmt: skip


def alert(t: float = 1005.0, jpeg: bytes | None = None) -> Alert:
    return Alert(event_id="e1", watch="gate", job_id="j1", camera="front",
                 condition="the gate is open", message="The gate is open",
                 reasoning="The gate stands wide open.", time=t, look_count=3,
                 jpeg=jpeg)  # fmt: skip
