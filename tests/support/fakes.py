"""Test doubles of interfaces the watch consumes (Backend, FrameProvider)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from operators.answer_parser import parse_answer
from operators.backends.base import Availability, LookRequest
from pipeline.core.frame import Frame
from pipeline.core.verdict import Verdict


def rgb_frame(seq: int = 1, camera: str = "porch", wall_time: float = 0.0) -> Frame:
    rgb = np.full((96, 128, 3), 100, np.uint8)
    return Frame(camera=camera, seq=seq, wall_time=wall_time, stream_time=None,
                 width=128, height=96, rgb=rgb)  # fmt: skip


class ScriptedBackend:
    """Answers each look with the next scripted text (parsed like a real model's)."""

    name = "scripted"
    type = "scripted"
    needs_gpu = False
    ram_mb = 0
    takes_images = True

    def __init__(self, answers: Iterable[str | None], default: str | None = None) -> None:
        self.answers = list(answers)
        self.default = default or '{"condition_met": false, "next_run_in": 30}'
        self.requests: list[LookRequest] = []

    def availability(self) -> Availability:
        return Availability(True)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def judge(self, request: LookRequest) -> Verdict:
        self.requests.append(request)
        text = self.answers.pop(0) if self.answers else self.default
        return parse_answer(text)

    def describe(self, jpeg: bytes, prompt: str) -> str:
        return ""


class StaticFrames:
    """A FrameProvider that returns a fixed frame (or none)."""

    def __init__(self, frame: Frame | None, name: str = "porch") -> None:
        self.name = name
        self.frame = frame
        self.calls = 0
        self.timeouts: list[float | None] = []

    def latest(self, timeout: float | None = None) -> Frame | None:
        self.calls += 1
        self.timeouts.append(timeout)
        return self.frame
