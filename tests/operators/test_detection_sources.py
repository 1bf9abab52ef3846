"""Detection sources as the watch sees them: ONNX inference off the frame thread, Frigate size."""

from __future__ import annotations

import threading
from pathlib import Path

import pydantic
import pytest
from reactivex.scheduler import ThreadPoolScheduler
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

from pipeline.core.config import FrigateDetectConfig, OnnxDetectConfig
from pipeline.core.detection import Detection
from pipeline.core.frame import Frame
from sources.frigate import FrigateEventParser
from sources.onnx_detector import OnnxDetector, detect_onnx
from tests.support.onnx_models import build_model, v8_output
from tests.support.onnx_models import frame as _frame


class GatedDetector(OnnxDetector):
    """The real detector, held at a gate so a test can see what happens meanwhile."""

    def __init__(self, config: OnnxDetectConfig) -> None:
        super().__init__(config)
        self.gate = threading.Event()
        self.started = threading.Event()
        self.threads: list[int] = []
        self.frames: list[int] = []

    def detect(self, frame: Frame) -> list[Detection]:
        self.threads.append(threading.get_ident())
        self.frames.append(frame.seq)
        self.started.set()
        assert self.gate.wait(10), "the test never opened the gate"
        return super().detect(frame)


def test_detect_onnx_runs_off_the_frame_thread_and_drops_frames_while_busy(
    tmp_path: Path,
) -> None:
    model = build_model(tmp_path / "m.onnx", v8_output([[32, 32, 16, 16, 0.9]]), names="{0: 'cat'}")
    cfg = OnnxDetectConfig(model=model, fps=10)
    det = GatedDetector(cfg)
    clock = TestScheduler()  # the rate limit's clock, advanced by hand
    pool = ThreadPoolScheduler(max_workers=1)
    frames: Subject[Frame] = Subject()
    out: list[Detection] = []
    done = threading.Event()
    sub = frames.pipe(detect_onnx(cfg, detector=det, scheduler=clock, detect_scheduler=pool)
                      ).subscribe(out.append, on_completed=done.set)  # fmt: skip

    def frame(seq: int) -> Frame:  # frames 1 s apart: the rate limit lets both through
        f = _frame(64, 64)
        return Frame(camera=f.camera, seq=seq, wall_time=f.wall_time + seq, stream_time=None,
                     width=64, height=64, rgb=f.rgb)  # fmt: skip

    frames.on_next(frame(1))  # returns at once although inference is held at the gate
    assert det.started.wait(10)
    clock.advance_by(1.0)
    frames.on_next(frame(2))  # passes the rate limit, but a frame is in flight: dropped
    frames.on_completed()  # completion waits for the frame in flight
    assert not done.is_set()
    det.gate.set()
    assert done.wait(10)
    sub.dispose()
    freed = threading.Event()  # the one pool thread is free again (no deadlock on completion)
    pool.schedule(lambda _s, _st=None: freed.set())
    assert freed.wait(10)
    assert det.frames == [1]
    assert det.threads[0] != threading.get_ident()
    assert [d.label for d in out] == ["cat"]


def test_detect_onnx_inline_on_virtual_time(tmp_path: Path) -> None:
    model = build_model(tmp_path / "m.onnx", v8_output([[32, 32, 16, 16, 0.9]]), names="{0: 'cat'}")
    cfg = OnnxDetectConfig(model=model, fps=1)
    s = TestScheduler()
    out: list[Detection] = []
    frames: Subject[Frame] = Subject()
    frames.pipe(detect_onnx(cfg, scheduler=s)).subscribe(out.append)
    frames.on_next(_frame(64, 64))
    frames.on_next(_frame(64, 64))  # inside the 1 s rate limit
    assert [d.label for d in out] == ["cat"]


EVENT = (
    b'{"type": "new", "after": {"id": "1.2-abc", "camera": "front", "label": "person",'
    b' "score": 0.8, "box": [10, 20, 50, 120], "frame_time": 1.5, "current_zones": []}}'
)


def test_frigate_boxes_carry_the_detect_size_when_configured() -> None:
    plain = FrigateEventParser(FrigateDetectConfig(), {"front": "porch"}).parse(EVENT)
    assert plain is not None and plain.frame_size is None
    cfg = FrigateDetectConfig(detect_width=1280, detect_height=720)
    sized = FrigateEventParser(cfg, {"front": "porch"}).parse(EVENT)
    assert sized is not None and sized.frame_size == (1280, 720)
    with pytest.raises(pydantic.ValidationError, match="detect_width and detect_height"):
        FrigateDetectConfig(detect_width=1280)
