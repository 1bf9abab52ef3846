"""The ONNX detector against tiny YOLO-shaped models built with the ``onnx`` package."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import reactivex
from reactivex.scheduler import ImmediateScheduler

from pipeline.core.config import OnnxDetectConfig
from pipeline.core.detection import Detection
from sources.onnx_detector import OnnxDetector, decode_yolo, detect_onnx, nms, parse_names
from tests.support.onnx_models import build_model, v8_output
from tests.support.onnx_models import frame as _frame


def test_v8_layout_letterbox_nms_and_metadata_names(tmp_path: Path) -> None:
    out = v8_output([
        [32, 32, 16, 16, 0.9, 0.1],  # person at the centre
        [33, 32, 16, 16, 0.8, 0.0],  # overlaps: suppressed
        [33, 32, 16, 16, 0.0, 0.7],  # other class: kept
        [10, 20, 4, 4, 0.2, 0.1],    # below confidence
    ])  # fmt: skip
    model = build_model(tmp_path / "v8.onnx", out, names="{0: 'person', 1: 'car'}")
    det = OnnxDetector(OnnxDetectConfig(model=model, confidence=0.4))
    assert det.size == 64 and det.names == ["person", "car"]
    found = det.detect(_frame(128, 64))
    assert [d.label for d in found] == ["person", "car"]
    person = found[0]
    # 128x64 letterboxed into 64x64: scale 0.5, pad_y 16. (24..40, 24..40) -> x 48..80, y 16..48.
    assert person.box.as_list() == pytest.approx([48, 16, 80, 48])
    assert person.frame_size == (128, 64) and person.source == "onnx" and person.time == 5.0
    assert person.score == pytest.approx(0.9)


def test_v5_layout_with_objectness_and_config_classes(tmp_path: Path) -> None:
    rows = np.asarray([[32, 32, 8, 8, 0.5, 0.2, 0.9], [5, 5, 2, 2, 0.1, 1.0, 0.0]], np.float32)
    model = build_model(tmp_path / "v5.onnx", rows[None])
    det = OnnxDetector(OnnxDetectConfig(model=model, confidence=0.3, classes=["cat", "dog"]))
    (d,) = det.detect(_frame(64, 64))
    assert d.label == "dog" and d.score == pytest.approx(0.45)


def test_unknown_names_and_bad_models(tmp_path: Path) -> None:
    rows = [[32, 32, 8, 8, 0.1, 0.9]] + [[0.0] * 6] * 20  # more anchors than channels
    model = build_model(tmp_path / "n.onnx", v8_output(rows))
    assert OnnxDetector(OnnxDetectConfig(model=model)).detect(_frame())[0].label == "class1"
    with pytest.raises(ValueError, match="not found"):
        OnnxDetector(OnnxDetectConfig(model=tmp_path / "missing.onnx"))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="Cannot load"):
        OnnxDetector(OnnxDetectConfig(model=junk))


def test_helpers() -> None:
    assert parse_names("['a', 'b']") == ["a", "b"]
    assert parse_names("nonsense(") is None
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    assert nms(boxes, np.array([0.5, 0.6], np.float32), 0.5) == [1]
    with pytest.raises(ValueError):
        decode_yolo(np.zeros((2, 3, 4, 5)), None, 0.5)


def test_detect_onnx_paces_on_stream_time_not_on_arrival(tmp_path: Path) -> None:
    # Ten frames 0.1 s apart in the stream, all decoded at once (a file read faster than
    # real time): at 5 fps of video, frames 0, 2, 4, 6 and 8 are analysed.
    model = build_model(tmp_path / "m.onnx", v8_output([[32, 32, 16, 16, 0.9]]), names="{0: 'cat'}")
    cfg = OnnxDetectConfig(model=model, fps=5)
    frames = [dataclasses.replace(_frame(64, 64), seq=i, stream_time=i * 0.1) for i in range(10)]
    found: list[Detection] = []
    reactivex.from_iterable(frames).pipe(
        detect_onnx(cfg, detect_scheduler=ImmediateScheduler())
    ).subscribe(found.append)
    assert len(found) == 5 and {d.label for d in found} == {"cat"}
